"""Every CUDA source of the package (csrc/<family>/cuda/*.cu, found by glob) compiles for the
GPUs fastconv supports, both ways it is compiled: by nvcc for sm_80 and sm_90 with warnings as
errors, and by NVRTC with the options fastconv compiles it with at run time
(loader.compile_options(), plus what CuPy adds), which is what a user's GPU runs. Each
(source, arch, compiler) is compiled once per session; no driver or GPU is needed."""
import functools
import pathlib
import re
import shutil
import subprocess

import pytest

from fastconv.cuda import loader

CSRC = loader.source_root()
SOURCES = sorted(p.relative_to(CSRC).as_posix() for p in CSRC.glob("*/cuda/*.cu"))
ARCHS = ("sm_80", "sm_90")
# What CuPy adds to loader.compile_options() when it compiles a RawModule through NVRTC
# (cupy/cuda/compiler.py): flush float32 denormals to zero, and device code by default.
CUPY_NVRTC_OPTIONS = ("-ftz=true", "--device-as-default-execution-space")
HOST_WARNINGS = "-Wall,-Wextra,-Werror"


def test_every_family_source_is_found():
    assert "norm/cuda/norm.cu" in SOURCES and "pool/cuda/pool.cu" in SOURCES


@pytest.mark.parametrize("source", SOURCES)
def test_every_include_resolves_under_the_source_root(source):
    """What loader.module reads at run time finds every header it includes (csrc/common and the
    family's cuda/ folder), in a checkout and in an installed package."""
    pending, seen = [source], set()
    while pending:
        unit = pending.pop()
        if unit in seen:
            continue
        seen.add(unit)
        path = CSRC / unit
        assert path.is_file(), f"{unit} (included by the chain from {source}) is not under {CSRC}"
        pending += re.findall(r'^\s*#include "([^"]+)"', path.read_text(), re.MULTILINE)
    unguarded = [u for u in seen if u != "common/c_headers.h"
                 and re.search(r"^\s*#include <", (CSRC / u).read_text(), re.MULTILINE)]
    assert not unguarded, f"{unguarded}: NVRTC has no system headers; include common/c_headers.h instead"


@functools.lru_cache(maxsize=None)
def _nvcc(source, arch, out_dir):
    command = ["nvcc", "-std=c++17", "-c", f"-arch={arch}", f"-I{CSRC}", "-DFASTCONV_RUNTIME_COMPILED=1",
               "--Werror", "all-warnings", "-Xcompiler", HOST_WARNINGS, str(CSRC / source),
               "-o", str(pathlib.Path(out_dir) / f"{source.replace('/', '_')}.{arch}.o")]
    result = subprocess.run(command, capture_output=True, text=True)
    return result.returncode, result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not on PATH: no CUDA toolkit")
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("source", SOURCES)
def test_compiles_with_nvcc(source, arch, tmp_path_factory):
    code, log = _nvcc(source, arch, str(tmp_path_factory.getbasetemp()))
    assert code == 0, f"nvcc -arch={arch} {source}:\n{log}"


def _nvrtc():
    try:
        from cuda.bindings import nvrtc
        nvrtc.nvrtcVersion()  # loads libnvrtc (the nvidia-cuda-nvrtc wheel)
    except Exception as exc:
        pytest.skip(f"NVRTC is not usable here ({type(exc).__name__}: {exc}); "
                    f"pip install cuda-bindings nvidia-cuda-nvrtc")
    return nvrtc


@functools.lru_cache(maxsize=None)
def _nvrtc_compile(source, arch):
    """(ok, log) of NVRTC compiling `source` with loader.compile_options() for `arch`."""
    nvrtc = _nvrtc()
    err, program = nvrtc.nvrtcCreateProgram((CSRC / source).read_bytes(), source.encode(), 0, [], [])
    assert err == nvrtc.nvrtcResult.NVRTC_SUCCESS, err
    options = [o.encode() for o in (*loader.compile_options(), *CUPY_NVRTC_OPTIONS, f"--gpu-architecture={arch}")]
    try:
        (err,) = nvrtc.nvrtcCompileProgram(program, len(options), options)
        _, size = nvrtc.nvrtcGetProgramLogSize(program)
        log = b" " * size
        nvrtc.nvrtcGetProgramLog(program, log)
    finally:
        nvrtc.nvrtcDestroyProgram(program)
    return err == nvrtc.nvrtcResult.NVRTC_SUCCESS, log.decode(errors="replace").strip()


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("source", SOURCES)
def test_compiles_with_nvrtc_as_at_run_time(source, arch):
    ok, log = _nvrtc_compile(source, arch)
    assert ok, f"NVRTC {' '.join(loader.compile_options())} --gpu-architecture={arch} {source}:\n{log}"
    assert "warning" not in log, log
