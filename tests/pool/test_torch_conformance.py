"""Pooling against torch.nn.functional where fastconv once differed: one-element tuples, integers
beyond int64 or any output that fits in memory (refused naming the argument before they reach
the compiled kernels)."""
import numpy as np
import pytest

import fastconv.functional as F
from fastconv import ops
from tests.oracle import compare_with_torch

X = np.zeros((1, 2, 5, 5))


@pytest.mark.parametrize("op", ["max_pool2d", "avg_pool2d"])
@pytest.mark.parametrize("kwargs", [dict(kernel_size=(2,)), dict(kernel_size=2, stride=(1,)),
                                    dict(kernel_size=3, padding=(1,))])
def test_pool_one_element_tuples_match_torch(torch, op, kwargs):
    x = np.random.default_rng(0).standard_normal((1, 2, 5, 6))
    compare_with_torch(torch, lambda a: getattr(F, op)(a, **kwargs),
                       lambda a: getattr(torch.nn.functional, op)(a, **kwargs), [x])


@pytest.mark.parametrize("value", [2**63, -2**63 - 1])
@pytest.mark.parametrize("call,name", [
    (lambda v: ops.max_pool2d(X, v), "kernel_size"),
    (lambda v: ops.max_pool2d(X, 2, stride=v), "stride"),
    (lambda v: ops.max_pool2d(X, 2, padding=v), "padding"),
    (lambda v: ops.max_pool2d(X, 2, dilation=(1, v)), "dilation"),
    (lambda v: ops.avg_pool2d(X, v), "kernel_size"),
    (lambda v: ops.avg_pool2d(X, 2, divisor_override=v), "divisor_override"),
    (lambda v: ops.adaptive_avg_pool2d(X, v), "output_size"),
    (lambda v: ops.adaptive_avg_pool2d(X, (None, v)), "output_size"),
])
def test_pool_huge_integer_raises_naming_argument(call, name, value):
    with pytest.raises(ValueError, match=rf"^{name}: expected values of magnitude at most 2\*\*63 - 1"):
        call(value)


def test_pool_backward_huge_input_shape_raises_naming_argument():
    with pytest.raises(ValueError, match=r"^input_shape: expected 4 sizes"):
        ops.avg_pool2d_backward(np.zeros((1, 2, 2, 2)), (1, 2, 2**63, 5), 2)
    with pytest.raises(ValueError, match=r"^input_shape: .* more than an array can address"):
        ops.adaptive_avg_pool2d_backward(np.zeros((1, 2, 2, 2)), (2**31 - 1,) * 4)


POOLS = {
    "max_pool2d": dict(kernel_size=3, stride=2, padding=1),
    "adaptive_avg_pool2d": dict(output_size=(2, 3)),
}


@pytest.mark.parametrize("op", POOLS)
def test_pool_unbatched_input_matches_torch(torch, op):
    x = np.random.default_rng(2).standard_normal((3, 6, 7))
    compare_with_torch(torch, lambda a: getattr(F, op)(a, **POOLS[op]),
                       lambda a: getattr(torch.nn.functional, op)(a, **POOLS[op]), [x])


@pytest.mark.parametrize("shape", [(2, 3, 6, 7), (3, 6, 7)])
def test_max_pool2d_return_indices_matches_torch(torch, shape):
    from fastconv import Tensor
    x = np.random.default_rng(3).standard_normal(shape)
    y, indices = F.max_pool2d(Tensor(x, requires_grad=True), 3, 2, 1, return_indices=True)
    expected, expected_indices = torch.nn.functional.max_pool2d(torch.tensor(x), 3, 2, 1, return_indices=True)
    np.testing.assert_array_equal(y.numpy(), expected.numpy())
    np.testing.assert_array_equal(indices.numpy(), expected_indices.numpy())
    assert not indices.requires_grad
    compare_with_torch(torch, lambda a: F.max_pool2d(a, 3, 2, 1, return_indices=True)[0],
                       lambda a: torch.nn.functional.max_pool2d(a, 3, 2, 1, return_indices=True)[0], [x])


@pytest.mark.parametrize("divisor_override", [None, 3, 7])
def test_avg_pool2d_divisor_override_matches_torch(torch, divisor_override):
    x = np.random.default_rng(4).standard_normal((2, 3, 6, 7))
    kwargs = dict(kernel_size=3, stride=2, padding=1, divisor_override=divisor_override)
    compare_with_torch(torch, lambda a: F.avg_pool2d(a, **kwargs),
                       lambda a: torch.nn.functional.avg_pool2d(a, **kwargs), [x])


def test_pool_layers_take_torch_arguments(torch):
    from fastconv import Tensor, nn
    x = np.random.default_rng(5).standard_normal((2, 3, 6, 7))
    ours = nn.AvgPool2d(3, 2, 1, True, False, 5)(Tensor(x)).numpy()
    theirs = torch.nn.AvgPool2d(3, 2, 1, True, False, 5)(torch.tensor(x)).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    y, indices = nn.MaxPool2d(3, 2, 1, 1, True, True)(Tensor(x))
    expected, expected_indices = torch.nn.MaxPool2d(3, 2, 1, 1, True, True)(torch.tensor(x))
    np.testing.assert_array_equal(y.numpy(), expected.numpy())
    np.testing.assert_array_equal(indices.numpy(), expected_indices.numpy())


@pytest.mark.parametrize("bad", [-1, 36, 2**40])
def test_max_pool2d_backward_out_of_range_indices_raise(bad):
    x = np.random.default_rng(6).standard_normal((1, 2, 6, 6))
    y, indices = ops.max_pool2d(x, 2, return_indices=True)
    indices[0, 1, 2, 1] = bad
    with pytest.raises(ValueError, match=r"^indices: expected values in \[0, 36\)"):
        ops.max_pool2d_backward(np.ones_like(y), x.shape, indices)


def test_max_pool2d_backward_valid_user_indices_match_torch(torch):
    x = np.random.default_rng(7).standard_normal((1, 2, 6, 6))
    y, indices = ops.max_pool2d(x, 2, return_indices=True)
    indices[0, 0, 0, 0] = 35  # any index inside the plane is taken as given
    grad = np.random.default_rng(8).standard_normal(y.shape)
    expected = torch.ops.aten.max_pool2d_with_indices_backward(
        torch.tensor(grad), torch.tensor(x), [2, 2], [2, 2], [0, 0], [1, 1], False, torch.tensor(indices))
    np.testing.assert_allclose(ops.max_pool2d_backward(grad, x.shape, indices), expected.numpy(), rtol=1e-12)
def test_max_pool2d_window_without_input_matches_torch(torch):
    # A dilated window over padding only: output -inf and an index past its row, as in PyTorch. Its
    # gradient goes nowhere here; PyTorch's CPU kernel writes it past the plane, so the gradient is
    # compared with those outputs' gradients zero.
    from fastconv import Tensor
    x = np.random.default_rng(7).standard_normal((1, 2, 3, 4))
    kwargs = dict(kernel_size=(1, 2), stride=1, padding=(0, 1), dilation=(1, 5), return_indices=True)
    xt = Tensor(x, requires_grad=True)
    y, indices = F.max_pool2d(xt, **kwargs)
    expected_x = torch.tensor(x, requires_grad=True)
    expected, expected_indices = torch.nn.functional.max_pool2d(expected_x, **kwargs)
    np.testing.assert_array_equal(y.numpy(), expected.detach().numpy())
    np.testing.assert_array_equal(indices.numpy(), expected_indices.numpy())
    empty = np.isneginf(y.numpy())
    assert empty.any()
    weights = np.where(empty, 0.0, np.random.default_rng(8).standard_normal(y.shape))
    (y * weights).sum().backward()
    (expected * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(xt.grad.numpy(), expected_x.grad.numpy(), rtol=1e-12)


def test_max_pool2d_backward_own_indices_of_an_empty_window_route_nothing():
    x = np.random.default_rng(8).standard_normal((1, 1, 1, 2))
    y, indices = ops.max_pool2d(x, (1, 2), stride=1, padding=(0, 1), dilation=(1, 3), return_indices=True)
    assert indices.max() >= 2  # past the 1x2 plane: the window holds padding only
    with pytest.raises(ValueError, match=r"^indices: expected values in \[0, 2\)"):
        ops.max_pool2d_backward(np.ones_like(y), x.shape, indices)
    np.testing.assert_array_equal(ops.max_pool2d_backward(np.ones_like(y), x.shape, indices, check_indices=False),
                                  np.zeros_like(x))
