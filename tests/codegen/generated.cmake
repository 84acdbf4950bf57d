# generated/ must be what caec emits for models/ now: compiles MODEL (from the
# project root, as the provenance header records it) for C and for CUDA into a
# temporary folder and compares the files. CAEC_UPDATE_GOLDEN=1 rewrites
# generated/ instead. Variables: CAEC, ROOT, MODEL (a name in models/), DIR (temporary).
file(REMOVE_RECURSE ${DIR})
foreach(target c cuda)
  set(sub "")
  set(exts h c)
  if(target STREQUAL cuda)
    set(sub /cuda)
    set(exts h cu c)
  endif()
  execute_process(COMMAND ${CAEC} compile --target ${target} models/${MODEL}.cae -o ${DIR}${sub}
                  WORKING_DIRECTORY ${ROOT} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "caec compile --target ${target} models/${MODEL}.cae failed")
  endif()
  foreach(ext ${exts})
    set(got ${DIR}${sub}/${MODEL}.${ext})
    set(want ${ROOT}/generated/${MODEL}${sub}/${MODEL}.${ext})
    if(DEFINED ENV{CAEC_UPDATE_GOLDEN} AND "$ENV{CAEC_UPDATE_GOLDEN}" STREQUAL "1")
      file(MAKE_DIRECTORY ${ROOT}/generated/${MODEL}${sub})
      file(COPY_FILE ${got} ${want})
      continue()
    endif()
    execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${got} ${want} RESULT_VARIABLE diff)
    if(NOT diff EQUAL 0)
      message(FATAL_ERROR "generated/${MODEL}${sub}/${MODEL}.${ext} is out of date with the compiler: run\n"
                          "  CAEC_UPDATE_GOLDEN=1 ctest --test-dir build -R codegen/generated\n"
                          "and commit the result")
    endif()
  endforeach()
endforeach()
file(REMOVE_RECURSE ${DIR})
