import numpy as np
import pytest

from fastconv import ops
from fastconv.backend import DeviceError, to_device, to_host
from tests.reference import adaptive_avg_pool2d_reference, numeric_gradient, pool2d_reference

# (N, C, H, W, kernel, stride, padding, dilation, ceil_mode)
MAX_CASES = [
    (1, 1, 4, 4, 2, None, 0, 1, False),
    (2, 3, 7, 9, 3, 2, 1, 1, False),
    (2, 3, 7, 9, 3, 2, 1, 1, True),            # ceil_mode adds a last, partial window
    (1, 2, 5, 5, 2, 2, 1, 1, True),            # ceil_mode window that would start in the right padding: dropped
    (2, 2, 9, 8, (3, 2), (2, 3), (1, 0), (2, 1), True),
    (1, 4, 5, 5, 5, 1, 2, 1, False),
    (3, 1, 11, 10, 4, 3, 2, 2, True),
    # plain 2x2 windows (the vectorised path): rows of 9 outputs (whole vectors and a tail), odd
    # sizes whose last row and column no window reads, ceil_mode on even sizes
    (2, 3, 8, 18, 2, 2, 0, 1, False),
    (1, 2, 9, 11, 2, None, 0, 1, False),
    (1, 2, 8, 8, 2, 2, 0, 1, True),
    # rows of 35 outputs: whole vectors of every ISA (16 floats in AVX-512) and a tail, for the 2x2
    # path and the row sweeps at input stride 2 and 1
    (1, 2, 4, 70, 2, 2, 0, 1, False),
    (1, 2, 7, 70, 3, 2, 1, 1, False),
    (1, 1, 3, 35, 3, 1, 1, 1, False),
]


def _pair(v):
    return v if isinstance(v, tuple) else (v, v)


def _max_args(case):
    return dict(kernel_size=case[4], stride=case[5], padding=case[6], dilation=case[7], ceil_mode=case[8])


def _max_reference(x, case):
    stride = case[4] if case[5] is None else case[5]
    return pool2d_reference(x, _pair(case[4]), _pair(stride), _pair(case[6]), _pair(case[7]), case[8], "max")


@pytest.mark.parametrize("case", MAX_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool2d_matches_reference(device, isa, rng, case, dtype):
    x = rng.standard_normal(case[:4]).astype(dtype)
    x.reshape(-1)[::7] = x.reshape(-1)[3]  # ties: the first in window order wins
    y, idx = map(to_host, ops.max_pool2d(to_device(x, device), **_max_args(case), return_indices=True))
    ref, ref_idx = _max_reference(x, case)
    np.testing.assert_array_equal(y, ref.astype(dtype))
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(to_host(ops.max_pool2d(to_device(x, device), **_max_args(case))), y)


@pytest.mark.parametrize("size,ceil_mode,expected", [(5, True, 3), (5, False, 3), (6, True, 4), (6, False, 4),
                                                     (7, True, 4), (7, False, 4)])
def test_pool2d_ceil_mode_output_size_follows_pytorch(size, ceil_mode, expected):
    # kernel 2, stride 2, padding 1: in ceil mode a last window is kept only if it starts inside
    # the input or its left padding ((out - 1) * stride < size + padding).
    y = ops.max_pool2d(np.zeros((1, 1, size, size)), 2, 2, 1, ceil_mode=ceil_mode)
    assert y.shape == (1, 1, expected, expected)
    assert ops.avg_pool2d(np.zeros((1, 1, size, size)), 2, 2, 1, ceil_mode).shape == y.shape


def test_max_pool2d_propagates_nan_like_torch(torch, rng):
    x = rng.standard_normal((2, 2, 6, 6))
    x[0, 0, 1, 1] = x[1, 1, 4, 5] = np.nan
    y, idx = ops.max_pool2d(x, 3, 2, 1, return_indices=True)
    ty, tidx = torch.nn.functional.max_pool2d(torch.tensor(x), 3, 2, 1, return_indices=True)
    np.testing.assert_array_equal(y, ty.numpy())
    np.testing.assert_array_equal(idx, tidx.numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_plain_2x2_max_pool2d_resolves_ties_nan_and_signed_zeros_as_torch(torch, isa, rng, dtype):
    """PyTorch folds a window's taps in row-major order, keeping the last NaN or else the first
    maximum: on data made of ties, zeros of both signs, infinities and NaN, the values (sign
    bits included) and the indices are its own."""
    values = np.array([0.0, -0.0, 1.0, 1.0, -np.inf, np.inf, np.nan], dtype)
    x = values[rng.integers(0, len(values), (2, 3, 10, 70))]  # rows of 35: whole vectors and a tail
    y, idx = ops.max_pool2d(x, 2, 2, return_indices=True)
    ty, tidx = torch.nn.functional.max_pool2d(torch.tensor(x), 2, 2, return_indices=True)
    np.testing.assert_array_equal(y, ty.numpy())
    np.testing.assert_array_equal(np.signbit(y), np.signbit(ty.numpy()))
    np.testing.assert_array_equal(idx, tidx.numpy())
    np.testing.assert_array_equal(ops.max_pool2d(x, 2, 2), y)


@pytest.mark.parametrize("case", MAX_CASES)
def test_max_pool2d_gradient_matches_numeric(device, rng, case):
    x = rng.standard_normal(case[:4])  # distinct values: max is differentiable
    y, idx = ops.max_pool2d(to_device(x, device), **_max_args(case), return_indices=True)
    gy = rng.standard_normal(y.shape)
    dx = to_host(ops.max_pool2d_backward(to_device(gy, device), x.shape, idx))
    np.testing.assert_allclose(dx, numeric_gradient(lambda a: _max_reference(a, case)[0], x, gy), rtol=1e-6, atol=1e-6)


# (N, C, H, W, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
AVG_CASES = [
    (1, 1, 4, 4, 2, None, 0, False, True, None),
    (2, 3, 7, 9, 3, 2, 1, False, True, None),
    (2, 3, 7, 9, 3, 2, 1, True, False, None),
    (2, 3, 7, 9, 3, 2, 1, True, True, None),   # the partial last window counts only cells inside the padded input
    (1, 2, 5, 8, (2, 4), (1, 3), (1, 2), True, True, 5),
    (3, 1, 6, 5, 3, 1, 1, False, False, None),
    (1, 2, 4, 70, 3, 2, 1, False, True, None),   # rows of 35 outputs: whole vectors and a tail
    (1, 1, 3, 35, 3, 1, 1, True, False, None),
    (1, 1, 3, 105, 3, 3, 0, False, True, None),  # stride 3: the sweeps' run-time stride
]


def _avg_args(case):
    return dict(kernel_size=case[4], stride=case[5], padding=case[6], ceil_mode=case[7], count_include_pad=case[8],
                divisor_override=case[9])


def _avg_reference(x, case):
    stride = case[4] if case[5] is None else case[5]
    return pool2d_reference(x, _pair(case[4]), _pair(stride), _pair(case[6]), (1, 1), case[7], "avg", case[8],
                            case[9] or 0)[0]


@pytest.mark.parametrize("case", AVG_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_avg_pool2d_matches_reference(device, isa, rng, case, dtype):
    x = rng.standard_normal(case[:4]).astype(dtype)
    tol = 1e-6 if dtype == np.float32 else 1e-14
    y = to_host(ops.avg_pool2d(to_device(x, device), **_avg_args(case)))
    np.testing.assert_allclose(y, _avg_reference(x, case), rtol=tol, atol=tol)


@pytest.mark.parametrize("case", AVG_CASES)
def test_avg_pool2d_gradient_matches_numeric(device, isa, rng, case):
    x = rng.standard_normal(case[:4])
    y = ops.avg_pool2d(to_device(x, device), **_avg_args(case))
    gy = rng.standard_normal(y.shape)
    dx = to_host(ops.avg_pool2d_backward(to_device(gy, device), x.shape, **_avg_args(case)))
    np.testing.assert_allclose(dx, numeric_gradient(lambda a: _avg_reference(a, case), x, gy), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("in_hw,out_hw", [((7, 9), (3, 4)), ((5, 5), (1, 1)), ((4, 6), (7, 6)), ((10, 3), (4, None))])
def test_adaptive_avg_pool2d_matches_reference_and_numeric(device, rng, in_hw, out_hw):
    x = rng.standard_normal((2, 3) + in_hw)
    y = to_host(ops.adaptive_avg_pool2d(to_device(x, device), out_hw))
    size = tuple(i if o is None else o for i, o in zip(in_hw, out_hw))
    np.testing.assert_allclose(y, adaptive_avg_pool2d_reference(x, *size), rtol=1e-14, atol=1e-14)
    gy = rng.standard_normal(y.shape)
    dx = to_host(ops.adaptive_avg_pool2d_backward(to_device(gy, device), x.shape))
    np.testing.assert_allclose(dx, numeric_gradient(lambda a: adaptive_avg_pool2d_reference(a, *size), x, gy),
                               rtol=1e-6, atol=1e-6)


def _random_window(rng):
    k = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
    stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    pad = tuple(int(rng.integers(0, kk // 2 + 1)) for kk in k)
    h, w = k[0] + int(rng.integers(0, 9)), k[1] + int(rng.integers(0, 9))
    return (int(rng.integers(1, 4)), int(rng.integers(1, 4)), h, w), k, stride, pad, bool(rng.integers(0, 2))


@pytest.mark.parametrize("seed", range(25))
def test_pooling_random_shapes_against_torch(torch, device, seed):
    rng = np.random.default_rng(seed)
    shape, k, stride, pad, ceil = _random_window(rng)
    F = torch.nn.functional
    x = rng.standard_normal(shape)
    x_dev = to_device(x, device)
    dilation = (1, int(rng.integers(1, 3))) if shape[3] >= 2 * k[1] else (1, 1)

    tx = torch.tensor(x, requires_grad=True)
    ty, tidx = F.max_pool2d(tx, k, stride, pad, dilation, ceil, return_indices=True)
    gy = rng.standard_normal(ty.shape)
    ty.backward(torch.tensor(gy))
    y, idx = ops.max_pool2d(x_dev, k, stride, pad, dilation, ceil, return_indices=True)
    np.testing.assert_array_equal(to_host(y), ty.detach().numpy())
    np.testing.assert_array_equal(to_host(idx), tidx.numpy())
    np.testing.assert_allclose(to_host(ops.max_pool2d_backward(to_device(gy, device), x.shape, idx)), tx.grad.numpy(),
                               rtol=1e-12, atol=1e-12)

    include_pad, divisor = bool(seed % 2), (None if seed % 3 else 3)
    tx = torch.tensor(x, requires_grad=True)
    ty = F.avg_pool2d(tx, k, stride, pad, ceil, include_pad, divisor)
    gy = rng.standard_normal(ty.shape)
    ty.backward(torch.tensor(gy))
    args = (k, stride, pad, ceil, include_pad, divisor)
    np.testing.assert_allclose(to_host(ops.avg_pool2d(x_dev, *args)), ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(to_host(ops.avg_pool2d_backward(to_device(gy, device), x.shape, *args)),
                               tx.grad.numpy(), rtol=1e-12, atol=1e-12)

    out = (int(rng.integers(1, 2 * shape[2])), int(rng.integers(1, 2 * shape[3])))
    tx = torch.tensor(x, requires_grad=True)
    ty = F.adaptive_avg_pool2d(tx, out)
    gy = rng.standard_normal(ty.shape)
    ty.backward(torch.tensor(gy))
    np.testing.assert_allclose(to_host(ops.adaptive_avg_pool2d(x_dev, out)), ty.detach().numpy(),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(to_host(ops.adaptive_avg_pool2d_backward(to_device(gy, device), x.shape)),
                               tx.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_pooling_float32_matches_torch_on_a_real_layer(torch, device, rng):
    x = rng.standard_normal((4, 16, 32, 32)).astype(np.float32)
    F, tx, x_dev = torch.nn.functional, torch.from_numpy(x), to_device(x, device)
    np.testing.assert_array_equal(to_host(ops.max_pool2d(x_dev, 2)), F.max_pool2d(tx, 2).numpy())
    np.testing.assert_allclose(to_host(ops.avg_pool2d(x_dev, 3, 2, 1)), F.avg_pool2d(tx, 3, 2, 1).numpy(),
                               rtol=1e-6, atol=1e-6)


def test_pooling_outputs_are_fully_written(rng):
    x = rng.standard_normal((2, 3, 9, 7)).astype(np.float32)
    for fn in (lambda a: ops.max_pool2d(a, 3, 2, 1, ceil_mode=True), lambda a: ops.avg_pool2d(a, 3, 2, 1, True),
               lambda a: ops.adaptive_avg_pool2d(a, (4, 5))):
        fn(np.full_like(x, np.nan))
        assert np.isfinite(fn(x)).all()
    y, idx = ops.max_pool2d(x, 2, return_indices=True)
    assert np.isfinite(ops.max_pool2d_backward(np.ones_like(y), x.shape, idx)).all()
    assert np.isfinite(ops.avg_pool2d_backward(np.ones((2, 3, 5, 4), np.float32), x.shape, 3, 2, 1, True)).all()


X = np.zeros((2, 3, 8, 8))


@pytest.mark.parametrize("call,error,match", [
    (lambda: ops.max_pool2d(np.zeros((3, 8, 8)), 2), ValueError, "input: expected a 4-d array"),
    (lambda: ops.max_pool2d(X, 2, padding=2), ValueError, "padding: must be >= 0 and at most half the kernel"),
    (lambda: ops.max_pool2d(X, 0), ValueError, "kernel_size: must be >= 1"),
    (lambda: ops.max_pool2d(X, 2, stride=0), ValueError, "stride: must be >= 1"),
    (lambda: ops.max_pool2d(X, 9), ValueError, "input: output height -?[0-9]+ is too small"),
    (lambda: ops.max_pool2d(X, (2, 2, 2)), TypeError, "kernel_size: expected an int or a pair"),
    (lambda: ops.max_pool2d(X.astype(np.int32), 2), TypeError, "input: expected a float32 or float64"),
    (lambda: ops.max_pool2d_backward(np.zeros((2, 3, 4, 4)), X.shape, np.zeros((2, 3, 4, 4))), TypeError,
     "indices: expected an int64 array"),
    (lambda: ops.max_pool2d_backward(np.zeros((2, 3, 4, 4)), (2, 3, 8), np.zeros((2, 3, 4, 4), np.int64)), ValueError,
     "input_shape: expected 4 sizes"),
    (lambda: ops.avg_pool2d(X, 3, padding=2), ValueError, "padding: must be >= 0 and at most half"),
    (lambda: ops.avg_pool2d(X, 2, divisor_override=0), ValueError, "divisor_override: must be non-zero"),
    (lambda: ops.avg_pool2d_backward(np.zeros((2, 3, 5, 5)), X.shape, 2), ValueError, "grad_output: expected shape \\(2, 3, 4, 4\\)"),
    (lambda: ops.adaptive_avg_pool2d(X, 0), ValueError, "output_size: must be >= 1"),
    (lambda: ops.adaptive_avg_pool2d(X, (2, 2, 2)), TypeError, "output_size: expected an int or a pair"),
])
def test_pooling_bad_input_raises_clearly(call, error, match):
    with pytest.raises(error, match=match):
        call()


GY = np.zeros((2, 3, 4, 4))
INDICES = np.zeros((2, 3, 4, 4), np.int64)


@pytest.mark.parametrize("op,call", [
    pytest.param("max_pool2d", lambda d: ops.max_pool2d(d, 2), id="max_pool2d-input"),
    pytest.param("max_pool2d_backward", lambda d: ops.max_pool2d_backward(d, X.shape, INDICES),
                 id="max_pool2d_backward-grad_output"),
    pytest.param("max_pool2d_backward", lambda d: ops.max_pool2d_backward(GY, X.shape, d),
                 id="max_pool2d_backward-indices"),
    pytest.param("avg_pool2d", lambda d: ops.avg_pool2d(d, 2), id="avg_pool2d-input"),
    pytest.param("avg_pool2d_backward", lambda d: ops.avg_pool2d_backward(d, X.shape, 2),
                 id="avg_pool2d_backward-grad_output"),
    pytest.param("adaptive_avg_pool2d", lambda d: ops.adaptive_avg_pool2d(d, 4), id="adaptive_avg_pool2d-input"),
    pytest.param("adaptive_avg_pool2d_backward", lambda d: ops.adaptive_avg_pool2d_backward(d, X.shape),
                 id="adaptive_avg_pool2d_backward-grad_output"),
])
def test_pooling_refuses_a_device_array_before_any_kernel_runs(cuda_array, op, call):
    with pytest.raises(DeviceError, match=f"^{op}: fastconv has no CUDA kernels"):
        call(cuda_array)
