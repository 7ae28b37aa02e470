"""FFT convolution (tiled overlap-save, csrc/conv/cpu/fft.cpp): measured error bounds against the
float64 direct convolution, every tile size, odd and asymmetric kernels, gradients (the weight
gradient is an FFT of its own)."""
import numpy as np
import pytest

from fastconv import ops
from fastconv.backend import to_device, to_host
from fastconv.ops.conv import conv2d_arguments
from tests.conv.conv_gradients import assert_gradients_match_numeric
from tests.reference import conv2d_reference

# Measured max|y - y_direct| / max|y| on standard-normal data, 3x3 to 11x11 kernels, C = 16..128:
# float32 3.0e-7, float64 3.1e-15 (as accurate as im2col: 6.4e-7, 2.8e-15); bounds ~5x that.
# The weight gradient (spectra of patches and gradient tiles, summed over the tiles) against the
# float64 im2col one, WEIGHT_CASES below plus the 7x7 and 11x11 bench layers, three seeds:
# float32 3.0e-7, float64 1.0e-15: inside the same bounds.
ERROR_BOUND = {np.float32: 2e-6, np.float64: 2e-14}

# (N, C, H, W, K, R, S, padding, groups); the kernel size and image pick tile sizes F = 8..64.
CASES = [
    (2, 32, 20, 20, 16, 5, 5, 2, 1),
    (1, 32, 24, 24, 8, 7, 7, 3, 1),
    (1, 16, 30, 30, 8, 11, 11, 5, 1),
    (1, 4, 13, 11, 6, 3, 5, (1, 2), 2),      # asymmetric kernel, groups, odd image
    (2, 3, 9, 8, 5, 4, 4, "same", 1),        # even kernel: asymmetric padding
    (1, 2, 40, 40, 3, 33, 33, 0, 1),         # F = 64
    (1, 3, 5, 6, 2, 1, 1, 0, 1),             # 1x1
    (1, 2, 6, 5, 3, 3, 3, 5, 1),             # padding wider than the kernel
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES)
def test_error_stays_inside_the_documented_bound(device, rng, dtype, case):
    n, c, h, w_, k, r, s, padding, groups = case
    x = rng.standard_normal((n, c, h, w_))
    w = rng.standard_normal((k, c // groups, r, s))
    b = rng.standard_normal(k)
    ref = conv2d_reference(x, w, b, *conv2d_arguments(w.shape, 1, padding, 1, groups))
    y = to_host(ops.conv2d(*(to_device(a.astype(dtype), device) for a in (x, w, b)), 1, padding, 1, groups, algo="fft"))
    assert y.dtype == dtype
    assert np.abs(y - ref).max() / np.abs(ref).max() <= ERROR_BOUND[dtype]


# FFT's own weight gradient runs for kernels of 7x7 and up with 256 or more channel pairs per
# group (else im2col's, csrc/conv/cpu/kernels.h): odd, asymmetric, grouped, and F = 64.
WEIGHT_CASES = [
    (1, 32, 24, 24, 8, 7, 7, 3, 1),
    (2, 16, 15, 17, 16, 7, 9, (3, 4), 1),
    (1, 32, 14, 13, 32, 7, 7, 2, 2),
    (1, 16, 22, 21, 16, 11, 11, 5, 1),
    (1, 16, 40, 40, 16, 33, 33, 0, 1),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", WEIGHT_CASES)
def test_weight_gradient_error_stays_inside_the_documented_bound(device, rng, dtype, case):
    n, c, h, w_, k, r, s, padding, groups = case
    x = rng.standard_normal((n, c, h, w_))
    w_shape = (k, c // groups, r, s)
    gy = rng.standard_normal(ops.conv2d(x, np.zeros(w_shape), None, 1, padding, 1, groups, algo="im2col").shape)
    ref = ops.conv2d_weight(x, w_shape, gy, 1, padding, 1, groups, algo="im2col")
    dw = to_host(ops.conv2d_weight(to_device(x.astype(dtype), device), w_shape, to_device(gy.astype(dtype), device),
                                   1, padding, 1, groups, algo="fft"))
    assert dw.dtype == dtype
    assert np.abs(dw - ref).max() / np.abs(ref).max() <= ERROR_BOUND[dtype]


# Every ISA runs its own transforms (the radix-2 passes compiled for it; float patches read and
# tiles written 16 lanes at a time by tile_io_avx2.cpp on AVX2 and AVX-512): the forward with
# bias and ReLU, the input gradient and FFT's own weight gradient, edge tiles clipped on both axes.
ISA_CASES = [(1, 32, 24, 24, 8, 7, 7, 3, 1), (2, 16, 15, 17, 16, 7, 9, (3, 4), 1), (1, 4, 13, 11, 6, 3, 5, (1, 2), 2)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", ISA_CASES)
def test_transforms_of_every_isa(isa, rng, dtype, case):
    n, c, h, w_, k, r, s, padding, groups = case
    x, b = rng.standard_normal((n, c, h, w_)), rng.standard_normal(k)
    w = rng.standard_normal((k, c // groups, r, s))
    args = conv2d_arguments(w.shape, 1, padding, 1, groups)
    ref = conv2d_reference(x, w, b, *args)
    gy = rng.standard_normal(ref.shape)

    def assert_near(got, ref):
        assert got.dtype == dtype and got.shape == ref.shape
        assert np.abs(got - ref).max() / np.abs(ref).max() <= ERROR_BOUND[dtype]

    xt, wt, bt, gyt = (a.astype(dtype) for a in (x, w, b, gy))
    assert_near(ops.conv2d(xt, wt, bt, 1, padding, 1, groups, algo="fft"), ref)
    relu = ops.conv2d(xt, wt, bt, 1, padding, 1, groups, algo="fft", relu=True)
    assert_near(relu, np.maximum(ref, 0))
    assert (relu >= 0).all()
    assert_near(ops.conv2d_input(x.shape, wt, gyt, 1, padding, 1, groups, algo="fft"),
                ops.conv2d_input(x.shape, w, gy, 1, padding, 1, groups, algo="im2col"))
    assert_near(ops.conv2d_weight(xt, w.shape, gyt, 1, padding, 1, groups, algo="fft"),
                ops.conv2d_weight(x, w.shape, gy, 1, padding, 1, groups, algo="im2col"))


@pytest.mark.parametrize("case", [(1, 3, 7, 9, 4, 5, 5, 2, 1), (2, 4, 6, 7, 6, 3, 5, (3, 1), 2),
                                  (1, 9, 6, 5, 2, 7, 7, 4, 1)])
def test_gradients_match_numeric(device, rng, case):
    n, c, h, w_, k, r, s, padding, groups = case
    x = rng.standard_normal((n, c, h, w_))
    w = rng.standard_normal((k, c // groups, r, s))
    gy = rng.standard_normal(ops.conv2d(x, w, None, 1, padding, 1, groups, algo="fft").shape)
    assert_gradients_match_numeric("fft", x, w, gy, padding=padding, groups=groups, device=device)


def test_fused_bias_and_relu(device, rng):
    x = rng.standard_normal((2, 5, 12, 12)).astype(np.float32)
    w = rng.standard_normal((7, 5, 7, 7)).astype(np.float32)
    b = rng.standard_normal(7).astype(np.float32)
    ref = np.maximum(ops.conv2d(x, w, b, padding=3, algo="im2col"), 0)
    y = ops.conv2d(*(to_device(a, device) for a in (x, w, b)), padding=3, algo="fft", relu=True)
    np.testing.assert_allclose(to_host(y), ref, rtol=0, atol=1e-4)


@pytest.mark.parametrize("kwargs,why", [
    (dict(stride=2), "needs stride 1 and dilation 1"),
    (dict(dilation=2), "needs stride 1 and dilation 1"),
    (dict(weight=(2, 3, 64, 3)), "needs a kernel of at most 63 x 63"),
])
def test_unsupported_shapes_are_refused(kwargs, why):
    kwargs = dict(kwargs)  # parametrised dicts are shared between cases
    w = np.zeros(kwargs.pop("weight", (2, 3, 5, 5)))
    with pytest.raises(ValueError, match=f"algo='fft' cannot run this convolution: .*{why}"):
        ops.conv2d(np.zeros((1, 3, 70, 9)), w, padding=2, algo="fft", **kwargs)
