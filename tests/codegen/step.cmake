# One check of a generated trainer, run by ctest as cmake -P with:
#   EXE TOOL DIR N SIZE ARGS (the step options, |-separated) TOLS (sttool
#   compare's --tol rules, |-separated: CAEC_FP32_TOLS of tests/CMakeLists.txt)
#   MODE, and per mode:
#   interp:  CAEC CAE       the trainer's step against `caec interp` on the same
#                           weights and batch (fp32 against double), within TOLS
#   exact:   OTHER          the same step of another trainer, bitwise (planned vs
#                           unplanned)
#   other:   OTHER          the same step of another trainer within TOLS (the
#                           CUDA back end against the C one)
#   threads:                the same trainer on 1 and on 2 OpenMP threads, bitwise
# Both sides start from the trainer's `init`; with interp, caec's init must give
# bitwise the same weights.
string(REPLACE "|" ";" args "${ARGS}")
string(REPLACE "|" ";" tols "${TOLS}")
file(REMOVE_RECURSE ${DIR})
file(MAKE_DIRECTORY ${DIR})
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    string(REPLACE ";" " " cmd "${ARGN}")
    message(FATAL_ERROR "failed (${rc}): ${cmd}")
  endif()
endfunction()
run(${EXE} init --seed 7 --out ${DIR}/w.safetensors)
run(${TOOL} batch ${N} ${SIZE} ${SIZE} 11 ${DIR}/x.safetensors)
set(step step --weights ${DIR}/w.safetensors --batch ${DIR}/x.safetensors ${args})
if(MODE STREQUAL "interp")
  run(${CAEC} interp ${CAE} init --seed 7 --size ${SIZE} --out ${DIR}/wi.safetensors)
  run(${TOOL} compare ${DIR}/w.safetensors ${DIR}/wi.safetensors --exact)
  run(${CAEC} interp ${CAE} ${step} --size ${SIZE} --out ${DIR}/want.safetensors)
  run(${EXE} ${step} --out ${DIR}/got.safetensors)
  run(${TOOL} compare ${DIR}/got.safetensors ${DIR}/want.safetensors ${tols})
elseif(MODE STREQUAL "exact" OR MODE STREQUAL "other")
  run(${OTHER} ${step} --out ${DIR}/want.safetensors)
  run(${EXE} ${step} --out ${DIR}/got.safetensors)
  if(MODE STREQUAL "exact")
    run(${TOOL} compare ${DIR}/got.safetensors ${DIR}/want.safetensors --exact)
  else()
    run(${TOOL} compare ${DIR}/got.safetensors ${DIR}/want.safetensors ${tols})
  endif()
else()
  run(${CMAKE_COMMAND} -E env OMP_NUM_THREADS=1 ${EXE} ${step} --out ${DIR}/want.safetensors)
  run(${CMAKE_COMMAND} -E env OMP_NUM_THREADS=2 ${EXE} ${step} --out ${DIR}/got.safetensors)
  run(${TOOL} compare ${DIR}/got.safetensors ${DIR}/want.safetensors --exact)
endif()
file(REMOVE_RECURSE ${DIR})
