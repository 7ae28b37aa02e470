"""Winograd's pixel-shuffled output and unshuffled input gradient (conv2d_forward's and
conv2d_backward_input's `pixel_shuffle`, which conv_transpose2d's pixel_shuffle algorithm runs):
against the float64 convolution with numpy's reshape-and-transpose shuffle, on every ISA, and
bit for bit against the same kernels writing the (N, K, P, Q) output first; and the refusals."""
import numpy as np
import pytest

from fastconv import _C
from tests.conv.test_winograd import ERROR_BOUND
from tests.reference import (conv2d_reference, conv_transpose2d_reference, pixel_shuffle_reference,
                             pixel_unshuffle_reference)

# (N, C, H, W, K, R, stride, padding, groups, factor, algo)
CASES = [
    (2, 5, 9, 7, 8, 3, 1, 1, 1, 2, "winograd_4x3"),      # 9x7 output: tiles cut at both edges
    (3, 4, 16, 16, 12, 3, 1, 1, 1, 2, "winograd_2x3"),   # whole tiles, 48 of them: lane groups past the last
    (1, 3, 11, 6, 18, 3, 1, 0, 1, 3, "winograd_4x3"),    # factor 3, no padding (9x4 output)
    (2, 6, 10, 10, 8, 5, 1, 2, 1, 2, "winograd_4x5"),    # a 5x5 kernel
    (2, 33, 17, 17, 64, 3, 1, 1, 1, 4, "winograd_4x3"),  # factor 4, channels past a micro-kernel tile
    (2, 8, 6, 6, 8, 3, 1, 1, 2, 2, "winograd_2x3"),      # two groups
    (1, 2, 1, 1, 4, 3, 1, 1, 1, 2, "winograd_4x3"),      # one pixel
]
STRIDED = [(2, 4, 13, 9, 8, 5, 2, 2, 1, 2, "winograd_4x3")]  # 5x5 / 2 through its 3x3 stride phases


def _arrays(rng, case, dtype):
    n, c, h, w, k, r, stride, pad, groups, f, algo = case
    x = rng.standard_normal((n, c, h, w))
    wt = rng.standard_normal((k, c // groups, r, r))
    bias = rng.standard_normal(k)
    args = ((stride, stride), (pad, pad), (pad, pad), (1, 1), groups)
    p, q = (h + 2 * pad - r) // stride + 1, (w + 2 * pad - r) // stride + 1
    return x, wt, bias, args, (n, k, p, q)


def _near(got, ref, algo, dtype):
    assert np.abs(got - ref).max() <= ERROR_BOUND[algo, dtype] * np.abs(ref).max()


@pytest.mark.parametrize("case", CASES + STRIDED)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_writes_the_pixel_shuffled_output(isa, rng, case, dtype):
    x, wt, bias, args, deep_shape = _arrays(rng, case, dtype)
    f, algo, relu = case[-2], case[-1], case[0] == 2  # the ReLU on half the cases
    ref = conv2d_reference(x, wt, bias, args[0], args[1], args[2], groups=args[4])
    ref = pixel_shuffle_reference(np.maximum(ref, 0) if relu else ref, f)
    xs, ws, bs = x.astype(dtype), wt.astype(dtype), bias.astype(dtype)
    y = np.full(ref.shape, np.nan, dtype)
    _C.conv2d_forward(xs, ws, bs, y, *args, algo, relu, pixel_shuffle=f)
    _near(y, ref, algo, dtype)
    deep, wide = np.empty(deep_shape, dtype), np.empty_like(y)  # the same kernels, unshuffled, then shuffled
    _C.conv2d_forward(xs, ws, bs, deep, *args, algo, relu)
    _C.pixel_shuffle(deep, wide, f)
    np.testing.assert_array_equal(y, wide)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_input_gradient_reads_the_shuffled_gradient(isa, rng, case, dtype):
    x, wt, _, args, (n, k, p, q) = _arrays(rng, case, dtype)
    f, algo, groups, pad = case[-2], case[-1], args[4], args[1]
    dy = rng.standard_normal((n, k // (f * f), p * f, q * f))
    # grad_x of a stride-1 convolution: the transposed convolution (a scatter) of its output gradient
    ref = conv_transpose2d_reference(pixel_unshuffle_reference(dy, f), wt, None, (1, 1), pad, groups=groups)
    dx = np.full(x.shape, np.nan, dtype)
    _C.conv2d_backward_input(dy.astype(dtype), wt.astype(dtype), dx, *args, algo, pixel_shuffle=f)
    _near(dx, ref, algo, dtype)
    unshuffled = np.empty_like(dx)
    _C.conv2d_backward_input(pixel_unshuffle_reference(dy, f).astype(dtype), wt.astype(dtype), unshuffled, *args, algo)
    np.testing.assert_array_equal(dx, unshuffled)


def test_pixel_shuffle_is_refused_where_it_does_not_run(rng):
    x = rng.standard_normal((1, 3, 8, 8)).astype(np.float32)
    w = rng.standard_normal((8, 3, 3, 3)).astype(np.float32)
    same = ((1, 1), (1, 1), (1, 1), (1, 1), 1)
    y = np.zeros((1, 2, 16, 16), np.float32)
    with pytest.raises(ValueError, match="pixel_shuffle: 2 runs with a Winograd algo only, not 'direct'"):
        _C.conv2d_forward(x, w, None, y, *same, "direct", pixel_shuffle=2)
    with pytest.raises(ValueError, match="pixel_shuffle: expected an integer >= 1, got 0"):
        _C.conv2d_forward(x, w, None, y, *same, "winograd_4x3", pixel_shuffle=0)
    with pytest.raises(ValueError, match="weight: expected output channels divisible by pixel_shuffle\\^2 = 9, got 8"):
        _C.conv2d_forward(x, w, None, np.zeros((1, 1, 24, 24), np.float32), *same, "winograd_4x3", pixel_shuffle=3)
    with pytest.raises(ValueError, match="out: expected shape \\(1, 2, 16, 16\\)"):
        _C.conv2d_forward(x, w, None, np.zeros((1, 8, 8, 8), np.float32), *same, "winograd_4x3", pixel_shuffle=2)
    with pytest.raises(ValueError, match="residual: not supported with pixel_shuffle 2"):
        _C.conv2d_forward(x, w, None, y, *same, "winograd_4x3", residual=np.zeros_like(y), pixel_shuffle=2)
    with pytest.raises(ValueError, match="input"):  # NCHW only
        cl = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
        _C.conv2d_forward(cl, w, None, y, *same, "winograd_4x3", pixel_shuffle=2)
    with pytest.raises(ValueError, match="pixel_shuffle: 2 needs stride 1 for the input gradient"):
        w5 = rng.standard_normal((8, 3, 5, 5)).astype(np.float32)
        _C.conv2d_backward_input(np.zeros((1, 2, 8, 8), np.float32), w5, np.zeros((1, 3, 8, 8), np.float32),
                                 (2, 2), (2, 2), (1, 1), (1, 1), 1, "winograd_4x3", pixel_shuffle=2)
    with pytest.raises(ValueError, match="grad_output: expected shape \\(1, 2, 16, 16\\)"):
        _C.conv2d_backward_input(np.zeros((1, 8, 8, 8), np.float32), w, np.zeros_like(x), *same, "winograd_4x3",
                                 pixel_shuffle=2)
