// version.h: caec's version, and the version of the interface between the
// source caec generates and the runtime (CAEC_ABI). A trainer's generated
// source records the CAEC_ABI of the caec that wrote it and checks it against
// these headers as it compiles; the runtime library checks it against its own
// when the trainer starts. So a trainer whose source, headers and library come
// from different caecs says so, instead of crashing. Raise CAEC_ABI with any
// change to trainer.h's CaecModel, CaecState, CaecHyper or what they mean.
#ifndef CAEC_VERSION_H
#define CAEC_VERSION_H

#define CAEC_VERSION "0.1.0" // project(VERSION) in CMakeLists.txt, which cli/version checks
#define CAEC_ABI 2

#endif
