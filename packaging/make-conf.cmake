# Writes the packaged /etc/herald/herald.conf: the header HEAD, then the documented
# example EXAMPLE from its first section banner on, so that both list the same options
# with the same defaults and comments.
#   cmake -DHEAD=… -DEXAMPLE=… -DOUT=… -P make-conf.cmake
file(READ "${HEAD}" head)
file(READ "${EXAMPLE}" example)
string(FIND "${example}" "# -----" at)
if(at LESS 0)
  message(FATAL_ERROR "${EXAMPLE}: no '# -----' section banner: the packaged herald.conf cannot be made from it")
endif()
string(SUBSTRING "${example}" ${at} -1 body)
file(WRITE "${OUT}" "${head}${body}")
