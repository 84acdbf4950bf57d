# generated/ must be what caec emits for models/ now: compiles MODEL (from the
# project root, as the provenance header records it) into a temporary folder
# and compares both files. CAEC_UPDATE_GOLDEN=1 rewrites generated/ instead.
# Variables: CAEC, ROOT, MODEL (a name in models/), DIR (temporary).
file(REMOVE_RECURSE ${DIR})
execute_process(COMMAND ${CAEC} compile models/${MODEL}.cae -o ${DIR} WORKING_DIRECTORY ${ROOT} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "caec compile models/${MODEL}.cae failed")
endif()
foreach(ext h c)
  set(want ${ROOT}/generated/${MODEL}/${MODEL}.${ext})
  if(DEFINED ENV{CAEC_UPDATE_GOLDEN} AND "$ENV{CAEC_UPDATE_GOLDEN}" STREQUAL "1")
    file(COPY_FILE ${DIR}/${MODEL}.${ext} ${want})
    continue()
  endif()
  execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${DIR}/${MODEL}.${ext} ${want} RESULT_VARIABLE diff)
  if(NOT diff EQUAL 0)
    message(FATAL_ERROR "generated/${MODEL}/${MODEL}.${ext} is out of date with the compiler: run\n"
                        "  CAEC_UPDATE_GOLDEN=1 ctest --test-dir build -R codegen/generated\n"
                        "and commit the result")
  endif()
endforeach()
file(REMOVE_RECURSE ${DIR})
