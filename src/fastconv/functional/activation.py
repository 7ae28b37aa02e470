"""Activations and (log-)softmax, each forward beside its backward."""
import numpy as np

from fastconv import backend
from fastconv.autograd import Function, Tensor


def relu(input: Tensor) -> Tensor:
    return input.relu()


def sigmoid(input: Tensor) -> Tensor:
    return input.sigmoid()


def tanh(input: Tensor) -> Tensor:
    return input.tanh()


class LeakyReLU(Function):
    @staticmethod
    def forward(ctx, x, negative_slope):
        ctx.slope = backend.array_module(x).where(x > 0, 1, negative_slope).astype(x.dtype)
        return x * ctx.slope

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.slope


def leaky_relu(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    return LeakyReLU.apply(input, negative_slope)


class ELU(Function):
    @staticmethod
    def forward(ctx, x, alpha):
        xp = backend.array_module(x)
        negative_part = alpha * xp.expm1(xp.minimum(x, 0))  # clipped: no overflow for large x
        ctx.save_for_backward(x, negative_part)
        ctx.alpha = alpha
        return xp.where(x > 0, x, negative_part)

    @staticmethod
    def backward(ctx, grad):
        x, negative_part = ctx.saved_arrays
        # a NaN input gets a NaN slope (PyTorch's vectorised elu_backward too; its scalar loop, which
        # serves tensors under 16 elements and vector tails, gives 1 there)
        return grad * backend.array_module(x).where(x > 0, 1, negative_part + ctx.alpha)


def elu(input: Tensor, alpha: float = 1.0) -> Tensor:
    return ELU.apply(input, alpha)


def log_softmax_array(xp, x, axis):
    if x.size == 0:  # nothing to normalise (and max has no identity to reduce an empty axis with)
        return x.copy()
    shifted = x - x.max(axis=axis, keepdims=True)  # exp never overflows
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


class LogSoftmax(Function):
    output = staticmethod(lambda xp, log_probs: log_probs)

    @classmethod
    def forward(cls, ctx, x, dim):
        xp = backend.array_module(x)
        out = cls.output(xp, log_softmax_array(xp, x, dim))
        ctx.save_for_backward(out)
        ctx.dim = dim
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_arrays
        return grad - backend.array_module(out).exp(out) * grad.sum(axis=ctx.dim, keepdims=True)


class Softmax(LogSoftmax):
    output = staticmethod(lambda xp, log_probs: xp.exp(log_probs))

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_arrays
        return out * (grad - (grad * out).sum(axis=ctx.dim, keepdims=True))


class Cast(Function):
    """x as another float dtype; its gradient returns in x's dtype."""

    @staticmethod
    def forward(ctx, x, dtype):
        ctx.dtype = x.dtype
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad.astype(ctx.dtype)


def _cast(input, dtype):
    """PyTorch's dtype= of softmax: the input cast to a float dtype before the op (None: as it is)."""
    if dtype is None:
        return input
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"dtype: expected a float dtype, got {dtype}")
    return input if input.dtype == dtype else Cast.apply(input, dtype)


def softmax(input: Tensor, dim: int, dtype=None) -> Tensor:
    """torch.nn.functional.softmax; dtype (a numpy float dtype) casts the input first."""
    return Softmax.apply(_cast(input, dtype), dim)


def log_softmax(input: Tensor, dim: int, dtype=None) -> Tensor:
    """torch.nn.functional.log_softmax; dtype (a numpy float dtype) casts the input first."""
    return LogSoftmax.apply(_cast(input, dtype), dim)
