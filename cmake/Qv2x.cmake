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
  if(name STREQUAL "qv2x_model")
    target_precompile_headers(${name} PRIVATE <torch/torch.h>)
  else()
    qv2x_torch_pch(${name})
  endif()
endfunction()

# qv2x_torch_pch(TARGET [source ...]): the listed sources of TARGET (all of them when none is
# listed) include qv2x_model's precompiled <torch/torch.h>. One header for the whole tree:
# each one costs 70-120 s to build and 700 MB; a file that parses <torch/torch.h> itself
# costs 40-80 s. The other sources skip it, since loading it costs ~10 s.
function(qv2x_torch_pch target)
  target_precompile_headers(${target} REUSE_FROM qv2x_model)
  if(NOT ARGN)
    return()
  endif()
  set(_users)
  foreach(_src ${ARGN})
    get_filename_component(_n ${_src} NAME)
    list(APPEND _users ${_n})
  endforeach()
  get_target_property(_srcs ${target} SOURCES)
  foreach(_src ${_srcs})
    get_filename_component(_n ${_src} NAME)
    if(NOT _n IN_LIST _users)
      set_source_files_properties(${_src} TARGET_DIRECTORY ${target}
                                  PROPERTIES SKIP_PRECOMPILE_HEADERS ON)
    endif()
  endforeach()
endfunction()
