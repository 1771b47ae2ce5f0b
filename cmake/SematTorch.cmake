# LibTorch is looked up here once. Targets that use it call semat_use_torch(target), which links
# it and reuses one precompiled header of <torch/torch.h> (building that header costs ~45 s and
# ~0.5 GB; each torch file then compiles in about a third of the time).
find_package(Torch QUIET)
if(Torch_FOUND)
  message(STATUS "semat: LibTorch ${Torch_VERSION} found")
  set(SEMAT_HAVE_TORCH ON)
  if(SEMAT_USE_PCH)
    set(_pch_src ${CMAKE_BINARY_DIR}/semat_torch_pch.cpp)
    # file(CONFIGURE) rewrites the file only when its content changes: a new timestamp at every
    # configure would rebuild the header and, with it, every LibTorch object file.
    file(CONFIGURE OUTPUT ${_pch_src}
         CONTENT "// generated: carrier of the shared LibTorch precompiled header\n")
    add_library(semat_torch_pch OBJECT EXCLUDE_FROM_ALL ${_pch_src})
    target_link_libraries(semat_torch_pch PUBLIC ${TORCH_LIBRARIES})
    semat_target_defaults(semat_torch_pch)
    target_precompile_headers(semat_torch_pch PRIVATE <torch/torch.h> <vector> <string>
                              <memory> <unordered_map>)
  endif()
else()
  message(STATUS "semat: LibTorch not found; model modules are skipped")
  set(SEMAT_HAVE_TORCH OFF)
endif()

function(semat_use_torch target)
  target_link_libraries(${target} PUBLIC ${TORCH_LIBRARIES})
  if(SEMAT_USE_PCH AND TARGET semat_torch_pch)
    target_precompile_headers(${target} REUSE_FROM semat_torch_pch)
  endif()
endfunction()
