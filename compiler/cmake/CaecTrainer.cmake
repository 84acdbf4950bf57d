# caec_add_trainer(TARGET MODEL.cae [EMU] [MAIN FILE.c] [IMPORTS FILE.cae...] [ARGS caec compile options...]):
# compiles a model at build time and links its trainer, executable TARGET (with MAIN's main() in place of
# trainer_main.c's, for a program that drives caec_main_model itself): C
# for the CPU, or with EMU the CUDA back end's kernels compiled as C for the
# emulator (caec build --target cuda-emu). MODEL.cae and the files it imports
# (IMPORTS, so that editing them rebuilds it) are relative to the project's
# root, as the generated source's provenance header records it.
#
# The same function serves caec's own build (CMakeLists.txt) and a project of
# a user's (find_package(caec), compiler/cmake/caecConfig.cmake.in). Either defines the
# targets caec::caec, caec::caec_runtime and caec::caec_cuda_emu, CAEC_ARCH
# (the runtime's -march) and CAEC_TRAINER_MAIN (trainer_main.c).
function(caec_add_trainer target cae)
  cmake_parse_arguments(T "EMU" "MAIN" "IMPORTS;ARGS" ${ARGN})
  if(NOT T_MAIN)
    set(T_MAIN ${CAEC_TRAINER_MAIN})
  endif()
  get_filename_component(model ${cae} NAME_WE)
  set(dir ${CMAKE_CURRENT_BINARY_DIR}/${target}.src)
  set(outputs ${dir}/${model}.c ${dir}/${model}.h)
  if(T_EMU)
    list(APPEND T_ARGS --target cuda)
    list(APPEND outputs ${dir}/${model}.cu)
    set_source_files_properties(${dir}/${model}.cu PROPERTIES LANGUAGE C COMPILE_OPTIONS "-xc")
  endif()
  list(TRANSFORM T_IMPORTS PREPEND ${PROJECT_SOURCE_DIR}/)
  add_custom_command(
    OUTPUT ${outputs}
    COMMAND caec::caec compile ${cae} -o ${dir} ${T_ARGS}
    DEPENDS caec::caec ${PROJECT_SOURCE_DIR}/${cae} ${T_IMPORTS}
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
    COMMENT "caec compile ${cae} ${T_ARGS}")
  add_executable(${target} ${outputs} ${T_MAIN})
  target_include_directories(${target} PRIVATE ${dir})
  # as the runtime's kernels are built: a*b+c rounded twice, for the same results
  target_compile_options(${target} PRIVATE -O3 -march=${CAEC_ARCH} -ffp-contract=off)
  if(T_EMU)
    target_link_libraries(${target} PRIVATE caec::caec_cuda_emu caec::caec_runtime)
  else()
    target_link_libraries(${target} PRIVATE caec::caec_runtime)
  endif()
endfunction()
