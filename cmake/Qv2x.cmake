# qv2x_core_module(NAME dir DEPS ...): one static library per core/ subfolder, built from
# every .cc in it, so that each part builds and tests on its own.
function(qv2x_core_module name dir)
  cmake_parse_arguments(ARG "" "" "DEPS" ${ARGN})
  file(GLOB _srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/${dir}/*.cc)
  if(_srcs)
    add_library(${name} STATIC ${_srcs})
    target_include_directories(${name} PUBLIC ${CMAKE_SOURCE_DIR})
    target_link_libraries(${name} PUBLIC ${ARG_DEPS} PRIVATE qv2x_warnings)
  else()  # header-only so far
    add_library(${name} INTERFACE)
    target_include_directories(${name} INTERFACE ${CMAKE_SOURCE_DIR})
    target_link_libraries(${name} INTERFACE ${ARG_DEPS})
  endif()
endfunction()

# qv2x_test(NAME src LABEL label DEPS ...): one GoogleTest binary per test file.
function(qv2x_test name src)
  cmake_parse_arguments(ARG "" "LABEL;TIMEOUT" "DEPS" ${ARGN})
  add_executable(${name} ${src})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main GTest::gmock
                                        qv2x_warnings)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  if(NOT ARG_LABEL)
    set(ARG_LABEL unit)
  endif()
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  add_test(NAME ${name} COMMAND ${name} WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(${name} PROPERTIES LABELS ${ARG_LABEL} TIMEOUT ${ARG_TIMEOUT}
                       ENVIRONMENT "OMP_NUM_THREADS=2;BLIS_NUM_THREADS=2;OMP_WAIT_POLICY=PASSIVE;QV2X_BUILD_DIR=${CMAKE_BINARY_DIR}")
endfunction()

# The library a test or bench file links follows from its name: <module>_*.cc links
# qv2x_<module> .
function(qv2x_module_of file out)
  get_filename_component(_base ${file} NAME_WE)
  string(REGEX MATCH "^[a-z]+" _mod ${_base})
  set(${out} qv2x_${_mod} PARENT_SCOPE)
endfunction()

# Like qv2x_core_module, for the LibTorch parts; skipped while the folder has no sources.
function(qv2x_torch_module name dir)
  cmake_parse_arguments(ARG "" "" "DEPS" ${ARGN})
  file(GLOB _srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/${dir}/*.cc)
  if(NOT _srcs)
    return()
  endif()
  add_library(${name} STATIC ${_srcs})
  target_include_directories(${name} PUBLIC ${CMAKE_SOURCE_DIR})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS} "${TORCH_LIBRARIES}" PRIVATE qv2x_warnings)
  # -pthread on the library and (PUBLIC) its users, so that test targets, which get it from
  # GoogleTest, can reuse the precompiled header.
  target_compile_options(${name} PUBLIC -pthread)
  target_precompile_headers(${name} PRIVATE <torch/torch.h>)
endfunction()
