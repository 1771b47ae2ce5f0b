# Per-target defaults, applied to every semat target (nothing global in CMAKE_CXX_FLAGS).
function(semat_target_defaults target)
  target_compile_features(${target} PUBLIC cxx_std_17)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter)
  if(SEMAT_WARNINGS_AS_ERRORS)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# semat_add_module(NAME SOURCES ... DEPS ...): a static library semat_NAME whose public headers
# live in modules/NAME/include.
function(semat_add_module name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(semat_${name} STATIC ${ARG_SOURCES})
  target_include_directories(semat_${name} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include)
  target_link_libraries(semat_${name} PUBLIC ${ARG_DEPS})
  semat_target_defaults(semat_${name})
endfunction()

# semat_add_tests(NAME SOURCES ... [DEPS ...] [INCLUDES ...] [LABELS ...] [SLOW ...] [TORCH] [CLI])
# The test executable semat_NAME_tests: a module registers its own tests next to its library
# (modules/NAME/CMakeLists.txt); tests/ registers the apps' end-to-end tests the same way.
#   links      semat_NAME when that library exists, DEPS, GTest's main
#   includes   the calling folder's test/ (fixtures shared by a module's tests) and INCLUDES
#              (relative to the calling folder, e.g. a module's src/ for white-box tests)
#   defines    SEMAT_TEST_DATA (tests/data), SEMAT_SOURCE_DIR (the source tree); with CLI also
#              SEMAT_BINARY (the semat executable, built before the tests)
#   labels     LABELS; without them "unit", or "torch" for TORCH tests (which also get LibTorch);
#              the tests SLOW names (gtest names Suite.Test, '*' wildcards) also get "slow": the
#              ones that take over 20 s (median of full `ctest -j2` runs on the shared 2-core
#              development machine; `make test-fast` skips them)
# Tests run through gtest_discover_tests at test time (PRE_TEST: no test binary runs during the
# build). Does nothing unless SEMAT_BUILD_TESTS is on.
function(semat_add_tests name)
  if(NOT SEMAT_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(ARG "TORCH;CLI" "" "SOURCES;DEPS;INCLUDES;LABELS;SLOW" ${ARGN})
  set(target semat_${name}_tests)
  add_executable(${target} ${ARG_SOURCES})
  if(TARGET semat_${name} AND NOT target STREQUAL semat_${name})  # the module's library
    target_link_libraries(${target} PRIVATE semat_${name})
  endif()
  target_link_libraries(${target} PRIVATE ${ARG_DEPS} GTest::gtest_main)
  if(IS_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/test)
    target_include_directories(${target} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/test)
  endif()
  foreach(dir IN LISTS ARG_INCLUDES)
    target_include_directories(${target} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/${dir})
  endforeach()
  target_compile_definitions(${target} PRIVATE SEMAT_TEST_DATA="${PROJECT_SOURCE_DIR}/tests/data"
                             SEMAT_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  if(ARG_CLI)
    target_compile_definitions(${target} PRIVATE SEMAT_BINARY="$<TARGET_FILE:semat>")
    add_dependencies(${target} semat)
  endif()
  semat_target_defaults(${target})
  set(labels ${ARG_LABELS})
  if(ARG_TORCH)
    semat_use_torch(${target})
    if(NOT labels)
      set(labels torch)
    endif()
  elseif(NOT labels)
    set(labels unit)
  endif()
  # Listing a test executable that links LibTorch took 5 s at load 10 here, gtest's default
  # discovery timeout: ctest then failed before running anything.
  # gtest_discover_tests' PROPERTIES take one value each (a list of labels would be split into
  # property names), so the labels come from a script CTest reads after the discovered tests.
  set(script "")
  if(ARG_SLOW)
    # Two discoveries of one executable, split by a gtest filter: the slow tests and the rest.
    list(JOIN ARG_SLOW ":" slow)
    gtest_discover_tests(${target} DISCOVERY_MODE PRE_TEST TEST_FILTER "-${slow}"
                         TEST_LIST ${target}_FAST DISCOVERY_TIMEOUT 120)
    gtest_discover_tests(${target} DISCOVERY_MODE PRE_TEST TEST_FILTER "${slow}"
                         TEST_LIST ${target}_SLOW DISCOVERY_TIMEOUT 120)
    string(APPEND script "if(${target}_SLOW)\n"
           "  set_tests_properties(\${${target}_SLOW} PROPERTIES LABELS \"${labels};slow\")\n"
           "endif()\n")
  else()
    gtest_discover_tests(${target} DISCOVERY_MODE PRE_TEST TEST_LIST ${target}_FAST DISCOVERY_TIMEOUT 120)
  endif()
  string(APPEND script "if(${target}_FAST)\n"
         "  set_tests_properties(\${${target}_FAST} PROPERTIES LABELS \"${labels}\")\n"
         "endif()\n")
  # Installed models change the engine's defaults (--prior auto = IS-Net when installed), so
  # every test sees an empty models folder; a test of the real model finds it through
  # SEMAT_TEST_MODELS (the folder `make models` filled, read at configure time).
  string(APPEND script "foreach(t IN LISTS ${target}_FAST ${target}_SLOW)\n"
         "  set_tests_properties(\${t} PROPERTIES ENVIRONMENT "
         "\"SEMAT_MODELS=${CMAKE_BINARY_DIR}/no-models;SEMAT_TEST_MODELS=${SEMAT_INSTALLED_MODELS_DIR}\")\n"
         "endforeach()\n")
  file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/${target}_labels.cmake "${script}")
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES
               ${CMAKE_CURRENT_BINARY_DIR}/${target}_labels.cmake)
endfunction()

# semat_add_bench(NAME SOURCES ... [DEPS ...] [INCLUDES ...] [TORCH] [TOOL])
# A module's Google Benchmark executable semat_NAME_bench (links semat_NAME when it exists,
# DEPS and benchmark_main; includes the calling folder's bench/ and INCLUDES; defines
# SEMAT_SOURCE_DIR). `make bench` runs every one of them (the list is written to
# BUILD/benchmarks.txt); the aggregate targets semat_bench / semat_torch_bench build the
# torch-free / LibTorch ones. TOOL: a program with its own main() named semat_NAME, built with
# the benchmarks but not run by `make bench` (e.g. semat_quality's table). Does nothing unless
# SEMAT_BUILD_BENCHMARKS is on.
function(semat_add_bench name)
  if(NOT SEMAT_BUILD_BENCHMARKS)
    return()
  endif()
  cmake_parse_arguments(ARG "TORCH;TOOL" "" "SOURCES;DEPS;INCLUDES" ${ARGN})
  if(ARG_TOOL)
    set(target semat_${name})
  else()
    set(target semat_${name}_bench)
  endif()
  add_executable(${target} ${ARG_SOURCES})
  if(TARGET semat_${name} AND NOT target STREQUAL semat_${name})  # the module's library
    target_link_libraries(${target} PRIVATE semat_${name})
  endif()
  target_link_libraries(${target} PRIVATE ${ARG_DEPS})
  if(NOT ARG_TOOL)
    target_link_libraries(${target} PRIVATE benchmark::benchmark_main)
  endif()
  if(IS_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/bench)
    target_include_directories(${target} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/bench)
  endif()
  foreach(dir IN LISTS ARG_INCLUDES)
    target_include_directories(${target} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/${dir})
  endforeach()
  target_compile_definitions(${target} PRIVATE SEMAT_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  semat_target_defaults(${target})
  if(ARG_TORCH)
    semat_use_torch(${target})
  endif()
  if(ARG_TOOL)
    set_property(GLOBAL APPEND PROPERTY SEMAT_BENCH_TOOLS ${target})
  elseif(ARG_TORCH)
    set_property(GLOBAL APPEND PROPERTY SEMAT_TORCH_BENCHMARKS ${target})
  else()
    set_property(GLOBAL APPEND PROPERTY SEMAT_BENCHMARKS ${target})
  endif()
endfunction()

# After every module: the aggregate targets semat_bench (torch-free benchmarks and tools) and
# semat_torch_bench (LibTorch benchmarks; empty without LibTorch), and BUILD/benchmarks.txt, the
# benchmark executables `make bench` runs, torch-free ones first.
function(semat_finish_benchmarks)
  if(NOT SEMAT_BUILD_BENCHMARKS)
    return()
  endif()
  get_property(plain GLOBAL PROPERTY SEMAT_BENCHMARKS)
  get_property(torch GLOBAL PROPERTY SEMAT_TORCH_BENCHMARKS)
  get_property(tools GLOBAL PROPERTY SEMAT_BENCH_TOOLS)
  add_custom_target(semat_bench)
  add_custom_target(semat_torch_bench)
  if(plain OR tools)
    add_dependencies(semat_bench ${plain} ${tools})
  endif()
  if(torch)
    add_dependencies(semat_torch_bench ${torch})
  endif()
  set(content "")
  foreach(target IN LISTS plain torch)
    string(APPEND content "$<TARGET_FILE:${target}>\n")
  endforeach()
  file(GENERATE OUTPUT ${CMAKE_BINARY_DIR}/benchmarks.txt CONTENT "${content}")
endfunction()
