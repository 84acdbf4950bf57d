# Installs BUILD to DIR/prefix, copies MODEL to DIR/model (outside the source
# tree), and builds and runs its trainer twice: with the installed caec build,
# and with a CMake project of find_package(caec) and caec_add_trainer(), CC
# its compiler with FLAGS. Run with cmake -P.
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${ARGN}: exit status ${rc}\n${out}")
  endif()
  set(out "${out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE ${DIR})
set(prefix ${DIR}/prefix)
run(${CMAKE_COMMAND} --install ${BUILD} --prefix ${prefix})
get_filename_component(name ${MODEL} NAME_WE)
file(COPY ${MODEL} DESTINATION ${DIR}/model)

# caec build, then the tools beside the installed caec.
execute_process(COMMAND ${prefix}/bin/caec build ${name}.cae -o ${name} WORKING_DIRECTORY ${DIR}/model
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the installed caec build failed (${rc}):\n${out}")
endif()
run(${DIR}/model/${name} info)
if(NOT out MATCHES "model: +${name} \\(${name}.cae\\)")
  message(FATAL_ERROR "caec build's trainer: unexpected info:\n${out}")
endif()
run(${DIR}/model/${name} init --out ${DIR}/trainer.safetensors)
run(${prefix}/bin/caec interp ${DIR}/model/${name}.cae init --out ${DIR}/interp.safetensors)

# find_package(caec) and caec_add_trainer().
file(WRITE ${DIR}/model/CMakeLists.txt
  "cmake_minimum_required(VERSION 3.25)\nproject(user_trainer LANGUAGES C)\nfind_package(caec REQUIRED)\n"
  "caec_add_trainer(${name} ${name}.cae)\n")
run(${CMAKE_COMMAND} -S ${DIR}/model -B ${DIR}/user_build -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_C_COMPILER=${CC}
    "-DCMAKE_C_FLAGS=${FLAGS}" "-DCMAKE_EXE_LINKER_FLAGS=${FLAGS}")
run(${CMAKE_COMMAND} --build ${DIR}/user_build)
run(${DIR}/user_build/${name} info)
if(NOT out MATCHES "command: +caec compile ${name}.cae")
  message(FATAL_ERROR "the CMake project's trainer: unexpected info:\n${out}")
endif()
message(STATUS "both trainers of the installed caec run")
