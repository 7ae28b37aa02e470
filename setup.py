"""Builds fastconv._C: every .cpp under csrc/ is globbed, so a new kernel needs no edit here.

The binary targets baseline x86-64; the AVX2 and AVX-512 micro-kernels carry their own
`#pragma GCC target` and are chosen at run time (csrc/core/isa.cpp). The flags below name no
instruction set, so the same build compiles on aarch64, where those files are empty and the
portable kernels run (csrc/core/arch.h).

The CUDA kernels are compiled on the user's machine at first use (fastconv/cuda/loader.py), so
their sources ship inside the package: csrc/common/*.h and csrc/<family>/cuda/* are copied to
fastconv/csrc/ (cuda_sources()), where loader.source_root() finds them.
"""
import glob
import os
import shutil
import sys

from pybind11.setup_helpers import ParallelCompile, Pybind11Extension, build_ext
from setuptools import setup
from setuptools.command.build_py import build_py

ParallelCompile("FASTCONV_BUILD_JOBS", default=os.cpu_count() or 2).install()

sources = sorted(glob.glob("csrc/**/*.cpp", recursive=True))
headers = sorted(glob.glob("csrc/**/*.h", recursive=True))  # a changed header rebuilds
compile_args = ["-O3", "-fopenmp", "-fno-math-errno", "-Wall", "-Wno-unknown-pragmas"]
link_args = ["-fopenmp"]
if sys.platform == "darwin":  # Apple clang has no -fopenmp; the kernels then run single-threaded
    compile_args = [a for a in compile_args if a != "-fopenmp"]
    link_args = []

ext = Pybind11Extension(
    "fastconv._C",
    sources,
    include_dirs=["csrc"],
    depends=headers,
    cxx_std=17,
    extra_compile_args=compile_args,
    extra_link_args=link_args,
)



def cuda_sources():
    """The files the CUDA kernels are compiled from, relative to csrc/."""
    files = glob.glob("csrc/common/*.h") + glob.glob("csrc/*/cuda/*")
    return sorted(os.path.relpath(f, "csrc") for f in files if os.path.isfile(f))


class build_py_with_cuda_sources(build_py):
    """build_py, then the CUDA sources copied into the built package as fastconv/csrc/."""

    def run(self):
        super().run()
        for relative in cuda_sources():
            target = os.path.join(self.build_lib, "fastconv", "csrc", relative)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copyfile(os.path.join("csrc", relative), target)


setup(ext_modules=[ext], cmdclass={"build_ext": build_ext, "build_py": build_py_with_cuda_sources})
