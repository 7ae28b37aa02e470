"""gradcheck itself: it must catch a wrong backward and name the worst element."""
import numpy as np
import pytest

from fastconv import Tensor, gradcheck
from fastconv.autograd import Function, GradcheckError


class WrongSquare(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_arrays
        wrong = 2 * x
        wrong[1] += 0.5  # one bad element
        return grad * wrong


def test_accepts_a_correct_gradient(rng):
    assert gradcheck(lambda t: (t * t).sum(axis=0), [Tensor(rng.standard_normal((3, 2)), requires_grad=True)])


def test_reports_the_wrong_element(rng):
    x = Tensor(rng.standard_normal(4), requires_grad=True)
    with pytest.raises(GradcheckError, match=r"input 0 \(shape \(4,\)\) element \(1,\)"):
        gradcheck(WrongSquare.apply, [x])


def test_refuses_float32_inputs():
    with pytest.raises(TypeError, match="float64"):
        gradcheck(lambda t: t * 2, [Tensor(np.ones(2, np.float32), requires_grad=True)])


def test_needs_an_input_that_requires_grad():
    with pytest.raises(ValueError, match="no input requires grad"):
        gradcheck(lambda t: t * 2, [Tensor(np.ones(2))])


def test_checks_tuple_outputs_and_non_contiguous_inputs(rng):
    x = Tensor(rng.standard_normal((3, 4)).T, requires_grad=True)
    assert gradcheck(lambda t: (t.exp(), t.sum(axis=1)), [x])
