"""pip install --no-build-isolation ./python: builds the _semat extension with the project's CMake
build (the repository's build/ folder, or $SEMAT_BUILD_DIR) and installs the semat package.

Needs what `make deps` installs (cmake, ninja, pybind11-dev, python3-dev, OpenCV...); no package
index. The extension is built for the interpreter running pip.
"""
import os
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        build = os.path.abspath(os.environ.get("SEMAT_BUILD_DIR", os.path.join(ROOT, "build")))
        if not os.path.exists(os.path.join(build, "CMakeCache.txt")):
            subprocess.check_call(["cmake", "-S", ROOT, "-B", build, "-G", "Ninja",
                                   "-DCMAKE_BUILD_TYPE=Release",
                                   # the interpreter pip runs (a venv's python links to it)
                                   f"-DPython_EXECUTABLE={os.path.realpath(sys.executable)}"])
        jobs = os.environ.get("JOBS", "2")
        subprocess.check_call(["cmake", "--build", build, "-j", jobs, "--target", "semat_python"])
        built = os.path.join(build, "python", "semat", os.path.basename(self.get_ext_filename(ext.name)))
        if not os.path.exists(built):
            sys.exit(f"semat: {built} was not built (is SEMAT_BUILD_PYTHON on in {build}?)")
        target = self.get_ext_fullpath(ext.name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(built, target)


setup(
    name="semat",
    version="0.1.0",
    description="Interactive natural image matting (SEMat) and Segment Anything without PyTorch",
    packages=["semat"],
    ext_modules=[Extension("semat._semat", sources=[])],
    cmdclass={"build_ext": CMakeBuild},
    python_requires=">=3.9",
    install_requires=["numpy"],
    zip_safe=False,
)
