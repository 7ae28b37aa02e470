"""conv2d's CUDA algorithms run on the host through their wrapper (fastconv/cuda/conv.py):
implicit GEMM (gemm.cu, real 256-thread blocks, tests/cuda/host_blocks.py) and Winograd
F(2x2, 3x3) and F(4x4, 3x3) (conv.cu's transforms, tests/cuda/host_kernels.py, around the GEMMs
of fastconv/cuda/gemm.py), against fastconv._C's conv2d (F(4x4) also against the CPU's own
winograd_4x3 and a float64 direct convolution); Winograd's transforms against their definition
B^T d B, G g G^T, A^T m A in float64; and the rule algo="auto" follows."""
import numpy as np
import pytest

from fastconv import _C
from fastconv.cuda import conv as cuda_conv
from fastconv.cuda import gemm
from tests.conv.test_winograd import ERROR_BOUND, MATRICES
from tests.cuda import host_blocks, host_kernels, hostgrid
from tests.cuda.test_gemm_host import KERNELS as GEMM_KERNELS
from tests.reference import conv2d_reference

# Sums in another order than the CPU's (and, for Winograd, through its transforms).
TOLERANCE = {np.float32: dict(rtol=2e-4, atol=2e-4), np.float64: dict(rtol=1e-11, atol=1e-11)}


@pytest.fixture
def host(monkeypatch):
    host_kernels.install(monkeypatch, "conv")
    return host_blocks.install(monkeypatch, "gemm", GEMM_KERNELS)


def _forward(library, x, w, b, geometry, algo, relu):
    out = np.full(_C.conv2d_output_shape(x.shape, w.shape, *geometry), np.nan, x.dtype)
    library.conv2d_forward(x, w, b, out, *geometry, algo, relu)
    return out


def _compare(rng, dtype, x_shape, w_shape, geometry, algo, bias=True, relu=True):
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype) if bias else None
    got = _forward(cuda_conv, x, w, b, geometry, algo, relu)
    want = _forward(_C, x, w, b, geometry, "im2col", relu)
    np.testing.assert_allclose(got, want, **TOLERANCE[dtype])
    if relu:
        assert (got == 0).any() and (got > 0).any()  # the ReLU had something to do


# (input, weight, (stride, pad_begin, pad_end, dilation, groups)): plain, strided with
# asymmetric padding, dilated, grouped, 1x1, a negative end padding, more output channels than
# one tile has rows (float64's 64).
IMPLICIT_CASES = [
    ((2, 3, 7, 6), (5, 3, 3, 3), ((1, 1), (1, 1), (1, 1), (1, 1), 1)),
    ((1, 4, 9, 8), (6, 4, 3, 2), ((2, 3), (1, 0), (2, 1), (1, 1), 1)),
    ((2, 2, 8, 9), (4, 2, 3, 3), ((1, 2), (2, 1), (0, 2), (2, 3), 1)),
    ((1, 8, 6, 7), (12, 2, 3, 3), ((1, 1), (1, 1), (1, 1), (1, 1), 4)),
    ((2, 5, 5, 4), (7, 5, 1, 1), ((1, 1), (0, 0), (0, 0), (1, 1), 1)),
    ((1, 3, 7, 7), (4, 3, 4, 3), ((2, 2), (1, 2), (-1, 0), (1, 1), 1)),
    ((1, 2, 5, 5), (70, 2, 3, 3), ((1, 1), (1, 1), (1, 1), (1, 1), 1)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", IMPLICIT_CASES)
def test_implicit_gemm_forward_matches_the_cpu(host, rng, dtype, case):
    _compare(rng, dtype, *case, "implicit")
    assert host[f"implicit_conv2d_forward_{'f32' if dtype == np.float32 else 'f64'}"].launches


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_implicit_gemm_s_int64_gather_matches_the_cpu(monkeypatch, rng, dtype):
    """The gather that runs where a size passes 2^32 - 1 (the 32-bit limit set to 0 here)."""
    host_kernels.install(monkeypatch, "conv")
    host_blocks.install(monkeypatch, "gemm", GEMM_KERNELS, prelude="#define FASTCONV_GATHER_32BIT_LIMIT 0\n")
    for case in IMPLICIT_CASES[1:4]:
        _compare(rng, dtype, *case, "implicit")


@pytest.mark.parametrize("case", IMPLICIT_CASES[1:4])
def test_im2col_forward_through_the_tiled_gemm_matches_the_cpu(host, rng, monkeypatch, case):
    monkeypatch.setattr(gemm, "_algorithm", "tiled")
    _compare(rng, np.float32, *case, "im2col")
    assert host["gemm_f32"].launches


def test_implicit_gemm_without_bias_or_relu(host, rng):
    _compare(rng, np.float64, *IMPLICIT_CASES[3], "implicit", bias=False, relu=False)


# Odd and even output sizes (partial 2x2 tiles), asymmetric and negative end padding, groups.
WINOGRAD_CASES = [
    ((2, 3, 7, 6), (5, 3, 3, 3), ((1, 1), (1, 1), (1, 1), (1, 1), 1)),
    ((1, 4, 8, 9), (6, 4, 3, 3), ((1, 1), (0, 2), (1, 0), (1, 1), 1)),
    ((1, 6, 6, 7), (9, 2, 3, 3), ((1, 1), (1, 1), (-1, 1), (1, 1), 3)),
    ((1, 2, 3, 3), (8, 2, 3, 3), ((1, 1), (0, 0), (0, 0), (1, 1), 1)),  # one output pixel
]


@pytest.mark.parametrize("gemm_algorithm", ["tiled", "cublas"])  # "cublas" is numpy's matmul on the host
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", WINOGRAD_CASES)
def test_winograd_2x3_forward_matches_the_cpu(host, rng, monkeypatch, gemm_algorithm, dtype, case):
    monkeypatch.setattr(gemm, "_algorithm", gemm_algorithm)
    _compare(rng, dtype, *case, "winograd_2x3")
    assert bool(host[f"gemm_{'f32' if dtype == np.float32 else 'f64'}"].launches) == (gemm_algorithm == "tiled")


# F(4x4)'s 4x4 tiles clipped at odd and even edges, padding 0 and 1, asymmetric and negative
# end padding, groups, C = 1, K = 7 and 13 (no multiple of a GEMM tile), batch 1 and 2, one
# output pixel, and a 10x9 input of several tiles each way.
WINOGRAD_4X3_CASES = [
    ((2, 3, 7, 6), (5, 3, 3, 3), ((1, 1), (1, 1), (1, 1), (1, 1), 1)),
    ((1, 4, 11, 9), (7, 4, 3, 3), ((1, 1), (0, 0), (0, 0), (1, 1), 1)),
    ((1, 6, 9, 10), (9, 2, 3, 3), ((1, 1), (1, 0), (-1, 1), (1, 1), 3)),
    ((2, 1, 10, 9), (13, 1, 3, 3), ((1, 1), (1, 1), (1, 1), (1, 1), 1)),
    ((1, 5, 13, 7), (7, 5, 3, 3), ((1, 1), (0, 1), (1, 0), (1, 1), 1)),
    ((1, 2, 3, 3), (8, 2, 3, 3), ((1, 1), (0, 0), (0, 0), (1, 1), 1)),  # one output pixel
]


def _relative_error(got, want):
    return np.abs(got - want).max() / np.abs(want).max()


# Every case through numpy's matmul (cuBLAS on a GPU); the tiled GEMM's host run, which F(2x2)'s
# tests already cover on the same batched matmul call, on one (it is slow on the host).
@pytest.mark.parametrize("case, gemm_algorithm", [(case, "cublas") for case in WINOGRAD_4X3_CASES]
                         + [(WINOGRAD_4X3_CASES[0], "tiled")])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_winograd_4x3_forward_matches_the_cpu_s_and_float64(host, rng, monkeypatch, gemm_algorithm, dtype, case):
    """Within the CPU's F(4x4) error bound (tests/conv/test_winograd.py) of both the CPU's
    winograd_4x3 (the same transforms, the channel sums in another order) and the float64 direct
    convolution."""
    monkeypatch.setattr(gemm, "_algorithm", gemm_algorithm)
    x_shape, w_shape, geometry = case
    x, w = rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    got = _forward(cuda_conv, x, w, b, geometry, "winograd_4x3", True)
    stride, pad_begin, pad_end, dilation, groups = geometry
    direct = np.maximum(conv2d_reference(x, w, b, stride, pad_begin, pad_end, dilation, groups), 0)
    bound = ERROR_BOUND["winograd_4x3", dtype]
    assert _relative_error(got, direct) <= bound
    assert _relative_error(got, _forward(_C, x, w, b, geometry, "winograd_4x3", True)) <= bound
    assert (got == 0).any() and (got > 0).any()  # the ReLU had something to do
    assert bool(host[f"gemm_{'f32' if dtype == np.float32 else 'f64'}"].launches) == (gemm_algorithm == "tiled")


@pytest.mark.parametrize("algo", ["winograd_2x3", "winograd_4x3"])
def test_a_non_finite_input_row_cut_off_by_negative_end_padding_does_not_reach_the_output(host, rng, algo):
    """The last input row lies past every window (pad_end -1); Winograd's transforms mix a tile's
    rows, so it must be read as 0, as a direct convolution never reads it."""
    x = rng.standard_normal((1, 2, 6, 6))
    x[..., -1, :] = np.inf
    w = rng.standard_normal((3, 2, 3, 3))
    geometry = ((1, 1), (1, 1), (-1, 1), (1, 1), 1)
    got = _forward(cuda_conv, x, w, None, geometry, algo, False)
    np.testing.assert_allclose(got, _forward(_C, x, w, None, geometry, "im2col", False), rtol=1e-11, atol=1e-11)


TRANSFORMS = r"""
#include "conv/cuda/winograd_body.h"
using F = fastconv::conv::winograd_TILING::Transforms;
extern "C" void input(const double* d, double* v) {
  F::input_transform(*reinterpret_cast<const double(*)[F::alpha][F::alpha]>(d),
                     *reinterpret_cast<double(*)[F::alpha][F::alpha]>(v));
}
extern "C" void filter(const double* g, double* u) {
  F::filter_transform(*reinterpret_cast<const double(*)[3][3]>(g), *reinterpret_cast<double(*)[F::alpha][F::alpha]>(u));
}
extern "C" void output(const double* m, double* y) {
  F::output_transform(*reinterpret_cast<const double(*)[F::alpha][F::alpha]>(m),
                      *reinterpret_cast<double(*)[F::m][F::m]>(y));
}
"""
# Lavin & Gray's matrices, as tests/conv/test_winograd.py writes them.
MATRICES_AS_FLOATS = {tile: {name: np.array(rows, dtype=float) for name, rows in matrices.items()}
                      for tile, matrices in MATRICES.items()}


@pytest.mark.parametrize("tile", [2, 4])
def test_winograd_transforms_are_their_definitions(rng, tile):
    library = hostgrid.build(TRANSFORMS.replace("TILING", f"{tile}x3"))
    alpha = tile + 2
    b_t, g_matrix, a_t = (MATRICES_AS_FLOATS[tile][name] for name in ("BT", "G", "AT"))

    def run(name, x, out_shape):
        out = np.empty(out_shape)
        getattr(library, name)(hostgrid.ptr(np.ascontiguousarray(x)), hostgrid.ptr(out))
        return out

    d, g, m = rng.standard_normal((alpha, alpha)), rng.standard_normal((3, 3)), rng.standard_normal((alpha, alpha))
    np.testing.assert_allclose(run("input", d, (alpha, alpha)), b_t @ d @ b_t.T, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(run("filter", g, (alpha, alpha)), g_matrix @ g @ g_matrix.T, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(run("output", m, (tile, tile)), a_t @ m @ a_t.T, rtol=1e-14, atol=1e-14)
    # Together they are the 3x3 correlation of the alpha x alpha tile: the algorithm's identity.
    y = run("output", run("filter", g, (alpha, alpha)) * run("input", d, (alpha, alpha)), (tile, tile))
    direct = [[np.sum(d[a:a + 3, b:b + 3] * g) for b in range(tile)] for a in range(tile)]
    np.testing.assert_allclose(y, direct, rtol=1e-13, atol=1e-13)


UNIT = ((1, 1), (1, 1), (1, 1), (1, 1), 1)


@pytest.mark.parametrize("input_shape, weight_shape, geometry, expected", [
    ((8, 64, 56, 56), (64, 64, 3, 3), UNIT, "winograd_4x3"),
    ((8, 64, 6, 6), (64, 64, 3, 3), UNIT, "winograd_2x3"),  # 4 F(4x4) tiles, as many points as 9 F(2x2)
    ((8, 64, 7, 7), (64, 64, 3, 3), UNIT, "winograd_4x3"),
    ((8, 64, 2, 2), (64, 64, 3, 3), UNIT, "winograd_2x3"),  # too small to fill a 4x4 tile
    ((8, 64, 28, 28), (64, 32, 3, 3), ((1, 1), (1, 1), (1, 1), (1, 1), 2), "winograd_4x3"),  # 32 per group
    ((8, 16, 32, 32), (16, 16, 3, 3), UNIT, "im2col"),  # too few channels for Winograd
    ((8, 64, 28, 28), (128, 64, 3, 3), ((2, 2), (1, 1), (1, 1), (1, 1), 1), "im2col"),  # strided
    ((8, 64, 56, 56), (64, 2, 3, 3), ((1, 1), (1, 1), (1, 1), (1, 1), 32), "implicit"),  # grouped
    ((8, 64, 56, 56), (128, 1, 3, 3), ((2, 2), (1, 1), (1, 1), (1, 1), 64), "depthwise"),
    ((8, 1, 28, 28), (32, 1, 5, 5), UNIT, "depthwise"),  # one input channel: a depthwise layer too
    ((64, 64, 224, 224), (64, 64, 5, 5), ((1, 1), (2, 2), (2, 2), (1, 1), 1), "implicit"),  # 20 GB of columns
])
def test_auto_follows_its_documented_rule(input_shape, weight_shape, geometry, expected):
    assert cuda_conv.conv2d_heuristic(input_shape, weight_shape, *geometry) == expected


def test_auto_runs_the_rule_s_choice(host, rng, monkeypatch):
    chosen = []
    monkeypatch.setitem(cuda_conv.FORWARD, "implicit", lambda *a: chosen.append("implicit"))
    x, w = np.zeros((1, 4, 6, 6)), np.zeros((4, 2, 3, 3))
    cuda_conv.conv2d_forward(x, w, None, np.empty((1, 4, 6, 6)), *UNIT[:4], 2, "auto")
    assert chosen == ["implicit"]


@pytest.mark.parametrize("algo, weight_shape, geometry, message", [
    ("winograd_2x3", (2, 2, 5, 5), UNIT, "winograd_2x3 runs 3x3 kernels at stride 1 without dilation"),
    ("winograd_2x3", (2, 2, 3, 3), ((2, 1), (1, 1), (1, 1), (1, 1), 1), "at stride 1"),
    ("winograd_2x3", (2, 2, 3, 3), ((1, 1), (1, 1), (1, 1), (1, 2), 1), "without dilation"),
    ("winograd_4x3", (2, 2, 5, 5), UNIT, "winograd_4x3 runs 3x3 kernels at stride 1 without dilation"),
    ("winograd_4x3", (2, 2, 3, 3), ((2, 2), (1, 1), (1, 1), (1, 1), 1), "at stride 1"),
    ("winograd_4x3", (2, 2, 3, 3), ((1, 1), (1, 1), (1, 1), (2, 1), 1), "without dilation"),
    ("fft", (2, 2, 3, 3), ((1, 1), (1, 1), (1, 1), (1, 2), 1), "fft needs dilation 1"),
    ("direct", (2, 2, 3, 3), UNIT, "direct runs on the CPU only"),
])
def test_what_an_algorithm_cannot_run_is_refused_by_name(host, algo, weight_shape, geometry, message):
    x = np.zeros((1, 2, 9, 9))
    out = np.empty(_C.conv2d_output_shape(x.shape, weight_shape, *geometry))
    assert message in cuda_conv.conv2d_unsupported_reason(algo, x.shape, weight_shape, *geometry)
    with pytest.raises(ValueError, match=f"algo: .*{message}"):
        cuda_conv.conv2d_forward(x, np.zeros(weight_shape), None, out, *geometry, algo)
    assert all(not kernel.launches for kernel in host.values())


def _gradients(library, algo, x, w, dy, geometry):
    dx, dw, db = np.empty_like(x), np.empty_like(w), np.empty(w.shape[0])
    library.conv2d_backward_input(dy, w, dx, *geometry, algo)
    library.conv2d_backward_weight(x, dy, dw, db, *geometry, algo)
    return dx, dw, db


@pytest.mark.parametrize("gemm_algorithm", ["tiled", "cublas"])  # the tiled GEMM reads w^T as a strided view
@pytest.mark.parametrize("algo", ["implicit", "winograd_2x3", "winograd_4x3"])
def test_the_gradients_of_every_algorithm_run_im2col(host, rng, monkeypatch, algo, gemm_algorithm):
    monkeypatch.setattr(gemm, "_algorithm", gemm_algorithm)
    x, w = rng.standard_normal((2, 4, 6, 5)), rng.standard_normal((6, 2, 3, 3))
    geometry = ((1, 1), (1, 1), (1, 1), (1, 1), 2)
    dy = rng.standard_normal(_C.conv2d_output_shape(x.shape, w.shape, *geometry))
    for got, want in zip(_gradients(cuda_conv, algo, x, w, dy, geometry), _gradients(_C, "im2col", x, w, dy, geometry)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("gemm_algorithm", ["tiled", "cublas"])
def test_an_empty_batch_runs_every_direction(host, monkeypatch, gemm_algorithm):
    """N = 0: nothing to compute, the weight gradient is 0 (reshapes name every size: -1 cannot
    be inferred from 0 elements)."""
    monkeypatch.setattr(gemm, "_algorithm", gemm_algorithm)
    x, w, dy = np.zeros((0, 2, 5, 5)), np.ones((4, 2, 3, 3)), np.zeros((0, 4, 5, 5))
    for algo in cuda_conv.ALGORITHMS:
        if cuda_conv.conv2d_unsupported_reason(algo, x.shape, w.shape, *UNIT) is None:
            cuda_conv.conv2d_forward(x, w, None, np.empty(dy.shape), *UNIT, algo)
    for algo in ("im2col", "fft"):
        cuda_conv.conv2d_backward_input(dy, w, np.empty(x.shape), *UNIT, algo)
        dw = np.full(w.shape, np.nan)
        cuda_conv.conv2d_backward_weight(x, dy, dw, None, *UNIT, algo)
        np.testing.assert_array_equal(dw, 0)


def test_pixel_shuffle_is_refused_by_the_cuda_wrappers():
    """The CPU library's Winograd writes a pixel-shuffled output; the CUDA kernels do not, and
    say so before reading anything."""
    x, w = np.zeros((1, 4, 6, 6), np.float32), np.zeros((8, 4, 3, 3), np.float32)
    geometry = ((1, 1), (1, 1), (1, 1), (1, 1), 1)
    with pytest.raises(ValueError, match="pixel_shuffle: the CUDA kernels take 1 only"):
        cuda_conv.conv2d_forward(x, w, None, np.zeros((1, 2, 12, 12), np.float32), *geometry, "winograd_4x3",
                                 pixel_shuffle=2)
    with pytest.raises(ValueError, match="pixel_shuffle: the CUDA kernels take 1 only"):
        cuda_conv.conv2d_backward_input(np.zeros((1, 2, 12, 12), np.float32), w, x, *geometry, "winograd_4x3",
                                        pixel_shuffle=2)
