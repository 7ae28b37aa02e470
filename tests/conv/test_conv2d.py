import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import fastconv
from fastconv import _C, _runtime, ops
from fastconv.backend import DeviceError, to_device, to_host
from fastconv.ops import conv_algo, conv_cache
from fastconv.ops.conv import conv2d_arguments
from tests.conv.conv_gradients import assert_gradients_match_numeric
from tests.functional_cases import run_until_chosen
from tests.reference import conv2d_reference, numeric_gradient

RNG = np.random.default_rng(5)

# (N, C, H, W, K, R, S, stride, padding, dilation, groups)
CASES = [
    (1, 1, 5, 5, 1, 3, 3, 1, 0, 1, 1),
    (2, 3, 9, 7, 4, 3, 3, 1, 1, 1, 1),
    (3, 4, 10, 11, 6, 3, 2, 2, (1, 2), (2, 1), 2),
    (2, 8, 5, 5, 8, 1, 1, 1, 0, 1, 1),          # pointwise: no column matrix
    (5, 24, 7, 9, 40, 1, 1, 1, 0, 1, 1),        # pointwise, 63 pixels per image: panels straddle images
    (2, 8, 5, 6, 4, 1, 1, 2, 0, 1, 2),          # strided 1x1 uses im2col
    (1, 6, 6, 6, 6, 3, 3, 1, "same", 1, 6),     # depthwise
    (2, 4, 9, 8, 8, 3, 2, 2, (2, 1), (1, 2), 4),  # depthwise, multiplier 2, strided, dilated
    (2, 5, 7, 37, 10, 3, 3, (2, 1), (1, 2), (2, 1), 5),  # depthwise by rows of registers: a partial last vector
    (2, 3, 6, 35, 9, 3, 3, 1, (1, 2), (1, 2), 3),  # depthwise, multiplier 3, stride 1: input gradient by rows too
    (2, 4, 11, 50, 4, 5, 5, 1, 2, 1, 4),        # depthwise 5x5, rows of several vectors, 25 taps in blocks
    (1, 3, 6, 21, 6, 4, 3, (2, 1), (3, 4), (1, 2), 3),  # depthwise, padding wider than the kernel
    (2, 2, 5, 19, 2, 2, 2, 1, "same", 1, 2),    # depthwise, even kernel: asymmetric padding
    (2, 4, 8, 8, 4, 4, 4, 1, "same", 1, 1),     # even kernel: asymmetric padding
    (2, 4, 8, 7, 4, 3, 3, 1, "same", 2, 1),
    (1, 2, 4, 4, 3, 6, 6, 1, 1, 1, 1),          # kernel as large as the padded input
    (2, 3, 7, 9, 5, 2, 3, 3, 4, 1, 1),          # padding larger than the kernel
    (1, 17, 13, 11, 19, 3, 3, 1, 1, 1, 1),      # channels not multiples of the vector width
    (2, 6, 9, 9, 9, 5, 5, 2, "valid", 1, 3),
    (2, 4, 7, 8, 6, 3, 3, 1, 1, 1, 2),          # groups at stride 1: implicit's input gradient, rotated per group
    (2, 3, 6, 7, 4, 3, 3, 1, 3, 1, 1),          # stride 1, padding past the kernel's reach: implicit's is im2col's
]


ALGOS = conv_algo.algorithms()
# Relative error bound per algorithm, float32 / float64, as a fraction of max|y| (documented in
# the README). Exact-arithmetic algorithms differ from the reference only by rounding.
# Winograd and FFT bounds: tests/conv/test_winograd.py and test_fft.py measure and assert them.
TOLERANCE = {"im2col": (1e-5, 1e-12), "implicit": (1e-5, 1e-12), "direct": (1e-5, 1e-12), "depthwise": (1e-5, 1e-12),
             "winograd_2x3": (1e-5, 1e-12), "winograd_4x3": (2e-5, 1e-12), "winograd_2x5": (2e-5, 1e-12), "winograd_4x5": (4e-5, 1e-12),
             "winograd_4x2": (2e-5, 1e-12),
             "fft": (1e-5, 1e-12)}


def _reference(x, w, b, stride, padding, dilation, groups):
    st, pb, pe, dl, g = conv2d_arguments(w.shape, stride, padding, dilation, groups)
    return conv2d_reference(x, w, b, st, pb, pe, dl, g)


def _operands(rng, case, dtype):
    """x, w, b of a CASES-style case, standard normal."""
    n, c, h, w_, k, r, s, _, _, _, groups = case
    x = rng.standard_normal((n, c, h, w_)).astype(dtype)
    w = rng.standard_normal((k, c // groups, r, s)).astype(dtype)
    return x, w, rng.standard_normal(k).astype(dtype)


def _unsupported(algo, x, w, stride, padding, dilation, groups):
    args = conv2d_arguments(w.shape, stride, padding, dilation, groups)
    return _C.conv2d_unsupported_reason(algo, x.shape, w.shape, *args)


def _refused(algo, x, w, b, stride, padding, dilation, groups, **options):
    """Whether `algo` cannot run the convolution; if so, checks that ops.conv2d says so."""
    if _unsupported(algo, x, w, stride, padding, dilation, groups) is None:
        return False
    with pytest.raises(ValueError, match=f"algo='{algo}' cannot run this convolution"):
        ops.conv2d(x, w, b, stride, padding, dilation, groups, algo=algo, **options)
    return True


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv2d_forward_matches_direct_reference(isa, rng, algo, case, dtype):
    n, c, h, w_, k, r, s, stride, padding, dilation, groups = case
    x, w, b = _operands(rng, case, dtype)
    if _refused(algo, x, w, b, stride, padding, dilation, groups):
        return
    out = np.full(ops.conv2d(x, w, b, stride, padding, dilation, groups, algo="im2col").shape, np.nan, dtype)
    _C.conv2d_forward(x, w, b, out, *conv2d_arguments(w.shape, stride, padding, dilation, groups), algo, False)
    ref = _reference(x, w, b, stride, padding, dilation, groups)
    assert out.dtype == dtype and out.shape == ref.shape
    tol = TOLERANCE[algo][dtype == np.float64]
    np.testing.assert_allclose(out, ref, rtol=0, atol=tol * max(1.0, np.abs(ref).max()) * np.sqrt(c * r * s))


@pytest.mark.parametrize("algo", ALGOS)
def test_conv2d_fused_relu(device, rng, algo):
    x = rng.standard_normal((2, 8, 9, 9))
    w = rng.standard_normal((16, 8, 3, 3))
    b = rng.standard_normal(16)
    if _unsupported(algo, x, w, 1, 1, 1, 1) is None:
        y = to_host(ops.conv2d(*(to_device(a, device) for a in (x, w, b)), padding=1, algo=algo, relu=True))
        np.testing.assert_allclose(y, np.maximum(_reference(x, w, b, 1, 1, 1, 1), 0), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("stride", [1, (1, 2)])  # row kernel; the plain loop (width stride 2)
def test_depthwise_fused_bias_and_relu(isa, device, rng, stride):
    x = rng.standard_normal((2, 6, 9, 21))
    w = rng.standard_normal((12, 1, 3, 3))
    b = rng.standard_normal(12)
    y = to_host(ops.conv2d(*(to_device(a, device) for a in (x, w, b)), stride, 1, 1, 6, algo="depthwise", relu=True))
    np.testing.assert_allclose(y, np.maximum(_reference(x, w, b, stride, 1, 1, 6), 0), rtol=1e-12, atol=1e-12)


# Implicit GEMM's stride phases (csrc/conv/cpu/implicit_gemm.cpp): large strides and kernels, a
# stride that does not divide the kernel, dilation beside stride, groups, and outputs narrower
# than a micro-panel, each cut into several bands of output rows.
IMPLICIT_CASES = [
    (2, 3, 39, 35, 10, 11, 11, 4, 0, 1, 1),            # AlexNet's conv1, smaller
    (3, 3, 30, 27, 17, 7, 7, 2, 3, 1, 1),              # the 7x7/2 stem, smaller
    (2, 6, 17, 19, 9, 5, 4, (3, 2), (2, 1), (2, 3), 3),
    (1, 2, 6, 40, 4, 2, 3, (1, 3), (0, 4), 1, 1),
    (1, 48, 10, 9, 200, 3, 3, 1, 1, 1, 1),              # C*R*S over kc, K over mc: k slices, A blocks
    (2, 96, 9, 64, 14, 3, 3, 2, 1, 1, 2),               # rows of whole tiles (Q = 32), written straight into y
]


def _assert_forward_with_relu(algo, case, x, w, b):
    """The forward of `algo` with bias and fused ReLU against the float64 reference; returns it."""
    n, c, h, w_, k, r, s, stride, padding, dilation, groups = case
    args = conv2d_arguments(w.shape, stride, padding, dilation, groups)
    ref = np.maximum(_reference(x, w, b, stride, padding, dilation, groups), 0)
    out = np.full(ref.shape, np.nan, x.dtype)
    _C.conv2d_forward(x, w, b, out, *args, algo, True)
    tol = TOLERANCE[algo][x.dtype == np.float64]
    np.testing.assert_allclose(out, ref, rtol=0, atol=tol * np.abs(ref).max() * np.sqrt(c * r * s))
    return ref


@pytest.mark.parametrize("case", IMPLICIT_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_implicit_gemm_strided_phases(isa, rng, stream_stores, case, dtype):
    _assert_forward_with_relu("implicit", case, *_operands(rng, case, dtype))


# The residual added where each algorithm stores its outputs (ops.conv2d's residual=): GEMM tiles
# straight into y and through a buffer (pointwise panels straddling images), implicit GEMM's rows
# of whole tiles and its blocks copied out, Winograd's and FFT's whole and partial tiles, groups,
# strides; direct and depthwise add it in a pass after.
RESIDUAL_CASES = [
    CASES[1], CASES[2], CASES[3], CASES[4], CASES[7], CASES[17],
    IMPLICIT_CASES[4], IMPLICIT_CASES[5],    # depth in k slices (the residual comes with the last); rows of whole tiles
    (2, 16, 12, 20, 24, 3, 3, 1, 1, 1, 1),      # Winograd: whole 4x4 tiles in every lane
    (1, 6, 23, 21, 5, 5, 5, 1, 2, 1, 1),        # 5x5: partial tiles on both edges
]


def _with_residual(ref, residual, relu):
    out = ref + residual
    return np.where(out < 0, 0, out) if relu else out  # NaN passes the ReLU, as torch.relu


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("case", RESIDUAL_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv2d_adds_residual_before_relu(isa, rng, algo, case, dtype):
    n, c, h, w_, k, r, s, stride, padding, dilation, groups = case
    x, w, b = _operands(rng, case, dtype)
    ref = _reference(x, w, b, stride, padding, dilation, groups)
    residual = rng.standard_normal(ref.shape).astype(dtype) * 3
    residual[0, 0, 0, :2] = [np.nan, -np.inf]
    residual[-1, -1, -1, -1] = np.inf
    if _refused(algo, x, w, b, stride, padding, dilation, groups, residual=residual):
        return
    args = conv2d_arguments(w.shape, stride, padding, dilation, groups)
    tol = TOLERANCE[algo][dtype == np.float64] * max(1.0, np.abs(ref).max()) * np.sqrt(c * r * s)
    for relu in (False, True):
        out = np.full(ref.shape, np.nan, dtype)  # every value must be written
        _C.conv2d_forward(x, w, b, out, *args, algo, relu, None, residual)
        np.testing.assert_allclose(out, _with_residual(ref, residual, relu), rtol=0, atol=tol)


def test_conv2d_residual_in_either_layout_and_on_each_device(device, rng):
    x = rng.standard_normal((2, 16, 10, 9))
    w = rng.standard_normal((16, 16, 3, 3))
    b = rng.standard_normal(16)
    residual = rng.standard_normal((2, 16, 10, 9))
    expected = _with_residual(_reference(x, w, b, 1, 1, 1, 1), residual, True)
    for algo in ("auto", "im2col"):
        y = ops.conv2d(*(to_device(a, device) for a in (x, w, b)), padding=1, algo=algo, relu=True,
                       residual=to_device(residual, device))
        np.testing.assert_allclose(to_host(y), expected, rtol=1e-10, atol=1e-10)
    if device == "cpu":  # a channels_last input gives a channels_last output, whatever the residual's layout
        cl = lambda a: np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
        for r in (residual, cl(residual)):
            y = ops.conv2d(cl(x), w, b, padding=1, relu=True, residual=r)
            assert y.transpose(0, 2, 3, 1).flags.c_contiguous
            np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-10)


def test_conv2d_residual_is_checked_against_the_output(rng):
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    with pytest.raises(ValueError, match=r"residual: expected the output's shape \(2, 4, 6, 6\), got \(2, 4, 8, 8\)"):
        ops.conv2d(x, w, residual=np.zeros((2, 4, 8, 8), np.float32))
    with pytest.raises(TypeError, match="residual: dtype float64 does not match input's float32"):
        ops.conv2d(x, w, residual=np.zeros((2, 4, 6, 6)))
    out = np.empty((2, 4, 6, 6), np.float32)
    args = conv2d_arguments(w.shape, 1, 0, 1, 1)
    with pytest.raises(ValueError, match="residual"):  # the kernel's own check, before it touches memory
        _C.conv2d_forward(x, w, None, out, *args, "im2col", True, None, np.zeros((2, 4, 5, 6), np.float32))
    # out is written while the residual is read (a deep GEMM in slices writes out first)
    with pytest.raises(ValueError, match="residual: must not share memory with out"):
        _C.conv2d_forward(x, w, None, out, *args, "im2col", True, None, out)


# Width-stride-2 rows of 16 values or more are copied by vectors (csrc/conv/cpu/packing.h: 16 a
# vector on AVX-512, 8 on AVX2, then one at a time): rows of exactly 16 (the last vector's second
# load stops at the row's last value, here the plane's), of 16 + 8 + 3 and of 2 * 16 + 1.
STRIDE2_ROW_CASES = [
    (2, 3, 5, 31, 4, 1, 1, 2, 0, 1, 1),
    (1, 2, 6, 54, 3, 3, 3, 2, 1, 1, 1),
    (1, 2, 5, 66, 3, 1, 1, (1, 2), 0, 1, 1),
]


@pytest.mark.parametrize("algo", ["im2col", "implicit"])
@pytest.mark.parametrize("case", STRIDE2_ROW_CASES)
def test_stride2_rows_of_every_isa(isa, rng, algo, case):
    x, w, b = _operands(rng, case, np.float32)
    if _unsupported(algo, x, w, *case[7:]) is not None:
        pytest.skip(f"{algo} does not run this shape")
    _assert_forward_with_relu(algo, case, x, w, b)


# Direct convolution's stride phases (csrc/conv/cpu/direct.cpp): strides 2 and 3 along either
# axis, a stride above the kernel (phases no tap reads), dilation sharing or splitting the
# phases, odd sizes, batch 1, channel counts off the vector width, groups, 1x1 at stride 2.
DIRECT_STRIDED_CASES = [
    (2, 3, 9, 11, 5, 3, 3, 2, 1, 1, 1),
    (1, 1, 13, 7, 7, 3, 3, (3, 2), 2, 1, 1),
    (1, 2, 7, 8, 3, 3, 2, (1, 2), (0, 2), 1, 1),
    (2, 4, 13, 10, 6, 5, 3, 3, 2, (1, 2), 2),
    (1, 4, 11, 17, 4, 3, 3, (2, 3), 1, 3, 4),
    (2, 5, 12, 15, 13, 1, 1, 2, 0, 1, 1),
    (2, 1, 30, 29, 3, 2, 2, (1, 5), 0, 1, 1),
    (1, 3, 20, 37, 9, 7, 7, 2, 3, 1, 1),
    # Stride 2 along rows of whole vectors (16 or 32 pixels), in channels that take AVX-512's
    # tiles where it runs: a plane per tap column (direct.h) with 1-4 columns, the last column
    # past the input's right edge (W = 31), the 8-channel two-row tile (even P; 20 channels: a
    # last block of 4) and the 16 x 1 one (odd P), dilated rows, groups.
    (2, 3, 9, 31, 16, 3, 3, 2, 1, 1, 1),
    (2, 4, 8, 32, 20, 3, 3, 2, 1, 1, 1),
    (1, 3, 8, 64, 16, 4, 4, 2, 1, 1, 1),
    (2, 3, 7, 31, 16, 2, 2, 2, (0, 1), 1, 1),
    (2, 3, 6, 32, 16, 3, 1, 2, 0, 1, 1),
    (2, 3, 12, 32, 16, 3, 3, 2, (2, 1), (2, 1), 1),
    (2, 4, 9, 32, 32, 3, 3, (1, 2), 1, 1, 2),
]


def _weight_gradient_reference(x, gy, weight_shape, stride, padding, dilation, groups):
    """float64 sum over images and output pixels of gy times the input pixel each tap reads."""
    (sh, sw), (pt, pl), (pb, pr), (dh, dw), g = conv2d_arguments(weight_shape, stride, padding, dilation, groups)
    x = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    gy = gy.astype(np.float64)
    k, cg, r, s = weight_shape
    p, q = gy.shape[2:]
    dw_ref = np.zeros(weight_shape)
    for i in range(r):
        for j in range(s):
            taps = x[:, :, i * dh:i * dh + sh * (p - 1) + 1:sh, j * dw:j * dw + sw * (q - 1) + 1:sw]
            for group in range(g):
                ks, cs = slice(group * (k // g), (group + 1) * (k // g)), slice(group * cg, (group + 1) * cg)
                dw_ref[ks, :, i, j] = np.einsum("nkpq,ncpq->kc", gy[:, ks], taps[:, cs])
    return dw_ref


@pytest.mark.parametrize("case", DIRECT_STRIDED_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_direct_strided_phases(isa, rng, case, dtype):
    _, _, _, _, _, _, _, stride, padding, dilation, groups = case
    x, w, b = _operands(rng, case, dtype)
    if isa == "generic":  # the direct kernels are AVX2's
        with pytest.raises(ValueError, match="direct convolution needs AVX2"):
            ops.conv2d(x, w, b, stride, padding, dilation, groups, algo="direct")
        return
    _assert_forward_with_relu("direct", case, x, w, b)
    _assert_direct_weight_gradient(rng, case, x, w)


def _assert_direct_weight_gradient(rng, case, x, w):
    """direct's weight gradient for a random grad_output against the float64 sum."""
    n, _, _, _, _, _, _, stride, padding, dilation, groups = case
    y_shape = _C.conv2d_output_shape(x.shape, w.shape, *conv2d_arguments(w.shape, stride, padding, dilation, groups))
    gy = rng.standard_normal(y_shape).astype(x.dtype)
    dw_ref = _weight_gradient_reference(x, gy, w.shape, stride, padding, dilation, groups)
    dw = ops.conv2d_weight(x, w.shape, gy, stride, padding, dilation, groups, algo="direct")
    tol = TOLERANCE["direct"][x.dtype == np.float64]
    np.testing.assert_allclose(dw, dw_ref, rtol=0, atol=tol * np.abs(dw_ref).max() * np.sqrt(n * gy[0, 0].size))


# (N, C, H, W, K, R, S, stride, padding, dilation, groups): shapes whose row tile differs by ISA
# (direct.h's row_tile): with AVX-512, 8 channels of two 16-pixel rows (an even number of
# rows; at stride 2, and with a partial last block of 4 channels), 16 x 1 (an odd number of
# 16-pixel rows), 8 x 2 (8 channels of 30 pixels: a partial last vector), 12 x 2 (12 channels of
# 32 pixels); AVX2's 6 x 2 and 12 x 1.
DIRECT_TILE_CASES = [
    (2, 5, 18, 18, 32, 3, 3, 1, 0, 1, 1),
    (2, 6, 20, 27, 20, 3, 3, 2, 1, 1, 1),
    (2, 5, 17, 18, 32, 3, 3, 1, 0, 1, 1),
    (2, 3, 7, 32, 8, 3, 3, 1, (1, 0), 1, 1),
    (1, 4, 5, 34, 12, 3, 3, 1, 0, 1, 1),
    (2, 3, 9, 9, 13, 2, 2, 1, 0, 1, 1),
]


# Kernels whose taps leave each remainder of the weight-gradient kernel's groups of taps (direct.h:
# three at a time with AVX2, six with AVX-512): 5, 8 (6 + 2), 10 (9 + 1 / 6 + 4), 121, and a
# grouped layer of one output channel per group (blocks of one channel).
DIRECT_WEIGHT_TAP_CASES = [
    (2, 3, 10, 12, 5, 1, 5, 1, (0, 2), 1, 1),
    (2, 2, 9, 14, 6, 2, 4, 1, 1, 1, 1),
    (1, 3, 8, 9, 4, 2, 5, 1, 1, 1, 1),
    (1, 2, 16, 16, 3, 11, 11, 1, 5, 1, 1),
    (2, 4, 9, 10, 4, 2, 4, 1, 1, 1, 4),
]


# Weight gradients of 16 or more input channels, which run by tap tiles over vectors of input
# channels (kernels.h's conv2d_backward_weight_taps; 4 output channels x 6 taps with AVX-512, 4 x 3
# with AVX2): output channels short of a block (7, 5, 6), input channels short of a vector (20,
# 17), 9 taps (6 + 3), 25 and 49 (a last block of 3 holding 1), 15 (6 + 6 + 3) and 16 (a last
# block of 6 holding 4), strided and dilated, an even kernel's asymmetric padding, and one image
# (fewer images than threads: the NCHW kernel's path). The tiles skip the rows and columns where a
# tap reads only padding: padding past the kernel's reach (rows and columns no tap reaches) and a
# stride-2 5x5 whose first inside column differs by tap.
WEIGHT_TAP_TILE_CASES = [
    (2, 16, 9, 10, 7, 3, 3, 1, 1, 1, 1),
    (2, 20, 8, 9, 5, 5, 5, 1, 2, 1, 1),
    (2, 16, 12, 11, 4, 7, 7, 1, 3, 1, 1),
    (3, 17, 9, 13, 6, 3, 5, (2, 1), (1, 2), (2, 1), 1),
    (2, 32, 7, 6, 8, 4, 4, 1, "same", 1, 1),
    (1, 16, 8, 8, 4, 3, 3, 1, 1, 1, 1),
    (2, 16, 5, 6, 4, 3, 3, 1, 3, 1, 1),
    (2, 16, 11, 9, 5, 5, 5, 2, (4, 3), 1, 1),
]


@pytest.mark.parametrize("case", DIRECT_TILE_CASES + DIRECT_WEIGHT_TAP_CASES + WEIGHT_TAP_TILE_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_direct_kernels_of_every_isa(isa, rng, case, dtype):
    if isa == "generic":
        pytest.skip("direct convolution needs AVX2 (test_direct_strided_phases checks the refusal)")
    x, w, b = _operands(rng, case, dtype)
    _assert_forward_with_relu("direct", case, x, w, b)
    _assert_direct_weight_gradient(rng, case, x, w)


# An input whose last value ends a page, the next page unreadable: a kernel reading one value
# past the array (a full vector over the last stride-2 row of the last plane) crashes the worker.
_READS_END_OF_INPUT = """
import ctypes, mmap, sys
import numpy as np
import fastconv
from fastconv import ops
page = mmap.PAGESIZE
buffer = mmap.mmap(-1, 2 * page)
base = ctypes.addressof(ctypes.c_char.from_buffer(buffer))
libc = ctypes.CDLL(None)
assert libc.mprotect(ctypes.c_void_p(base + page), page, 0) == 0  # PROT_NONE
shape = (1, 2, 5, 32)  # stride-2 rows of 16 values, the last one at the end of the input
x = np.frombuffer(buffer, np.float32, count=int(np.prod(shape)), offset=page - 4 * int(np.prod(shape))).reshape(shape)
x[...] = np.random.default_rng(0).standard_normal(shape)
for algo in sys.argv[1:]:
    groups, stride = (2, 1) if algo == "depthwise" else (1, 2)  # depthwise: masked loads along whole rows
    w = np.random.default_rng(1).standard_normal((4, 2 // groups, 3, 3)).astype(np.float32)
    ref = ops.conv2d(x.astype(np.float64), w.astype(np.float64), None, stride, 1, 1, groups, algo="im2col")
    y = ops.conv2d(x, w, None, stride, 1, 1, groups, algo=algo)
    assert np.abs(y - ref).max() < 1e-4, algo
    gy = np.ones(y.shape, np.float32)
    dw = ops.conv2d_weight(x, w.shape, gy, stride, 1, 1, groups, algo=algo)
    dw_ref = ops.conv2d_weight(x.astype(np.float64), w.shape, gy.astype(np.float64), stride, 1, 1, groups, algo="im2col")
    assert np.abs(dw - dw_ref).max() < 1e-3, algo
"""


def test_strided_copies_read_nothing_past_the_input():
    algos = [a for a in ("im2col", "implicit", "direct", "depthwise") if a in ALGOS]
    done = subprocess.run([sys.executable, "-c", _READS_END_OF_INPUT, *algos], capture_output=True, text=True,
                          cwd=pathlib.Path(__file__).parents[2], env={**os.environ, "PYTHONPATH": str(
                              pathlib.Path(ops.__file__).parents[2])})
    assert done.returncode == 0, done.stderr[-2000:]


def test_gradient_kernel_names_the_kernel_each_gradient_runs():
    def kernel(algo, direction, weight_shape):
        args = conv2d_arguments(weight_shape, 1, 3, 1, 1)
        return _C.conv2d_gradient_kernel(algo, direction, (2, weight_shape[1], 20, 20), weight_shape, *args)
    assert kernel("implicit", "input", (8, 8, 3, 3)) == kernel("implicit", "weight", (8, 8, 3, 3)) == "im2col"
    assert kernel("winograd_4x3", "weight", (8, 8, 3, 3)) == "winograd_4x3"
    assert kernel("fft", "input", (8, 8, 5, 5)) == "fft"
    assert kernel("fft", "weight", (8, 8, 5, 5)) == "im2col"     # FFT's own only from 7x7 ...
    assert kernel("fft", "weight", (8, 8, 7, 7)) == "im2col"     # ... with 256 channel pairs
    assert kernel("fft", "weight", (16, 16, 7, 7)) == "fft"
    with pytest.raises(ValueError, match="direction: expected 'input' or 'weight'"):
        kernel("fft", "forward", (8, 8, 7, 7))


def test_auto_caches_one_choice_per_shape(rng):
    x = rng.standard_normal((2, 8, 9, 9)).astype(np.float32)
    w = rng.standard_normal((16, 8, 3, 3)).astype(np.float32)
    for mode in ("deterministic", "benchmark"):
        conv_algo.set_mode(mode)
        y = run_until_chosen(lambda: ops.conv2d(x, w, padding=1))
        choices = conv_algo.chosen()
        assert len(choices) == 1 and list(choices.values())[0] in ALGOS
        ops.conv2d(x, w, padding=1)
        assert conv_algo.chosen() == choices
        np.testing.assert_allclose(y, _reference(x, w, None, 1, 1, 1, 1), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="mode: expected one of"):
        conv_algo.set_mode("fast")
    with pytest.raises(ValueError, match="algo: expected 'auto', 'winograd' or one of"):
        ops.conv2d(x, w, algo="magic")


DEPTHWISE_CASES = [case for case in CASES if case[1] == case[10]]


@pytest.mark.parametrize("case", DEPTHWISE_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_depthwise_gradients_on_every_isa(isa, rng, case, dtype):
    """The depthwise kernels' input, weight and bias gradients (vector kernels by ISA, the bias
    gradient summed inside the weight kernel) against the float64 reference's numeric gradients."""
    n, c, h, w_, k, r, s, stride, padding, dilation, groups = case
    x, w, _ = _operands(rng, case, dtype)
    args = conv2d_arguments(w.shape, stride, padding, dilation, groups)
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    gy = rng.standard_normal(conv2d_reference(x64, w64, None, *args).shape).astype(dtype)
    dx, dw, db = ops.conv2d_backward(x, w, gy, stride, padding, dilation, groups, algo="depthwise")
    gy64 = gy.astype(np.float64)
    expected = (numeric_gradient(lambda xx: conv2d_reference(xx, w64, None, *args), x64, gy64),
                numeric_gradient(lambda ww: conv2d_reference(x64, ww, None, *args), w64, gy64),
                gy64.sum(axis=(0, 2, 3)))
    tol = TOLERANCE["depthwise"][dtype == np.float64]
    for ours, ref in zip((dx, dw, db), expected):
        assert ours.dtype == dtype
        scale = max(1.0, np.abs(ref).max()) * np.sqrt(gy[0, 0].size * n * r * s)
        np.testing.assert_allclose(ours, ref, rtol=0, atol=max(tol, 1e-9) * scale)


# 3 x 3 depthwise planes at stride 1 (N, C, H, W, multiplier, padding): rows of one vector, of a
# pair and a tail, of two pairs (AVX-512's streamed rows), no padding, two outputs per channel.
STREAMED_3X3 = [(2, 4, 28, 28, 1, 1), (3, 3, 13, 40, 1, 1), (1, 2, 30, 70, 1, 0), (2, 3, 9, 17, 2, 1)]


@pytest.mark.skipif(not {"avx2", "avx512"} <= set(_runtime.supported_isas()), reason="needs AVX2 and AVX-512")
@pytest.mark.parametrize("shape", STREAMED_3X3)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_depthwise_3x3_streamed_rows_agree_on_every_isa(rng, shape, dtype):
    """A 3 x 3 plane's input rows stream through once (depthwise_rows.h's columns3x3: two
    vectors at a time on AVX-512, one on AVX2), every output's taps added in the row blocks'
    order on both, so the forward (bias, ReLU) and the input gradient agree bit for bit (the
    float64 references of the every-ISA tests check the values)."""
    n, c, h, w_, multiplier, pad = shape
    x = rng.standard_normal((n, c, h, w_)).astype(dtype)
    w = rng.standard_normal((c * multiplier, 1, 3, 3)).astype(dtype)
    bias = rng.standard_normal(c * multiplier).astype(dtype)
    results = {}
    previous = _runtime.get_isa()
    try:
        for isa in ("avx2", "avx512"):
            fastconv.set_isa(isa)
            y = ops.conv2d(x, w, bias, 1, pad, 1, c, relu=True, algo="depthwise")
            gy = np.cos(np.arange(y.size, dtype=dtype)).reshape(y.shape)
            results[isa] = (y, ops.conv2d_input(x.shape, w, gy, 1, pad, 1, c, algo="depthwise"))
    finally:
        fastconv.set_isa(previous)
    for avx2, avx512 in zip(results["avx2"], results["avx512"]):
        np.testing.assert_array_equal(avx512, avx2)


@pytest.mark.parametrize("shape", [(3, 16, 14, 19, 1), (2, 8, 9, 9, 2), (2, 3, 10, 10, 1)])
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_depthwise_backward_in_one_pass_gives_the_separate_gradients(isa, rng, monkeypatch, shape, with_bias, dtype):
    """conv2d_backward's depthwise gradients in one pass over grad_output (an input channel's
    input gradient, then its outputs' weight gradients) against the two kernels apart, bit for
    bit: 16 channels run it, 3 fall back to the two kernels (too few for the threads). And
    ops.conv2d_backward calls it once both gradients have chosen depthwise."""
    n, c, h, w_, multiplier = shape
    x = rng.standard_normal((n, c, h, w_)).astype(dtype)
    w = rng.standard_normal((c * multiplier, 1, 3, 3)).astype(dtype)
    gy = rng.standard_normal((n, c * multiplier, h, w_)).astype(dtype)
    args = conv2d_arguments(w.shape, 1, 1, 1, c)
    apart = (np.empty_like(x), np.empty_like(w), np.empty(c * multiplier, dtype) if with_bias else None)
    _C.conv2d_backward_input(gy, w, apart[0], *args, "depthwise", None)
    _C.conv2d_backward_weight(x, gy, apart[1], apart[2], *args, "depthwise")
    fused = (np.full_like(x, np.nan), np.full_like(w, np.nan), np.full(c * multiplier, np.nan, dtype) if with_bias else None)
    _C.conv2d_backward(x, w, gy, *fused, *args, "depthwise")
    for one_pass, separate in zip(fused, apart):
        np.testing.assert_array_equal(one_pass, separate)
    calls, one_pass = [], _C.conv2d_backward
    monkeypatch.setattr(_C, "conv2d_backward", lambda *a: (calls.append(a[-1]), one_pass(*a))[1])
    got = ops.conv2d_backward(x, w, gy, 1, 1, 1, c, needs_bias=with_bias, algo="depthwise")
    assert calls == ["depthwise"]
    for ours, separate in zip(got, apart):
        np.testing.assert_array_equal(ours, separate)


def test_conv2d_backward_refuses_a_bad_gradient():
    x = np.zeros((2, 4, 8, 8), np.float32)
    w = np.zeros((4, 1, 3, 3), np.float32)
    args = conv2d_arguments(w.shape, 1, 1, 1, 4)
    with pytest.raises(ValueError, match="grad_output"):
        _C.conv2d_backward(x, w, np.zeros((2, 4, 7, 8), np.float32), np.empty_like(x), np.empty_like(w), None, *args,
                           "depthwise")
    with pytest.raises(TypeError, match="grad_input: expected a float32 array"):
        _C.conv2d_backward(x, w, np.zeros((2, 4, 8, 8), np.float32), np.empty((2, 4, 8, 8), np.float64),
                           np.empty_like(w), None, *args, "depthwise")


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("case", CASES)
def test_conv2d_gradients_match_numeric(device, rng, algo, case):
    n, c, h, w_, k, r, s, stride, padding, dilation, groups = case
    x = rng.standard_normal((n, c, h, w_))
    w = rng.standard_normal((k, c // groups, r, s))
    y = ops.conv2d(to_device(x, device), to_device(w, device), None, stride, padding, dilation, groups)
    gy = rng.standard_normal(y.shape)
    if _unsupported(algo, x, w, stride, padding, dilation, groups) is not None:
        with pytest.raises(ValueError, match=f"algo='{algo}' cannot run this convolution"):
            ops.conv2d_backward(*(to_device(a, device) for a in (x, w, gy)), stride, padding, dilation, groups,
                                algo=algo)
        return
    dx, dw = assert_gradients_match_numeric(algo, x, w, gy, stride, padding, dilation, groups, device=device)
    x_dev, w_dev, gy_dev = (to_device(a, device) for a in (x, w, gy))
    np.testing.assert_allclose(
        to_host(ops.conv2d_input(x.shape, w_dev, gy_dev, stride, padding, dilation, groups, algo=algo)), dx)
    np.testing.assert_allclose(
        to_host(ops.conv2d_weight(x_dev, w.shape, gy_dev, stride, padding, dilation, groups, algo=algo)), dw)


def _random_case(rng):
    groups = int(rng.choice([1, 1, 2, 3]))
    c, k = groups * int(rng.integers(1, 5)), groups * int(rng.integers(1, 5))
    r, s = int(rng.integers(1, 6)), int(rng.integers(1, 6))
    dilation = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    padding = (int(rng.integers(0, 4)), int(rng.integers(0, 4)))
    h = max(1, dilation[0] * (r - 1) + 1 - 2 * padding[0] + int(rng.integers(0, 8)))
    w = max(1, dilation[1] * (s - 1) + 1 - 2 * padding[1] + int(rng.integers(0, 8)))
    return int(rng.integers(1, 4)), c, h, w, k, r, s, stride, padding, dilation, groups


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("seed", range(40))
def test_conv2d_random_shapes_against_torch(torch, isa, device, algo, seed):
    rng = np.random.default_rng(seed)
    n, c, h, w_, k, r, s, stride, padding, dilation, groups = _random_case(rng)
    x = rng.standard_normal((n, c, h, w_))
    w = rng.standard_normal((k, c // groups, r, s))
    b = rng.standard_normal(k)
    if _unsupported(algo, x, w, stride, padding, dilation, groups) is not None:
        with pytest.raises(ValueError, match=f"algo='{algo}' cannot run this convolution"):
            ops.conv2d(x, w, b, stride, padding, dilation, groups, algo=algo)
        return
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.conv2d(tx, tw, tb, stride, padding, dilation, groups)
    gy = rng.standard_normal(ty.shape)
    ty.backward(torch.tensor(gy))
    x, w, b, gy = (to_device(a, device) for a in (x, w, b, gy))
    y = ops.conv2d(x, w, b, stride, padding, dilation, groups, algo=algo)
    dx, dw, db = ops.conv2d_backward(x, w, gy, stride, padding, dilation, groups, algo=algo)
    for ours, theirs in ((y, ty), (dx, tx.grad), (dw, tw.grad), (db, tb.grad)):
        np.testing.assert_allclose(to_host(ours), theirs.detach().numpy(), rtol=1e-10, atol=1e-10)


def test_conv2d_float32_against_torch_on_a_real_layer(torch, device, rng):
    x = rng.standard_normal((4, 64, 20, 20)).astype(np.float32)
    w = rng.standard_normal((96, 64, 3, 3)).astype(np.float32) * 0.05
    y = to_host(ops.conv2d(to_device(x, device), to_device(w, device), padding=1))
    ref = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding=1).numpy()
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)


def test_conv2d_large_batch_is_chunked(device, rng):
    # Columns of 40 images exceed the 1 MiB column budget, so several chunks are used. im2col is
    # pinned: 'auto' may pick different algorithms (e.g. Winograd, with its own error) per batch size.
    x = to_device(rng.standard_normal((40, 16, 32, 32)).astype(np.float32), device)
    w = to_device(rng.standard_normal((8, 16, 3, 3)).astype(np.float32), device)
    ones = lambda shape: to_device(np.ones(shape, np.float32), device)
    kw = dict(padding=1, algo="im2col")
    y = ops.conv2d(x, w, **kw)
    dx, dw, _ = map(to_host, ops.conv2d_backward(x, w, ones(y.shape), **kw))
    for part in (slice(0, 7), slice(33, 40)):
        np.testing.assert_allclose(to_host(y[part]), to_host(ops.conv2d(x[part], w, **kw)), rtol=1e-6, atol=1e-5)
        np.testing.assert_allclose(dx[part], to_host(ops.conv2d_input(x[part].shape, w, ones(y[part].shape), **kw)),
                                   rtol=1e-6, atol=1e-5)
    ref_dw = sum(to_host(ops.conv2d_weight(x[i:i + 8], w.shape, ones(y[i:i + 8].shape), **kw)) for i in range(0, 40, 8))
    np.testing.assert_allclose(dw, ref_dw, rtol=1e-4, atol=1e-2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_im2col_splits_a_large_image_into_row_bands(device, rng, dtype):
    # One image's columns (32*9 rows x 35*45 pixels) exceed the 1 MiB column budget, so the
    # forward and weight gradient build them a band of output rows at a time; the strided,
    # padded rows at the band edges must read the same input rows as one whole image would.
    x = rng.standard_normal((2, 32, 70, 45)).astype(dtype)
    w = rng.standard_normal((5, 32, 3, 3)).astype(dtype)
    kw = dict(stride=(2, 1), padding=1)
    y = to_host(ops.conv2d(to_device(x, device), to_device(w, device), **kw, algo="im2col"))
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    np.testing.assert_allclose(y, conv2d_reference(x64, w64, None, (2, 1), (1, 1), (1, 1), (1, 1), 1),
                               rtol=1e-4, atol=1e-4)
    gy = rng.standard_normal(y.shape).astype(dtype)
    dw = to_host(ops.conv2d_weight(to_device(x, device), w.shape, to_device(gy, device), **kw, algo="im2col"))
    # dw[k, c, r, s] = sum over n, p, q of x_pad[n, c, 2p + r, q + s] * gy[n, k, p, q]
    xp = np.pad(x64, ((0, 0), (0, 0), (1, 1), (1, 1)))
    P, Q = y.shape[2:]
    ref = np.empty(w.shape)
    for r in range(3):
        for t in range(3):
            ref[:, :, r, t] = np.einsum("ncpq,nkpq->kc", xp[:, :, r:r + 2 * P:2, t:t + Q], gy.astype(np.float64))
    np.testing.assert_allclose(dw, ref, rtol=1e-4, atol=1e-3 if dtype == np.float32 else 1e-9)


def test_conv2d_non_contiguous_input(device, rng):
    base = rng.standard_normal((2, 6, 9, 9))
    x = base[:, ::2, :, ::-1]
    w = rng.standard_normal((4, 3, 3, 3))
    y = ops.conv2d(to_device(base, device)[:, ::2, :, ::-1], to_device(w, device))  # a view taken on the device
    np.testing.assert_allclose(to_host(y), conv2d_reference(x, w), rtol=1e-12, atol=1e-12)


def test_conv2d_empty_batch_gives_empty_result(device):
    x, w = to_device(np.zeros((0, 3, 8, 8)), device), to_device(np.ones((4, 3, 3, 3)), device)
    y = ops.conv2d(x, to_device(np.zeros((4, 3, 3, 3)), device), padding=1)
    assert y.shape == (0, 4, 8, 8)
    dx, dw, db = ops.conv2d_backward(x, w, y, padding=1)
    assert dx.shape == (0, 3, 8, 8)
    np.testing.assert_array_equal(to_host(dw), 0)
    np.testing.assert_array_equal(to_host(db), 0)


def test_conv2d_out_is_fully_written(device, rng):
    # Poison the output and the column scratch first: a missed element shows up as NaN.
    x = to_device(rng.standard_normal((3, 5, 7, 7)).astype(np.float32), device)
    w = to_device(rng.standard_normal((6, 5, 3, 3)).astype(np.float32), device)
    ops.conv2d(to_device(np.full((3, 5, 7, 7), np.nan, np.float32), device), w, padding=1)
    y = ops.conv2d(x, w, padding=1)
    assert np.isfinite(to_host(y)).all()


X4 = np.zeros((2, 4, 8, 8))
W4 = np.zeros((6, 4, 3, 3))


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(input=np.zeros((4, 8, 8)), weight=W4), ValueError, "input: expected a 4-d array"),
    (dict(input=X4, weight=np.zeros((6, 4, 3))), ValueError, "weight: expected a 4-d array"),
    (dict(input=X4, weight=np.zeros((6, 3, 3, 3))), ValueError, "input channels per group"),
    (dict(input=X4, weight=np.zeros((6, 2, 3, 3)), groups=3), ValueError, "not divisible by groups=3"),
    (dict(input=X4, weight=np.zeros((5, 2, 3, 3)), groups=2), ValueError, "5 output channels are not divisible"),
    (dict(input=X4, weight=W4, padding=-1), ValueError, "padding: must be >= 0"),
    (dict(input=X4, weight=W4, padding="full"), ValueError, "padding: expected 'same', 'valid'"),
    (dict(input=X4, weight=W4, padding="same", stride=2), ValueError, "not supported for strided"),
    (dict(input=X4, weight=W4, stride=0), ValueError, "stride: must be >= 1"),
    (dict(input=X4, weight=W4, stride=(1, 2, 3)), TypeError, "stride: expected an int or a pair"),
    (dict(input=X4, weight=np.zeros((6, 4, 11, 3)), padding=1), ValueError, "kernel height 11 .* larger than the padded input"),
    (dict(input=X4.astype(np.float32), weight=W4), TypeError, "weight: dtype float64 does not match"),
    (dict(input=X4.astype(np.int32), weight=W4), TypeError, "input: expected a float32 or float64"),
    (dict(input=X4, weight=W4, bias=np.zeros(5)), ValueError, "bias: expected shape \\(6,\\)"),
    (dict(input=X4, weight=W4, groups=0), ValueError, "groups: must be >= 1"),
])
def test_conv2d_bad_input_raises_clearly(kwargs, error, match):
    with pytest.raises(error, match=match):
        ops.conv2d(**kwargs)


def test_backward_kernels_check_shapes_in_cpp():
    from fastconv import _C
    gy = np.zeros((2, 6, 8, 8))
    with pytest.raises(ValueError, match="grad_output: expected shape \\(2, 6, 6, 6\\)"):
        _C.conv2d_backward_input(gy, W4, np.zeros((2, 4, 8, 8)), (1, 1), (0, 0), (0, 0), (1, 1), 1)
    with pytest.raises(ValueError, match="out: expected a C-contiguous array"):
        _C.conv2d_forward(X4, W4, None, np.zeros((2, 6, 6, 12))[..., ::2], (1, 1), (0, 0), (0, 0), (1, 1), 1)
    with pytest.raises(ValueError, match="out: array is read-only"):
        y = np.zeros((2, 6, 6, 6))
        y.flags.writeable = False
        _C.conv2d_forward(X4, W4, None, y, (1, 1), (0, 0), (0, 0), (1, 1), 1)


def fake_timed_runs(monkeypatch, cost):
    """A run per algorithm that advances a fake clock by its cost: the tests time nothing real."""
    clock = [0.0]
    monkeypatch.setattr(conv_algo.time, "perf_counter", lambda: clock[0])
    calls = dict.fromkeys(cost, 0)

    def run(algo):
        if cost[algo] is None:
            raise MemoryError(f"{algo}: workspace too large")
        calls[algo] += 1
        clock[0] += cost[algo]
    return run, calls


def test_auto_timing_drops_slow_candidates_and_retimes_close_ones(monkeypatch):
    cost = {"fast": 0.002, "close": 0.0021, "slow": 0.02}
    run, calls = fake_timed_runs(monkeypatch, cost)
    assert conv_algo._fastest(run, list(cost)) == "fast"
    assert calls["slow"] == 2                        # over 2x the leader's warm too: dropped after its second run
    assert calls["fast"] == calls["close"] == 1 + 9  # within 10% of each other: every round is run
    cost["close"] = 0.003
    run, calls = fake_timed_runs(monkeypatch, cost)
    assert conv_algo._fastest(run, list(cost)) == "fast"
    assert calls == {"fast": 4, "close": 4, "slow": 2}  # a clear winner after 3 rounds


def test_auto_timing_runs_a_candidate_again_after_a_slow_first_run(monkeypatch):
    """A first run pays a candidate's warm-up (filter transforms, scratch pages): one over 2x
    the leader's is run again before it is dropped, and wins when it is faster warm."""
    clock, calls = [0.0], {"rule": 0, "transformed": 0}
    monkeypatch.setattr(conv_algo.time, "perf_counter", lambda: clock[0])

    def run(algo):
        calls[algo] += 1
        clock[0] += 0.002 if algo == "rule" else 0.006 if calls[algo] == 1 else 0.0015
    assert conv_algo._fastest(run, ["rule", "transformed"]) == "transformed"


def test_auto_timing_of_long_runs_takes_one_round(monkeypatch):
    run, calls = fake_timed_runs(monkeypatch, {"fast": 1.0, "close": 1.01, "slow": 5.0})
    assert conv_algo._fastest(run, ["slow", "close", "fast"]) == "fast"
    assert calls == {"fast": 2, "close": 2, "slow": 1}


def test_auto_skips_a_candidate_that_fails_and_raises_when_all_do(monkeypatch):
    run, calls = fake_timed_runs(monkeypatch, {"huge": None, "ok": 0.002})
    assert conv_algo._fastest(run, ["huge", "ok"]) == "ok"
    run, _ = fake_timed_runs(monkeypatch, {"huge": None, "bigger": None})
    with pytest.raises(MemoryError, match="huge: workspace too large"):
        conv_algo._fastest(run, ["huge", "bigger"])


def choose_over_calls(monkeypatch, tmp_path, cost, first, limit=100):
    """Calls conv_algo.choose as ops' calls do (a reusing() run, then the call's own run of the
    pick) until it has chosen; (the choice, what each call ran)."""
    monkeypatch.setenv("FASTCONV_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(conv_algo, "_choices", {})
    monkeypatch.setattr(conv_algo, "_tunings", {})
    monkeypatch.setattr(conv_algo, "_mode", "benchmark")
    key, ran = ("test",), []
    for _ in range(limit):
        timed_run, calls = fake_timed_runs(monkeypatch, cost)
        run = conv_algo.reusing(timed_run)
        run(conv_algo.choose(key, "test", run, first, list(cost), list(cost)))
        ran.append([a for a, n in calls.items() for _ in range(n)])
        if conv_algo.choice(key) is not None:
            return conv_algo.choice(key), ran
    raise AssertionError("no choice")


def test_auto_chooses_over_the_first_calls_each_running_one_candidate(monkeypatch, tmp_path):
    cost = {"rule": 0.002, "faster": 0.0015, "slow": 0.02}
    choice, ran = choose_over_calls(monkeypatch, tmp_path, cost, "rule")
    assert choice == "faster"
    assert ran[0] == ["rule"]                  # the first call costs the fixed rule's pick, once
    assert all(len(call) == 1 for call in ran)  # the call's own run of its trial is not repeated
    assert sum(call == ["slow"] for call in ran) == 2  # over twice the leader's, warm too: two trials
    assert sum(call == ["faster"] for call in ran) == 4 == sum(call == ["rule"] for call in ran)
    assert conv_cache.entries()                # kept on disk once chosen


def test_auto_choosing_skips_a_candidate_that_fails_within_the_call(monkeypatch, tmp_path):
    choice, ran = choose_over_calls(monkeypatch, tmp_path, {"huge": None, "ok": 0.002, "slow": 0.003}, "huge")
    assert choice == "ok" and ran[0] == ["ok"]  # the call still has its result
    calls = []

    def broken(algo):  # any error, not only memory: one candidate must not fail the call
        calls.append(algo)
        if algo == "bug":
            raise RuntimeError("bug: kernel failed")
    run = conv_algo.reusing(broken)
    run(conv_algo.choose(("broken",), "broken", run, "bug", ["bug", "fine"], ["fine"]))
    assert calls == ["bug", "fine"]

    def failing(algo):
        raise RuntimeError(f"{algo}: kernel failed")
    with pytest.raises(RuntimeError, match="^bug: kernel failed"):  # every candidate fails: the first's error
        conv_algo.choose(("all",), "all", conv_algo.reusing(failing), "bug", ["bug", "bug2"], ["bug2"])
    assert ("all",) not in conv_algo._tunings  # a later call starts over


def test_a_trial_with_another_choice_made_inside_it_is_not_counted(monkeypatch, tmp_path):
    """A layout's trial of NCHW copies runs the copies' own first calls, whose trials of slow
    candidates would make the copies look slow: those times are run again once the copies chose."""
    monkeypatch.setenv("FASTCONV_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(conv_algo, "_choices", {})
    monkeypatch.setattr(conv_algo, "_tunings", {})
    monkeypatch.setattr(conv_algo, "_mode", "benchmark")
    inner_cost = {"quick": 0.001, "crawl": 0.1}
    inner_run, _ = fake_timed_runs(monkeypatch, inner_cost)

    def outer_run(layout):
        if layout == "copies":  # cheap around an inner call that is still choosing at first
            inner = conv_algo.reusing(inner_run)
            inner(conv_algo.choose(("inner",), "inner", inner, "crawl", list(inner_cost), list(inner_cost)))
        else:
            inner_run("quick")  # the clock's step: in place costs 3 quick runs
            inner_run("quick")
            inner_run("quick")

    for _ in range(100):
        run = conv_algo.reusing(outer_run)
        run(conv_algo.choose(("outer",), "outer", run, "in_place", ["in_place", "copies"], ["copies"]))
        if conv_algo.choice(("outer",)):
            break
    assert conv_algo.choice(("inner",)) == "quick" and conv_algo.choice(("outer",)) == "copies"


def test_auto_first_call_runs_the_fixed_rules_kernel_once(monkeypatch, tmp_path, rng):
    monkeypatch.setenv("FASTCONV_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(conv_algo, "_choices", {})
    monkeypatch.setattr(conv_algo, "_tunings", {})
    monkeypatch.setattr(conv_algo, "_mode", "benchmark")
    ran, forward = [], _C.conv2d_forward
    monkeypatch.setattr(_C, "conv2d_forward", lambda *a: ran.append(a[9]) or forward(*a))
    x, w = rng.standard_normal((2, 16, 12, 12)), rng.standard_normal((16, 16, 3, 3))
    args = conv2d_arguments(w.shape, 1, 1, 1, 1)
    y = ops.conv2d(x, w, padding=1)
    candidates = conv_algo.supported(x.shape, w.shape, args)
    assert ran == [conv_algo.heuristic(x.shape, w.shape, args, candidates)]
    np.testing.assert_allclose(y, conv2d_reference(x, w, None, *args), rtol=1e-10, atol=1e-10)
    run_until_chosen(lambda: ops.conv2d(x, w, padding=1))
    assert len(set(ran)) > 1 and ran[-1] == next(iter(conv_algo.chosen().values()))


def scratch_of(call):
    """The scratch one call asks for: what its threads hold after it, from none."""
    _C.release_scratch()
    call()
    return _C.scratch_bytes()


@pytest.fixture
def workspace_limit():
    yield fastconv.set_workspace_limit
    fastconv.set_workspace_limit(0)


def test_the_workspace_limit_refuses_a_call_that_needs_more_and_auto_runs_one_that_fits(
        workspace_limit, monkeypatch, tmp_path, rng):
    monkeypatch.setenv("FASTCONV_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(conv_algo, "_choices", {})
    monkeypatch.setattr(conv_algo, "_tunings", {})
    monkeypatch.setattr(conv_algo, "_mode", "benchmark")
    x, w = rng.standard_normal((8, 16, 20, 20)), rng.standard_normal((32, 16, 3, 3))
    args = conv2d_arguments(w.shape, 1, 1, 1, 1)
    expected = conv2d_reference(x, w, None, *args)
    needs = {a: scratch_of(lambda: ops.conv2d(x, w, padding=1, algo=a)) for a in ("im2col", "direct")}
    # room for direct's rows on every thread, whichever threads took work when it was measured;
    # not for im2col's column matrix
    limit = needs["direct"] * fastconv.get_num_threads()
    assert needs["im2col"] > limit
    workspace_limit(limit)
    with pytest.raises(MemoryError, match="workspace: the call needs more than .* over the limit of"):
        ops.conv2d(x, w, padding=1, algo="im2col")
    np.testing.assert_allclose(ops.conv2d(x, w, padding=1, algo="direct"), expected, rtol=1e-10, atol=1e-10)
    ran = []
    monkeypatch.setattr(conv_algo, "wall_time", lambda run, algo: ran.append(algo) or run(algo) or 1e-3)
    # each call's result comes from a candidate that fits, until auto has chosen
    run_until_chosen(lambda: np.testing.assert_allclose(ops.conv2d(x, w, padding=1), expected, rtol=1e-10,
                                                        atol=1e-10), limit=100)
    assert "im2col" in ran and conv_algo.chosen() and "im2col" not in conv_algo.chosen().values()
    workspace_limit(0)  # no limit: im2col runs again
    np.testing.assert_allclose(ops.conv2d(x, w, padding=1, algo="im2col"), expected, rtol=1e-10, atol=1e-10)


def test_auto_choices_persist_on_disk_per_machine(monkeypatch, tmp_path):
    import fastconv
    monkeypatch.setenv("FASTCONV_CACHE_DIR", str(tmp_path))
    fastconv.conv_cache.clear()
    conv_algo.set_mode("benchmark")
    x, w = RNG.standard_normal((2, 3, 8, 8)), RNG.standard_normal((5, 3, 3, 3))
    run_until_chosen(lambda: ops.conv2d(x, w, padding=1))
    assert (tmp_path / "conv_algo.json").exists()
    stored = fastconv.conv_cache.entries()
    assert len(stored) == 1 and fastconv.conv_cache.machine_key() in next(iter(stored))
    conv_algo.forget_choices()  # a new process: the disk answers, nothing is timed
    monkeypatch.setattr(conv_algo, "_trial", lambda *a: pytest.fail("timed a shape the disk cache knows"))
    ops.conv2d(x, w, padding=1)
    assert list(conv_algo.chosen().values()) == list(stored.values())
    previous = fastconv.get_num_threads()
    fastconv.set_num_threads(previous + 1)  # another thread count is another machine key
    try:
        assert fastconv.conv_cache.machine_key() not in next(iter(stored))
    finally:
        fastconv.set_num_threads(previous)
    fastconv.conv_cache.clear()
    assert not (tmp_path / "conv_algo.json").exists() and not conv_algo.chosen()


def test_a_damaged_cache_file_is_timed_over(monkeypatch, tmp_path):
    import fastconv
    monkeypatch.setenv("FASTCONV_CACHE_DIR", str(tmp_path))
    fastconv.conv_cache.clear()
    (tmp_path / "conv_algo.json").write_text("{not json")
    conv_algo.set_mode("benchmark")
    x, w = RNG.standard_normal((1, 2, 6, 6)), RNG.standard_normal((3, 2, 3, 3))
    run_until_chosen(lambda: ops.conv2d(x, w))
    assert len(fastconv.conv_cache.entries()) == 1
    fastconv.conv_cache.clear()


GY4 = np.zeros((2, 6, 6, 6))


@pytest.mark.parametrize("op,call", [
    pytest.param("conv2d", lambda d: ops.conv2d(d, W4), id="conv2d-input"),
    pytest.param("conv2d", lambda d: ops.conv2d(X4, d), id="conv2d-weight"),
    pytest.param("conv2d", lambda d: ops.conv2d(X4, W4, d), id="conv2d-bias"),
    pytest.param("conv2d_input", lambda d: ops.conv2d_input(X4.shape, d, GY4), id="conv2d_input-weight"),
    pytest.param("conv2d_input", lambda d: ops.conv2d_input(X4.shape, W4, d), id="conv2d_input-grad_output"),
    pytest.param("conv2d_weight", lambda d: ops.conv2d_weight(d, W4.shape, GY4), id="conv2d_weight-input"),
    pytest.param("conv2d_weight", lambda d: ops.conv2d_weight(X4, W4.shape, d), id="conv2d_weight-grad_output"),
    pytest.param("conv2d_backward", lambda d: ops.conv2d_backward(d, W4, GY4), id="conv2d_backward-input"),
    pytest.param("conv2d_backward", lambda d: ops.conv2d_backward(X4, d, GY4), id="conv2d_backward-weight"),
    pytest.param("conv2d_backward", lambda d: ops.conv2d_backward(X4, W4, d), id="conv2d_backward-grad_output"),
    pytest.param("prepare_conv_weight", lambda d: ops.prepare_conv_weight(d), id="prepare_conv_weight-weight"),
])
def test_conv2d_refuses_a_device_array_before_any_kernel_runs(cuda_array, op, call):
    with pytest.raises(DeviceError, match=f"^{op}: fastconv has no CUDA kernels"):
        call(cuda_array)


def test_auto_times_only_the_likely_candidates():
    x_shape, w_shape = (8, 32, 16, 16), (32, 32, 3, 3)
    args = conv2d_arguments(w_shape, 1, 1, 1, 1)
    candidates = conv_algo.supported(x_shape, w_shape, args)
    likely = conv_algo.likely_candidates(x_shape, w_shape, args, candidates)
    assert "fft" in candidates and "fft" not in likely
    assert [a for a in likely if a.startswith("winograd")] == [conv_algo.winograd_variant(x_shape, w_shape, args)]
    overhung = (8, 32, 14, 14), w_shape  # F(4x4)'s 4x4 tiles overhang a 14x14 output: both tilings run
    assert {"winograd_4x3", "winograd_2x3"} <= set(conv_algo.likely_candidates(*overhung, args, candidates))
    big = (8, 32, 9, 9), (32, 32, 7, 7)
    args7 = conv2d_arguments(big[1], 1, 3, 1, 1)
    assert "fft" in conv_algo.likely_candidates(*big, args7, conv_algo.supported(*big, args7))




def test_auto_times_only_depthwise_and_direct_on_a_depthwise_layer(rng, monkeypatch):
    x = rng.standard_normal((2, 8, 10, 10)).astype(np.float32)
    w = rng.standard_normal((8, 1, 3, 3)).astype(np.float32)
    timed = []
    real_wall_time = conv_algo.wall_time
    monkeypatch.setattr(conv_algo, "wall_time", lambda run, algo: timed.append(algo) or real_wall_time(run, algo))
    monkeypatch.setattr(conv_algo, "_remembered", lambda *args, **kwargs: None)  # no earlier choice
    conv_algo.forget_choices()
    try:
        dy = np.ones((2, 8, 10, 10), np.float32)
        conv_algo.run_until_chosen(lambda: (ops.conv2d(x, w, padding=1, groups=8),
                                            ops.conv2d_backward(x, w, dy, padding=1, groups=8)))
        assert "depthwise" in timed and set(timed) <= {"depthwise", "direct"}
        # a grouped layer with more than one channel per group still times the others
        timed.clear()
        w2 = rng.standard_normal((8, 2, 3, 3)).astype(np.float32)
        conv_algo.run_until_chosen(lambda: ops.conv2d(x, w2, padding=1, groups=4))
        assert len(set(timed)) > 2
    finally:
        conv_algo.forget_choices()

# (N, C, H, W, K, R, S, stride, padding, dilation, groups): strided layers whose gradients
# subpixel can run (as conv_transpose2d's forward and weight gradient), and two it cannot.
SUBPIXEL_GRADIENT_CASES = [
    (2, 4, 12, 12, 6, 3, 3, 2, 1, 1, 1),       # resnet's 3x3/2
    (1, 3, 11, 10, 4, 3, 2, (2, 3), (1, 0), 1, 1),  # rows and columns left over past the last window
    (2, 4, 9, 9, 6, 4, 4, 2, 1, 1, 2),         # groups
    (1, 2, 8, 8, 3, 1, 1, 2, 0, 1, 1),         # strided 1x1
]
NO_SUBPIXEL_CASES = [(1, 2, 9, 9, 3, 3, 3, 2, 1, 2, 1), (1, 2, 8, 8, 3, 3, 3, 1, 1, 1, 1)]  # dilation; stride 1


@pytest.mark.parametrize("case", SUBPIXEL_GRADIENT_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_auto_strided_gradients_through_subpixel(monkeypatch, tmp_path, rng, case, dtype):
    """auto's timing may pick conv_transpose2d's subpixel kernels for a strided convolution's
    gradients; forced to, every gradient entry point matches the float64 reference."""
    monkeypatch.setenv("FASTCONV_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(conv_algo, "_choices", {})
    offered = []
    monkeypatch.setattr(conv_algo, "_trial", lambda key, disk_key, run, candidates, machine=None: offered.append(candidates) or "subpixel")
    n, c, h, w_, k, r, s, stride, padding, dilation, groups = case
    x, w, _ = _operands(rng, case, dtype)
    args = conv2d_arguments(w.shape, stride, padding, dilation, groups)
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    gy = rng.standard_normal(conv2d_reference(x64, w64, None, *args).shape).astype(dtype)
    gy64 = gy.astype(np.float64)
    dx_ref = numeric_gradient(lambda xx: conv2d_reference(xx, w64, None, *args), x64, gy64)
    dw_ref = numeric_gradient(lambda ww: conv2d_reference(x64, ww, None, *args), w64, gy64)
    dx, dw, db = ops.conv2d_backward(x, w, gy, stride, padding, dilation, groups)
    assert all("subpixel" in candidates for candidates in offered) and len(offered) == 2
    dx1 = ops.conv2d_input(x.shape, w, gy, stride, padding, dilation, groups)
    dw1 = ops.conv2d_weight(x, w.shape, gy, stride, padding, dilation, groups)
    tol = 1e-5 if dtype == np.float32 else 1e-7  # float64: the central differences' own error
    for ours, ref in ((dx, dx_ref), (dw, dw_ref), (dx1, dx_ref), (dw1, dw_ref), (db, gy64.sum(axis=(0, 2, 3)))):
        assert ours.dtype == dtype
        np.testing.assert_allclose(ours, ref, rtol=0, atol=tol * max(1.0, np.abs(ref).max()) * np.sqrt(gy.size))


@pytest.mark.parametrize("case", NO_SUBPIXEL_CASES)
def test_auto_offers_subpixel_only_where_it_runs_the_gradient(monkeypatch, tmp_path, rng, case):
    monkeypatch.setenv("FASTCONV_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(conv_algo, "_choices", {})
    offered = []
    monkeypatch.setattr(conv_algo, "_trial", lambda key, disk_key, run, candidates, machine=None: offered.append(candidates) or candidates[0])
    n, c, h, w_, k, r, s, stride, padding, dilation, groups = case
    x, w, _ = _operands(rng, case, np.float64)
    gy = rng.standard_normal(ops.conv2d(x, w, None, stride, padding, dilation, groups).shape)
    ops.conv2d_backward(x, w, gy, stride, padding, dilation, groups)
    assert offered and not any("subpixel" in candidates for candidates in offered)
