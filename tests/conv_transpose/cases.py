"""Arrays for the transposed-convolution cases of the tests in this folder: a case is
(N, C_in, H, W, C_out per group, R, S, stride, padding, output_padding, groups[, dilation])."""
import numpy as np

from fastconv import ops
from tests.reference import conv_transpose2d_reference, numeric_gradient


def case_arrays(rng, case, dtype=np.float64):
    """(input, weight, bias) of a case, standard normal."""
    n, c, h, w_, co, r, s, *_rest = case
    groups = case[10]
    x = rng.standard_normal((n, c, h, w_)).astype(dtype)
    w = rng.standard_normal((c, co, r, s)).astype(dtype)
    b = rng.standard_normal(co * groups).astype(dtype)
    return x, w, b


def case_args(case):
    """conv_transpose2d's keyword arguments of a case."""
    stride, padding, output_padding, groups = case[7:11]
    return dict(stride=stride, padding=padding, output_padding=output_padding, groups=groups)


def _pair(v):
    return v if isinstance(v, tuple) else (v, v)


def case_reference(x, w, b, case):
    """The float64 scatter reference's output for a case's arrays."""
    stride, padding, output_padding, groups = case[7:11]
    return conv_transpose2d_reference(x, w, b, _pair(stride), _pair(padding), _pair(output_padding), groups)


def check_gradients(rng, case, algo):
    """conv_transpose2d_backward by `algo` against numerical gradients of the reference, after a
    call on a NaN input (a kernel's scratch it poisons must not reach the next call)."""
    x, w, b = case_arrays(rng, case)
    gy = rng.standard_normal(case_reference(x, w, b, case).shape)
    ops.conv_transpose2d_backward(np.full_like(x, np.nan), w, gy, **case_args(case), algo=algo)
    dx, dw, db = ops.conv_transpose2d_backward(x, w, gy, **case_args(case), algo=algo)
    np.testing.assert_allclose(dx, numeric_gradient(lambda xx: case_reference(xx, w, None, case), x, gy), rtol=1e-6,
                               atol=1e-6)
    np.testing.assert_allclose(dw, numeric_gradient(lambda ww: case_reference(x, ww, None, case), w, gy), rtol=1e-6,
                               atol=1e-6)
    np.testing.assert_allclose(db, gy.sum(axis=(0, 2, 3)), rtol=1e-12, atol=1e-10)
