# The Python binding (python/, `import semat`): built from this same build when pybind11 is found
# (Debian: pybind11-dev, python3-dev). The interpreter is Debian's /usr/bin/python3 when it
# exists (pass -DPython_EXECUTABLE=... for another one), so ctest runs pytest with it.
#
# The extension is a shared object that links the static semat libraries, so with the binding
# every object file is compiled -fPIC (Debian's gcc defaults to -fPIE, whose objects cannot go
# into a shared object). One flag for all targets keeps LibTorch's shared precompiled header
# valid for every target that reuses it.
if(NOT DEFINED Python_EXECUTABLE AND EXISTS /usr/bin/python3)
  set(Python_EXECUTABLE /usr/bin/python3 CACHE FILEPATH "semat: Python interpreter for the binding")
endif()
set(PYBIND11_FINDPYTHON ON)  # CMake's FindPython with Python_EXECUTABLE, not pybind11's old lookup
find_package(Python COMPONENTS Interpreter Development.Module QUIET)
if(Python_FOUND)
  find_package(pybind11 CONFIG QUIET)
endif()
set(_semat_python_default OFF)
if(Python_FOUND AND pybind11_FOUND)
  set(_semat_python_default ON)
endif()
option(SEMAT_BUILD_PYTHON "semat: build the Python module (python/, needs pybind11)" ${_semat_python_default})
if(SEMAT_BUILD_PYTHON)
  if(NOT Python_FOUND OR NOT pybind11_FOUND)
    message(FATAL_ERROR "semat: SEMAT_BUILD_PYTHON is ON but Python's headers or pybind11 were not "
                        "found (apt-get install python3-dev pybind11-dev)")
  endif()
  message(STATUS "semat: Python binding for ${Python_EXECUTABLE} (${Python_VERSION}), pybind11 ${pybind11_VERSION}")
  add_compile_options(-fPIC)
endif()
