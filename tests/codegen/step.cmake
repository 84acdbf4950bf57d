# One check of a generated trainer, run by ctest as cmake -P with:
#   EXE TOOL DIR N SIZE ARGS (the step options, |-separated) MODE, and per mode:
#   interp:  CAEC CAE       the trainer's step against `caec interp` on the same
#                           weights and batch (fp32 against double), within tols
#   exact:   OTHER          the same step of another trainer, bitwise (planned vs
#                           unplanned)
#   other:   OTHER          the same step of another trainer within tols (the
#                           CUDA back end against the C one)
#   threads:                the same trainer on 1 and on 2 OpenMP threads, bitwise
# Both sides start from the trainer's `init`; with interp, caec's init must give
# bitwise the same weights.
string(REPLACE "|" ";" args "${ARGS}")
# Every element within RTOL * |want| + ATOL + FLOOR * rms(want) of its tensor
# (sttool compare --tol GLOB=RTOL,ATOL,FLOOR; the first rule that matches).
# Each is 5 to 10 times the worst error measured (2026-12, the six models of
# tests/codegen, one step of mse with l2 and of dssim, 10 SGD steps against
# the interpreter, and 3 SGD steps of the emulated CUDA trainer against the C
# one), as a fraction of its bound in brackets:
#  - loss and y: relative errors of fp32 rounding (1.5e-7 and 7.9e-6) [0.15];
#  - running variances: 0.99 * 1 + 0.01 * var rounded to fp32, a few ulps after
#    10 steps (2.6e-7) [0.13]; a biased variance (count for count - 1) moves
#    them by 1e-4 to 5e-3 and fails;
#  - running means: 0.01 * a mean that can cancel to near 0, so a floor [0.13];
#  - gradients: sums of many terms of both signs, whose rounding scales with
#    the tensor's RMS, not the element (1.9e-5 of the RMS at rtol 1e-4) [0.19];
#    a bias's gradient before a batch norm is 0 but for rounding (|got| up to
#    2.1e-8), so biases get an absolute floor [0.17];
#  - updated parameters: w - lr g, fp32 rounding of w plus lr times the
#    gradient's error [0.11]; biases the same with an absolute floor [0.11].
set(tols
    --tol loss=1e-6,0 --tol y=5e-5,0
    --tol *.running_var=2e-6,0 --tol *.running_mean=1e-4,0,4e-6
    --tol grad.*.bias=1e-4,2e-7,1e-4 --tol grad.*=1e-4,0,1e-4
    --tol *.bias=1e-4,1e-9,2e-5 --tol *=4e-6,0,4e-7)
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
