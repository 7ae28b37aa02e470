"""Element-wise functions of one tensor, each with its derivative beside it."""
from fastconv import backend
from fastconv.autograd.function import Function


class _Unary(Function):
    """out = compute(xp, x); backward multiplies by derivative(xp, x, out) (whichever is cheaper
    to use). xp is the array module of x (numpy, or cupy for a GPU array)."""

    @classmethod
    def forward(cls, ctx, x):
        out = cls.compute(backend.array_module(x), x)
        ctx.save_for_backward(x, out)
        return out

    @classmethod
    def backward(cls, ctx, grad):
        x, out = ctx.saved_arrays
        return grad * cls.derivative(backend.array_module(x), x, out)


def stable_sigmoid(xp, x):
    # tanh form: no overflow in exp for large |x|, unlike 1 / (1 + exp(-x)).
    return 0.5 * (xp.tanh(0.5 * x) + 1)


class Exp(_Unary):
    compute = staticmethod(lambda xp, x: xp.exp(x))
    derivative = staticmethod(lambda xp, x, out: out)


class Log(_Unary):
    compute = staticmethod(lambda xp, x: xp.log(x))
    derivative = staticmethod(lambda xp, x, out: 1 / x)


class Sqrt(_Unary):
    compute = staticmethod(lambda xp, x: xp.sqrt(x))
    derivative = staticmethod(lambda xp, x, out: 0.5 / out)


class Abs(_Unary):
    compute = staticmethod(lambda xp, x: xp.abs(x))
    derivative = staticmethod(lambda xp, x, out: xp.sign(x))


class Tanh(_Unary):
    compute = staticmethod(lambda xp, x: xp.tanh(x))
    derivative = staticmethod(lambda xp, x, out: 1 - out * out)


class Sigmoid(_Unary):
    compute = staticmethod(stable_sigmoid)
    derivative = staticmethod(lambda xp, x, out: out * (1 - out))


class ReLU(_Unary):
    compute = staticmethod(lambda xp, x: xp.maximum(x, 0))
    # PyTorch's threshold_backward: zero where x <= 0, so a NaN input passes its gradient on
    derivative = staticmethod(lambda xp, x, out: (~(x <= 0)).astype(x.dtype))
