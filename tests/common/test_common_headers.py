"""csrc/common holds the geometry and sampling math that every device's kernels share. These tests
hold it to its two promises: it compiles both as host C++ and as CUDA (nvcc, for sm_80 and sm_90),
and the sizes it computes are the ones fastconv._C computes (and, for valid_range, brute force)."""
import itertools
import pathlib
import re
import shutil
import subprocess

import pytest

from fastconv import _C

ROOT = pathlib.Path(__file__).resolve().parents[2]
CSRC = ROOT / "csrc"
HERE = pathlib.Path(__file__).resolve().parent
HEADERS = sorted(p.relative_to(CSRC).as_posix() for p in (CSRC / "common").glob("*.h"))
WARNINGS = ["-Wall", "-Wextra", "-Werror"]

needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not on PATH")
needs_nvcc = pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not on PATH: no CUDA toolkit")


def compile_or_fail(command):
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(map(str, command))}\n{result.stdout}{result.stderr}"


@needs_gxx
@pytest.mark.parametrize("header", HEADERS)
def test_header_compiles_alone_as_host_cpp(header, tmp_path):
    unit = tmp_path / "unit.cpp"
    unit.write_text(f'#include "{header}"\n')
    compile_or_fail(["g++", "-std=c++17", *WARNINGS, "-fsyntax-only", f"-I{CSRC}", unit])


def test_cuda_unit_includes_every_common_header():
    included = set(re.findall(r'#include "(common/[^"]+)"', (HERE / "common_headers.cu").read_text()))
    missing = sorted(set(HEADERS) - included)
    assert not missing, f"add {missing} to tests/common/common_headers.cu and call its functions there"


@needs_nvcc
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_common_headers_compile_as_cuda(arch, tmp_path):
    compile_or_fail(["nvcc", "-std=c++17", "-c", f"-arch={arch}", f"-I{CSRC}", "--Werror", "all-warnings",
                     "-Xcompiler", ",".join(WARNINGS), HERE / "common_headers.cu", "-o", tmp_path / "common.o"])


@pytest.fixture(scope="module")
def geometry(tmp_path_factory):
    """Asks the host build of csrc/common a list of questions (geometry_table.cpp); returns the answers."""
    if shutil.which("g++") is None:
        pytest.skip("g++ is not on PATH")
    binary = tmp_path_factory.mktemp("geometry") / "geometry_table"
    compile_or_fail(["g++", "-std=c++17", *WARNINGS, f"-I{CSRC}", HERE / "geometry_table.cpp", "-o", binary])

    def ask(questions):
        lines = "".join(" ".join(map(str, q)) + "\n" for q in questions)
        result = subprocess.run([binary], input=lines, capture_output=True, text=True, check=True)
        return result.stdout.split("\n")[: len(questions)]

    return ask


def size_or_error(fn, *args):
    try:
        return str(fn(*args))
    except ValueError:
        return "error"


def test_conv_output_size_agrees_with_C(geometry):
    grid = list(itertools.product(range(1, 10), range(1, 6), range(1, 4), range(0, 3), range(-1, 3), range(1, 4)))
    answers = geometry([("conv", *g) for g in grid])
    for (n, k, s, pb, pe, d), answer in zip(grid, answers):
        expected = size_or_error(lambda: _C.conv2d_output_shape((1, 1, n, n), (1, 1, k, k), (s, s), (pb, pb),
                                                                (pe, pe), (d, d), 1)[2])
        assert answer == expected, (n, k, s, pb, pe, d)


def test_conv_transpose_output_size_agrees_with_C(geometry):
    grid = list(itertools.product(range(1, 7), range(1, 5), range(1, 4), range(0, 4), range(0, 4), range(1, 4)))
    answers = geometry([("conv_transpose", *g) for g in grid])
    for (n, k, s, p, op, d), answer in zip(grid, answers):
        expected = size_or_error(lambda: _C.conv_transpose2d_output_shape((1, 1, n, n), (1, 1, k, k), (s, s), (p, p),
                                                                          (op, op), (d, d), 1)[2])
        assert answer == expected, (n, k, s, p, op, d)


def test_pool_output_size_agrees_with_C(geometry):
    grid = list(itertools.product(range(1, 10), range(1, 6), range(1, 4), range(0, 4), range(1, 4), (0, 1)))
    answers = geometry([("pool", *g) for g in grid])
    for (n, k, s, p, d, ceil), answer in zip(grid, answers):
        expected = size_or_error(lambda: _C.pool2d_output_shape((1, 1, n, n), (k, k), (s, s), (p, p), (d, d),
                                                                bool(ceil))[2])
        assert answer == expected, (n, k, s, p, d, ceil)


def test_valid_range_is_the_taps_inside(geometry):
    grid = list(itertools.product(range(-7, 8), range(1, 5), range(0, 9), range(0, 9)))
    answers = geometry([("range", *g) for g in grid])
    for (offset, stride, limit, count), answer in zip(grid, answers):
        lo, hi = map(int, answer.split())
        inside = [i for i in range(count) if 0 <= offset + i * stride < limit]
        assert list(range(lo, hi)) == inside, (offset, stride, limit, count)
