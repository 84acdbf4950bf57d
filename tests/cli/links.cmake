# caec (check, compile, build) links none of the runtime's kernels, data or
# trainer, nor libnifti, libpng or GSL: the tools that need them are apart
# (compiler/tools/). Run with cmake -P, CAEC the executable.
execute_process(COMMAND readelf -d ${CAEC} OUTPUT_VARIABLE dynamic RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "readelf -d ${CAEC} failed")
endif()
string(REGEX MATCHALL "Shared library: \\[[^]]*\\]" needed "${dynamic}")
message(STATUS "${needed}")
if(needed MATCHES "libnifti|libpng|libgsl|libz\\.")
  message(FATAL_ERROR "caec needs a library of the runtime's: ${needed}")
endif()
# Global functions of the kernels (ref_, kc_, kp_), the data pipeline and
# trainer (caec_*), NIfTI, PNG and GSL: what their libraries define. The
# header-only inlines caec may use (kinds.h, kern_types.h) are local (t) where
# a debug build does not inline them.
execute_process(COMMAND nm --defined-only ${CAEC} OUTPUT_VARIABLE symbols RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "nm ${CAEC} failed")
endif()
string(REGEX MATCHALL "[^\n]* T (ref_|kc_|kp_|caec_|nifti|png_|gsl_)[^\n]*" runtime "${symbols}")
if(runtime)
  message(FATAL_ERROR "caec holds the runtime's functions: ${runtime}")
endif()
message(STATUS "caec links no runtime beyond util")
