"""conv_transpose2d's CUDA wrapper (fastconv/cuda/conv_transpose.py) on the host: conv.cu's im2col
and col2im (tests/cuda/host_kernels.py) and gemm.cu's blocks (tests/cuda/host_blocks.py), against
fastconv._C's conv_transpose2d; the arguments refused by fastconv._C's rules before any launch."""
import numpy as np
import pytest

from fastconv import _C
from fastconv.cuda import conv_transpose as cuda_conv_transpose
from fastconv.cuda import gemm
from tests.cuda import host_blocks, host_kernels
from tests.cuda.test_gemm_host import KERNELS as GEMM_KERNELS

# Sums in another order than the CPU's.
TOLERANCE = {np.float32: dict(rtol=2e-4, atol=2e-4), np.float64: dict(rtol=1e-11, atol=1e-11)}

# (input, weight (C_in, C_out/groups, R, S), (stride, padding, output_padding, dilation, groups)):
# plain, the 2x upsampling of a decoder, asymmetric strides with output padding, dilated,
# grouped, 1x1.
CASES = [
    ((2, 3, 5, 4), (3, 4, 3, 3), ((1, 1), (1, 1), (0, 0), (1, 1), 1)),
    ((1, 4, 4, 5), (4, 2, 4, 4), ((2, 2), (1, 1), (0, 0), (1, 1), 1)),
    ((2, 2, 3, 4), (2, 3, 3, 2), ((3, 2), (1, 0), (2, 1), (1, 1), 1)),
    ((1, 3, 5, 5), (3, 2, 3, 3), ((1, 1), (2, 2), (0, 0), (2, 2), 1)),
    ((2, 4, 4, 3), (4, 3, 3, 3), ((2, 1), (1, 1), (1, 0), (1, 1), 2)),
    ((1, 5, 3, 3), (5, 6, 1, 1), ((1, 1), (0, 0), (0, 0), (1, 1), 1)),
]


@pytest.fixture
def host(monkeypatch):
    host_kernels.install(monkeypatch, "conv")
    return host_blocks.install(monkeypatch, "gemm", GEMM_KERNELS)


@pytest.mark.parametrize("gemm_algorithm", ["tiled", "cublas"])  # "cublas" is numpy's matmul on the host
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES)
def test_forward_and_gradients_match_the_cpu(host, rng, monkeypatch, case, dtype, gemm_algorithm):
    monkeypatch.setattr(gemm, "_algorithm", gemm_algorithm)
    x_shape, w_shape, params = case
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[1] * params[-1]).astype(dtype)
    assert_every_direction_matches_the_cpu(rng, x, w, b, params, "im2col", TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_depthwise_transposed_convolution_runs_the_depthwise_kernels(host, rng, dtype):
    """conv_transpose2d with one output channel per group is a depthwise convolution's input
    gradient (here with multiplier 2 and output_padding: a negative end padding), its input
    gradient that convolution's forward, its weight gradient that convolution's."""
    x, w = rng.standard_normal((2, 6, 5, 4)).astype(dtype), rng.standard_normal((6, 1, 3, 3)).astype(dtype)
    params = ((2, 2), (1, 1), (1, 0), (1, 1), 3)
    # the depthwise kernels add in the CPU's order: closer than im2col + GEMM's tolerance
    tolerance = {np.float32: dict(rtol=2e-5, atol=2e-5), np.float64: dict(rtol=1e-13, atol=1e-13)}[dtype]
    assert_every_direction_matches_the_cpu(rng, x, w, None, params, "depthwise", tolerance)


def assert_every_direction_matches_the_cpu(rng, x, w, b, params, algo, tolerance):
    """The CUDA wrapper's forward and both gradients, run by `algo`, against fastconv._C's."""
    shape = _C.conv_transpose2d_output_shape(x.shape, w.shape, *params)
    got, want = np.full(shape, np.nan, x.dtype), np.full(shape, np.nan, x.dtype)
    cuda_conv_transpose.conv_transpose2d_forward(x, w, b, got, *params, algo)
    _C.conv_transpose2d_forward(x, w, b, want, *params, algo)
    np.testing.assert_allclose(got, want, **tolerance)

    dy = rng.standard_normal(shape).astype(x.dtype)
    got = [np.full_like(x, np.nan), np.full_like(w, np.nan), np.full(shape[1], np.nan, x.dtype)]
    want = [np.full_like(a, np.nan) for a in got]
    cuda_conv_transpose.conv_transpose2d_backward(x, w, dy, *got, *params, algo, algo)
    _C.conv_transpose2d_backward(x, w, dy, *want, *params, algo, algo)
    for g, e in zip(got, want):
        np.testing.assert_allclose(g, e, **tolerance)


def test_the_input_gradient_runs_the_forward_algorithm_asked_for(host, rng):
    x, w = rng.standard_normal((1, 4, 5, 5)), rng.standard_normal((4, 3, 3, 3))
    params = ((1, 1), (1, 1), (0, 0), (1, 1), 1)
    dy = rng.standard_normal(_C.conv_transpose2d_output_shape(x.shape, w.shape, *params))
    dx, want = np.full_like(x, np.nan), np.full_like(x, np.nan)
    cuda_conv_transpose.conv_transpose2d_backward(x, w, dy, dx, None, None, *params, "implicit", "im2col")
    _C.conv_transpose2d_backward(x, w, dy, want, None, None, *params, "im2col", "im2col")
    np.testing.assert_allclose(dx, want, rtol=1e-11, atol=1e-11)
    assert host["implicit_conv2d_forward_f64"].launches


X, W = np.zeros((1, 2, 4, 4)), np.zeros((2, 3, 3, 3))
PARAMS = ((2, 2), (1, 1), (1, 1), (1, 1), 1)


@pytest.mark.parametrize("call, error, message", [
    (lambda: cuda_conv_transpose.conv_transpose2d_forward(X, W, None, np.zeros((1, 3, 8, 8)), (2, 2), (1, 1), (2, 2),
                                                          (1, 1), 1, "im2col"), ValueError, "output_padding"),
    (lambda: cuda_conv_transpose.conv_transpose2d_forward(X, np.zeros((3, 3, 3, 3)), None, np.zeros((1, 3, 8, 8)),
                                                          *PARAMS, "im2col"), ValueError, "weight"),
    (lambda: cuda_conv_transpose.conv_transpose2d_forward(X, W, None, np.zeros((1, 3, 7, 8)), *PARAMS, "im2col"),
     ValueError, "out: expected shape"),
    (lambda: cuda_conv_transpose.conv_transpose2d_forward(X, W, np.zeros(4), np.zeros((1, 3, 8, 8)), *PARAMS,
                                                          "im2col"), ValueError, "bias"),
    (lambda: cuda_conv_transpose.conv_transpose2d_backward(X, W, np.zeros((1, 3, 7, 7)), np.zeros_like(X), None, None,
                                                           *PARAMS, "im2col", "im2col"),
     ValueError, "grad_output: expected shape"),
])
def test_bad_arguments_are_refused_before_any_launch(call, error, message):
    with pytest.raises(error, match=message):
        call()
