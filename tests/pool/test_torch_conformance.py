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


@pytest.mark.parametrize("value", [2**63, -2**63 - 1, 2**40])
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
    with pytest.raises(ValueError, match=rf"^{name}: expected values of magnitude at most 2\*\*31 - 1"):
        call(value)


def test_pool_backward_huge_input_shape_raises_naming_argument():
    with pytest.raises(ValueError, match=r"^input_shape: expected 4 sizes"):
        ops.avg_pool2d_backward(np.zeros((1, 2, 2, 2)), (1, 2, 2**63, 5), 2)
    with pytest.raises(ValueError, match=r"^input_shape: .* more than an array can address"):
        ops.adaptive_avg_pool2d_backward(np.zeros((1, 2, 2, 2)), (2**31 - 1,) * 4)
