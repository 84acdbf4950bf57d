# Runs a command that must fail in a given way, as ctest runs it with cmake -P:
#   CMD (the command, |-separated), RC (its exit status), REGEX (what its
#   output, stdout and stderr together, must contain).
string(REPLACE "|" ";" cmd "${CMD}")
execute_process(COMMAND ${cmd} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc STREQUAL "${RC}")
  message(FATAL_ERROR "exit status ${rc}, not ${RC}:\n${out}")
endif()
if(NOT out MATCHES "${REGEX}")
  message(FATAL_ERROR "the output does not match '${REGEX}':\n${out}")
endif()
message(STATUS "exit status ${rc} and '${REGEX}', as expected")
