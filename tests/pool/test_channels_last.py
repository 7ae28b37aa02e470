"""Pooling on channels_last arrays (NCHW axes over NHWC memory): read in place by the NHWC
kernels, outputs and gradients channels_last, against the NCHW kernels on the same values (bit
for bit where the summation order is the same) and torch's channels_last."""
import numpy as np
import pytest

from fastconv import functional as F
from fastconv import nn, ops
from fastconv._C import max_pool2d_backward, max_pool2d_forward
from fastconv.autograd import Tensor, gradcheck
from fastconv.ops._checks import is_channels_last, to_channels_last

# (N, C, H, W, kernel, stride, padding, dilation, ceil_mode): C of 1 (read as NCHW: the same
# memory), 3 and 17; odd planes; padding, strides, dilation, ceil mode; the plain 2x2 window.
MAX_CASES = [
    (2, 3, 7, 9, 3, 2, 1, 1, False),
    (2, 17, 7, 9, 3, 2, 1, 1, True),
    (2, 3, 9, 8, (3, 2), (2, 3), (1, 0), (2, 1), True),
    (3, 17, 11, 10, 4, 3, 2, 2, True),
    (2, 17, 9, 11, 2, None, 0, 1, False),
    (2, 1, 5, 5, 3, 1, 1, 1, False),
    # C of 40 (whole vectors of every ISA and a tail) and 70 (two blocks of channels): the plain
    # 2x2 window, whose backward gathers, also on odd sizes and with the last rows unread
    (2, 40, 8, 8, 2, 2, 0, 1, False),
    (1, 70, 7, 9, 2, 2, 0, 1, False),
    (1, 40, 9, 7, 3, 3, 0, 1, True),
    (1, 40, 6, 7, (1, 2), (3, 2), 0, 1, False),   # windows that leave input rows unread in between
]
# (N, C, H, W, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
AVG_CASES = [
    (2, 3, 7, 9, 3, 2, 1, False, True, None),
    (2, 17, 7, 9, 3, 2, 1, True, False, None),
    (2, 3, 5, 8, (2, 4), (1, 3), (1, 2), True, True, 5),
    (1, 17, 6, 5, 3, 1, 1, False, False, None),
    (1, 40, 6, 7, 3, 2, 1, True, True, None),  # whole vectors of every ISA and a tail
]
DTYPES = [np.float32, np.float64]


def _max_args(case):
    return dict(kernel_size=case[4], stride=case[5], padding=case[6], dilation=case[7], ceil_mode=case[8])


def _avg_args(case):
    return dict(kernel_size=case[4], stride=case[5], padding=case[6], ceil_mode=case[7], count_include_pad=case[8],
                divisor_override=case[9])


def _in_layout_of_input(a, x):
    """a is channels_last exactly when x is (and a's shape lets the two layouts differ)."""
    both_layouts = a.shape[1] == 1 or a.shape[2] * a.shape[3] == 1
    return both_layouts or is_channels_last(a) == is_channels_last(x)


def _poisoned(rng, shape, dtype):
    """Values with ties (the first in window order must win) and NaNs (which win, as in torch)."""
    x = rng.standard_normal(shape).astype(dtype)
    x.reshape(-1)[::7] = x.reshape(-1)[3]
    x.reshape(-1)[5::23] = np.nan
    return x


@pytest.mark.parametrize("case", MAX_CASES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool2d_channels_last_equals_nchw(isa, rng, case, dtype):
    x = _poisoned(rng, case[:4], dtype)
    x_cl = to_channels_last(x)
    y, idx = ops.max_pool2d(x, **_max_args(case), return_indices=True)
    y_cl, idx_cl = ops.max_pool2d(x_cl, **_max_args(case), return_indices=True)
    assert _in_layout_of_input(y_cl, x_cl) and _in_layout_of_input(idx_cl, x_cl)
    np.testing.assert_array_equal(y_cl, y)  # NaNs included, in the same places
    np.testing.assert_array_equal(idx_cl, idx)
    np.testing.assert_array_equal(ops.max_pool2d(x_cl, **_max_args(case)), y)

    gy = rng.standard_normal(y.shape).astype(dtype)
    dx = ops.max_pool2d_backward(gy, x.shape, idx)
    for g in (to_channels_last(gy), gy):  # grad_output in either layout
        dx_cl = ops.max_pool2d_backward(g, x.shape, idx_cl, channels_last=True)
        assert _in_layout_of_input(dx_cl, x_cl)
        np.testing.assert_array_equal(dx_cl, dx)


@pytest.mark.parametrize("case", AVG_CASES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_avg_pool2d_channels_last_equals_nchw(isa, rng, case, dtype):
    x = rng.standard_normal(case[:4]).astype(dtype)
    x_cl = to_channels_last(x)
    y, y_cl = ops.avg_pool2d(x, **_avg_args(case)), ops.avg_pool2d(x_cl, **_avg_args(case))
    assert is_channels_last(y_cl)
    np.testing.assert_array_equal(y_cl, y)  # each window summed in the same order

    gy = rng.standard_normal(y.shape).astype(dtype)
    dx = ops.avg_pool2d_backward(gy, x.shape, **_avg_args(case))
    dx_cl = ops.avg_pool2d_backward(to_channels_last(gy), x.shape, **_avg_args(case))  # layout from grad_output
    assert is_channels_last(dx_cl)
    # overlapping windows add their shares to an input in another order: float rounding
    tol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(dx_cl, dx, rtol=tol, atol=tol)


@pytest.mark.parametrize("in_hw,out_hw", [((7, 9), (3, 4)), ((5, 5), (1, 1)), ((4, 6), (7, 6)), ((1, 1), (3, 2))])
@pytest.mark.parametrize("dtype", DTYPES)
def test_adaptive_avg_pool2d_channels_last_equals_nchw(isa, rng, in_hw, out_hw, dtype):
    x = rng.standard_normal((2, 40) + in_hw).astype(dtype)  # C: whole vectors of every ISA and a tail
    x[0, 3, 0, 0] = np.nan
    x_cl = to_channels_last(x)
    y, y_cl = ops.adaptive_avg_pool2d(x, out_hw), ops.adaptive_avg_pool2d(x_cl, out_hw)
    assert _in_layout_of_input(y_cl, x_cl)
    np.testing.assert_array_equal(y_cl, y)

    gy = rng.standard_normal(y.shape).astype(dtype)
    dx = ops.adaptive_avg_pool2d_backward(gy, x.shape)
    dx_cl = ops.adaptive_avg_pool2d_backward(to_channels_last(gy), x.shape, channels_last=True)
    assert _in_layout_of_input(dx_cl, x_cl)
    np.testing.assert_array_equal(dx_cl, dx)


def test_empty_batch_channels_last():
    x = np.zeros((0, 3, 5, 4), np.float32).transpose(0, 3, 1, 2)  # an NHWC block, empty
    y, idx = ops.max_pool2d(x, 2, return_indices=True)
    assert y.shape == idx.shape == (0, 4, 1, 2)
    assert ops.max_pool2d_backward(y, x.shape, idx, channels_last=True).shape == x.shape
    assert ops.avg_pool2d(x, 2).shape == (0, 4, 1, 2)
    assert ops.adaptive_avg_pool2d(x, 2).shape == (0, 4, 2, 2)


def test_pooling_channels_last_matches_torch(torch, rng):
    x = _poisoned(rng, (2, 17, 9, 11), np.float32)
    x_cl = to_channels_last(x)
    tx = torch.from_numpy(x).contiguous(memory_format=torch.channels_last).requires_grad_()
    ty, tidx = torch.nn.functional.max_pool2d(tx, 3, 2, 1, return_indices=True)
    y, idx = ops.max_pool2d(x_cl, 3, 2, 1, return_indices=True)
    assert ty.is_contiguous(memory_format=torch.channels_last) and is_channels_last(y)
    np.testing.assert_array_equal(y, ty.detach().numpy())
    np.testing.assert_array_equal(idx, tidx.numpy())
    gy = rng.standard_normal(y.shape).astype(np.float32)
    ty.backward(torch.from_numpy(gy).contiguous(memory_format=torch.channels_last))
    np.testing.assert_array_equal(ops.max_pool2d_backward(to_channels_last(gy), x.shape, idx), tx.grad.numpy())

    tavg = torch.nn.functional.avg_pool2d(tx.detach(), 3, 2, 1, count_include_pad=False)
    np.testing.assert_allclose(ops.avg_pool2d(x_cl, 3, 2, 1, count_include_pad=False), tavg.numpy(), rtol=1e-6)
    tadapt = torch.nn.functional.adaptive_avg_pool2d(tx.detach(), (4, 3))
    np.testing.assert_allclose(ops.adaptive_avg_pool2d(x_cl, (4, 3)), tadapt.numpy(), rtol=1e-6)


def test_channels_last_out_of_another_layout_is_refused(rng):
    x = to_channels_last(rng.standard_normal((1, 3, 4, 4)))
    with pytest.raises(ValueError, match="out: expected a channels_last"):
        max_pool2d_forward(x, np.empty((1, 3, 2, 2)), None, (2, 2), (2, 2), (0, 0), (1, 1), False)


def test_indices_outside_the_plane_route_nothing_channels_last(rng):
    grad_y = to_channels_last(rng.standard_normal((1, 3, 2, 2)))
    indices = to_channels_last(np.array([5, -1, 16, 2**40] * 3, np.int64).reshape(1, 3, 2, 2))
    grad_x = to_channels_last(np.full((1, 3, 4, 4), np.nan))
    max_pool2d_backward(grad_y, indices, grad_x)
    expected = np.zeros((1, 3, 4, 4))
    expected[0, :, 1, 1] = grad_y[0, :, 0, 0]  # index 5 = (1, 1); the others lie outside the plane
    np.testing.assert_array_equal(grad_x, expected)


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool2d_backward_with_callers_own_indices_channels_last(isa, rng, dtype):
    """Indices that max_pool2d would not give (outside their window, several outputs on one
    input, -0 gradients) route as the NCHW scatter does, bit for bit."""
    shape = (2, 40, 8, 6)
    grad_y = rng.standard_normal((2, 40, 4, 3)).astype(dtype)
    grad_y[:, ::5] = -0.0
    _, indices = ops.max_pool2d(rng.standard_normal(shape), 2, return_indices=True)
    for stray in (indices.copy(), rng.integers(0, 48, indices.shape)):
        stray[:, ::3, 0, 0] = stray[:, ::3, 3, 2] = stray[:, ::3, 1, 1] = 7  # three outputs, one input
        dx = ops.max_pool2d_backward(grad_y, shape, stray)
        dx_cl = ops.max_pool2d_backward(to_channels_last(grad_y), shape, to_channels_last(stray))
        assert is_channels_last(dx_cl)
        np.testing.assert_array_equal(dx_cl, dx)
        np.testing.assert_array_equal(np.signbit(dx_cl), np.signbit(dx))


@pytest.mark.parametrize("pool", [
    lambda t: F.max_pool2d(t, 3, 2, 1),
    lambda t: F.avg_pool2d(t, 3, 2, 1, count_include_pad=False),
    lambda t: F.adaptive_avg_pool2d(t, (2, 3)),
])
def test_gradients_through_functional_on_channels_last(one_thread, rng, pool):
    x = Tensor(to_channels_last(rng.standard_normal((2, 3, 5, 6))), requires_grad=True)
    y = pool(x)
    assert is_channels_last(y.data)
    assert gradcheck(pool, [x])
    assert is_channels_last(x.grad.data) and is_channels_last(x.data)


def test_layers_keep_channels_last(rng):
    x = Tensor(to_channels_last(rng.standard_normal((2, 3, 8, 8))), requires_grad=True)
    y = nn.AdaptiveAvgPool2d(2)(nn.AvgPool2d(3, 1, 1)(nn.MaxPool2d(2)(x)))
    assert is_channels_last(y.data)
    y.sum().backward()
    assert is_channels_last(x.grad.data)
