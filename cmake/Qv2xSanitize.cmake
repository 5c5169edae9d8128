# Sanitizer and fuzzing builds (docs/RELIABILITY.md).
#
# QV2X_SANITIZE=address,undefined | thread | "" instruments every target of the project
# (clang or gcc). QV2X_FUZZ=ON (clang only, implies address,undefined) also builds the
# fuzz/ targets as libFuzzer executables; without it they are built as corpus-replay
# programs. System libraries (LibTorch, gRPC, protobuf) stay uninstrumented: sanitizers/
# holds the runtime options and suppressions they need.
set(QV2X_SANITIZE "" CACHE STRING "Sanitizers for every target: address,undefined | thread | empty")
set_property(CACHE QV2X_SANITIZE PROPERTY STRINGS "" "address,undefined" "thread")
option(QV2X_FUZZ "Build the fuzz/ targets as libFuzzer executables (clang)" OFF)

if(QV2X_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "QV2X_FUZZ=ON needs clang (libFuzzer), not ${CMAKE_CXX_COMPILER_ID}")
  endif()
  if(QV2X_SANITIZE STREQUAL "")
    set(QV2X_SANITIZE "address,undefined" CACHE STRING "" FORCE)
  elseif(NOT QV2X_SANITIZE STREQUAL "address,undefined")
    message(FATAL_ERROR "QV2X_FUZZ=ON runs with address,undefined, not QV2X_SANITIZE=${QV2X_SANITIZE}")
  endif()
endif()

if(QV2X_SANITIZE STREQUAL "address,undefined")
  # A UB report fails the test or the fuzz run instead of scrolling past.
  set(_qv2x_san_flags -fsanitize=address,undefined -fno-sanitize-recover=undefined)
elseif(QV2X_SANITIZE STREQUAL "thread")
  set(_qv2x_san_flags -fsanitize=thread)
elseif(NOT QV2X_SANITIZE STREQUAL "")
  message(FATAL_ERROR "QV2X_SANITIZE must be address,undefined, thread or empty, not \"${QV2X_SANITIZE}\"")
endif()

if(QV2X_FUZZ)
  # libFuzzer's coverage in every object, not only in the libraries the fuzzers reach: a
  # precompiled header and its users must agree on it, and the LibTorch modules share
  # theirs with the tests.
  list(APPEND _qv2x_san_flags -fsanitize=fuzzer-no-link)
endif()
if(_qv2x_san_flags)
  # Frame pointers keep the sanitizers' stack traces complete and cheap.
  add_compile_options(${_qv2x_san_flags} -fno-omit-frame-pointer)
  add_link_options(${_qv2x_san_flags})
  message(STATUS "qv2x: sanitizers ${QV2X_SANITIZE}")
endif()
