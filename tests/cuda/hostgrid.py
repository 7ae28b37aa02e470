"""Runs a CUDA kernel's per-thread body on the CPU, over the whole grid.

Where a kernel needs no shared memory, its body is a FASTCONV_HD function in a header under
csrc/<family>/cuda/ (or csrc/common/); the .cu kernel calls it once per thread. A test writes a
few lines of C++ that include the same header and loop it over every thread index, compiles them
here with the host compiler into a shared library, and calls it through ctypes on numpy arrays:
without a GPU, CI still executes the exact code the GPU runs and compares it with the CPU kernel.

    lib = hostgrid.build('''
        #include "roi/cuda/roi_align_body.h"
        extern "C" void run(const float* x, float* y, int64_t n) {
            for (int64_t i = 0; i < n; ++i) y[i] = fastconv::some_body(x, i);
        }''')
    lib.run(hostgrid.ptr(x), hostgrid.ptr(y), ctypes.c_int64(n))
"""
import ctypes
import hashlib
import pathlib
import shutil
import subprocess
import tempfile

import numpy as np
import pytest

CSRC = pathlib.Path(__file__).resolve().parents[2] / "csrc"
FLAGS = ["-std=c++17", "-O1", "-shared", "-fPIC", "-Wall", "-Wextra", "-Werror", "-fno-strict-aliasing"]
_BUILD_DIR = pathlib.Path(tempfile.gettempdir()) / "fastconv_hostgrid"


def _headers_digest():
    digest = hashlib.sha256()
    for source in sorted([*CSRC.rglob("*.h"), *CSRC.rglob("*.cu")]):  # a test may include a .cu
        digest.update(source.read_bytes())
    return digest


def build(source):
    """The shared library compiled from C++ `source` (with csrc/ on the include path); cached by
    the text of the source and of every csrc header and .cu, so an edited body recompiles."""
    if shutil.which("g++") is None:
        pytest.skip("g++ is not on PATH: the host-side run of the CUDA bodies needs it")
    digest = _headers_digest()
    digest.update(source.encode())
    library = _BUILD_DIR / f"body_{digest.hexdigest()[:20]}.so"
    if not library.exists():
        _BUILD_DIR.mkdir(exist_ok=True)
        unit = library.with_suffix(".cpp")
        unit.write_text(source)
        partial = library.with_suffix(".tmp.so")  # a parallel test worker never loads a half-written file
        result = subprocess.run(["g++", *FLAGS, f"-I{CSRC}", str(unit), "-o", str(partial)],
                                capture_output=True, text=True)
        assert result.returncode == 0, f"host build of a CUDA body failed:\n{result.stderr}"
        partial.replace(library)
    return ctypes.CDLL(str(library))


def ptr(array):
    """The data pointer of a C-contiguous numpy array, for a ctypes call."""
    assert array.flags.c_contiguous, "hostgrid passes C-contiguous arrays only"
    return ctypes.c_void_p(array.ctypes.data)


def i64(value):
    return ctypes.c_int64(int(value))


def f64(value):
    return ctypes.c_double(float(value))
