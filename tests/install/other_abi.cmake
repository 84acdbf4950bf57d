# Generated source as a caec of the next interface version would record it:
# IN with its CaecModel's .abi one higher, into OUT (run with cmake -P).
file(READ ${IN} text)
string(REPLACE ".abi = " ".abi = 1 + " text "${text}")
file(WRITE ${OUT} "${text}")
