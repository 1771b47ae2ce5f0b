# ccache and lld when present; nothing here is required for a correct build.
if(SEMAT_USE_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  find_program(SEMAT_CCACHE ccache)
  if(SEMAT_CCACHE)
    # PCH-compatible settings (ccache docs: "Precompiled headers").
    set(CMAKE_CXX_COMPILER_LAUNCHER
        ${CMAKE_COMMAND} -E env
        "CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime"
        ${SEMAT_CCACHE})
    message(STATUS "semat: using ccache ${SEMAT_CCACHE}")
  endif()
endif()

if(SEMAT_USE_LLD)
  find_program(SEMAT_LLD ld.lld)
  if(SEMAT_LLD)
    include(CheckLinkerFlag)
    check_linker_flag(CXX "-fuse-ld=lld" SEMAT_HAS_LLD)
    if(SEMAT_HAS_LLD)
      add_link_options(-fuse-ld=lld)
      message(STATUS "semat: linking with lld")
    endif()
  endif()
endif()

if(SEMAT_SANITIZE)
  add_compile_options(-fsanitize=${SEMAT_SANITIZE} -fno-omit-frame-pointer)
  add_link_options(-fsanitize=${SEMAT_SANITIZE})
endif()
