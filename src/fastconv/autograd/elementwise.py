"""Element-wise functions of one tensor, each with its derivative beside it."""
import numpy as np

from fastconv.autograd.function import Function


class _Unary(Function):
    """out = compute(x); backward multiplies by derivative(x, out) (whichever is cheaper to use)."""

    @classmethod
    def forward(cls, ctx, x):
        out = cls.compute(x)
        ctx.save_for_backward(x, out)
        return out

    @classmethod
    def backward(cls, ctx, grad):
        x, out = ctx.saved_arrays
        return grad * cls.derivative(x, out)


def stable_sigmoid(x):
    # tanh form: no overflow in exp for large |x|, unlike 1 / (1 + exp(-x)).
    return 0.5 * (np.tanh(0.5 * x) + 1)


class Exp(_Unary):
    compute = staticmethod(np.exp)
    derivative = staticmethod(lambda x, out: out)


class Log(_Unary):
    compute = staticmethod(np.log)
    derivative = staticmethod(lambda x, out: 1 / x)


class Sqrt(_Unary):
    compute = staticmethod(np.sqrt)
    derivative = staticmethod(lambda x, out: 0.5 / out)


class Abs(_Unary):
    compute = staticmethod(np.abs)
    derivative = staticmethod(lambda x, out: np.sign(x))


class Tanh(_Unary):
    compute = staticmethod(np.tanh)
    derivative = staticmethod(lambda x, out: 1 - out * out)


class Sigmoid(_Unary):
    compute = staticmethod(stable_sigmoid)
    derivative = staticmethod(lambda x, out: out * (1 - out))


class ReLU(_Unary):
    compute = staticmethod(lambda x: np.maximum(x, 0))
    derivative = staticmethod(lambda x, out: (x > 0).astype(x.dtype))
