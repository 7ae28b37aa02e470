"""Builds fastconv._C: every .cpp under csrc/ is globbed, so a new kernel needs no edit here.

The binary targets baseline x86-64; the AVX2 and AVX-512 micro-kernels carry their own
`#pragma GCC target` and are chosen at run time (csrc/core/isa.cpp).
"""
import glob
import os
import sys

from pybind11.setup_helpers import ParallelCompile, Pybind11Extension, build_ext
from setuptools import setup

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

setup(ext_modules=[ext], cmdclass={"build_ext": build_ext})
