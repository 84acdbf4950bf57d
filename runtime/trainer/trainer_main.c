// trainer_main.c: the main() of every generated trainer; the model comes from
// its generated source.
#include "trainer.h"

extern const CaecModel *const caec_main_model;

int main(int argc, char **argv) { return caec_trainer_main(caec_main_model, argc, argv); }
