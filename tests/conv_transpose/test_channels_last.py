"""conv_transpose2d on channels_last arrays: the output and grad_input come back channels_last, the
values those of the float64 scatter definition. In place (algo 'im2col' or 'auto'), the forward is
the equivalent conv2d's input gradient, which channels_last kernels run by sub-pixel phases where
the direct kernel runs (groups of one, no dilation), else by im2col + col2im; another algorithm
runs on NCHW copies."""
import numpy as np
import pytest

import fastconv.functional as F
from fastconv import Tensor, ops
from tests.conv_transpose.cases import case_arrays
from tests.reference import conv_transpose2d_reference, numeric_gradient

# (N, C_in, H, W, C_out/groups, R, S, stride, padding, output_padding, groups, dilation)
CASES = [
    (2, 20, 5, 6, 17, 4, 4, 2, 1, 0, 1, 1),        # FCN-style 2x: four phases of 2x2 taps; 17 channels out
    (1, 9, 4, 5, 12, 5, 3, (3, 2), (2, 1), (1, 1), 1, 1),  # phases of 1 or 2 taps, output_padding
    (2, 6, 3, 4, 5, 2, 2, 3, 0, 0, 1, 1),          # stride above the kernel: phases without taps
    (1, 8, 4, 4, 8, 3, 3, 1, 1, 0, 1, 1),          # stride 1: the stride-1 input gradient's kernel
    (2, 16, 4, 3, 8, 3, 3, 2, 1, 1, 2, 1),         # groups of 8: im2col + col2im per group
    (1, 4, 5, 5, 3, 3, 3, 2, 1, 0, 1, 2),          # dilated: im2col + col2im
]


def _args(case):
    stride, padding, output_padding, groups, dilation = case[7:]
    return dict(stride=stride, padding=padding, output_padding=output_padding, groups=groups, dilation=dilation)


def _pair(v):
    return v if isinstance(v, tuple) else (v, v)


def _reference(x, w, b, case):
    stride, padding, output_padding, groups, dilation = case[7:]
    return conv_transpose2d_reference(x, w, b, _pair(stride), _pair(padding), _pair(output_padding), groups,
                                      _pair(dilation))


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("algo", ["im2col", "auto", "implicit"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_on_channels_last_matches_definition(isa, rng, case, algo, dtype):
    x, w, b = case_arrays(rng, case, dtype)
    y = ops.conv_transpose2d(ops.to_channels_last(x), w, b, **_args(case), algo=algo)
    assert ops.is_channels_last(y) or y.shape[1] == 1
    ref = _reference(x, w, b, case)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, ref, rtol=tol, atol=tol * np.abs(ref).max())


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("algo", ["im2col", "auto"])
def test_gradients_on_channels_last_match_numeric(isa, rng, case, algo):
    x, w, b = case_arrays(rng, case)
    gy = rng.standard_normal(_reference(x, w, b, case).shape)
    dx, dw, db = ops.conv_transpose2d_backward(ops.to_channels_last(x), w, ops.to_channels_last(gy), **_args(case),
                                               algo=algo)
    assert ops.is_channels_last(dx)
    np.testing.assert_allclose(dx, numeric_gradient(lambda a: _reference(a, w, None, case), x, gy), rtol=1e-6,
                               atol=1e-6)
    np.testing.assert_allclose(dw, numeric_gradient(lambda a: _reference(x, a, None, case), w, gy), rtol=1e-6,
                               atol=1e-6)
    np.testing.assert_allclose(db, gy.sum(axis=(0, 2, 3)), rtol=1e-12, atol=1e-10)


def test_grad_output_in_the_other_layout_is_accepted(rng):
    case = CASES[0]
    x, w, b = case_arrays(rng, case)
    gy = rng.standard_normal(_reference(x, w, b, case).shape)
    want = ops.conv_transpose2d_backward(x, w, gy, **_args(case))
    got = ops.conv_transpose2d_backward(ops.to_channels_last(x), w, gy, **_args(case), algo="im2col")
    for ours, theirs in zip(got, want):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("algo", ["subpixel", "im2col", "auto"])
def test_nchw_and_channels_last_calls_agree(rng, algo):
    """On NCHW copies (subpixel) bit for bit; in place to rounding."""
    args = dict(stride=2, padding=1, output_padding=1)
    x, w = rng.standard_normal((2, 8, 4, 3)), rng.standard_normal((8, 3, 3, 3))
    y = ops.conv_transpose2d(x, w, **args, algo=algo)
    dy = rng.standard_normal(y.shape)
    dx, dw, db = ops.conv_transpose2d_backward(x, w, dy, **args, algo=algo)
    y_cl = ops.conv_transpose2d(ops.to_channels_last(x), w, **args, algo=algo)
    dx_cl, dw_cl, db_cl = ops.conv_transpose2d_backward(ops.to_channels_last(x), w, ops.to_channels_last(dy), **args,
                                                        algo=algo)
    assert ops.is_channels_last(y_cl) and ops.is_channels_last(dx_cl) and dw_cl.flags.c_contiguous
    tol = 0 if algo == "subpixel" else 1e-12
    for ours, expected in ((y_cl, y), (dx_cl, dx), (dw_cl, dw), (db_cl, db)):
        np.testing.assert_allclose(ours, expected, rtol=tol, atol=tol)


def test_a_leaf_gradient_keeps_the_channels_last_layout(rng):
    x = Tensor(ops.to_channels_last(rng.standard_normal((2, 8, 4, 3))), requires_grad=True)
    y = F.conv_transpose2d(x, Tensor(rng.standard_normal((8, 3, 3, 3))), stride=2, padding=1, output_padding=1)
    y.sum().backward()
    assert ops.is_channels_last(y.data) and ops.is_channels_last(x.grad.data)
