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
