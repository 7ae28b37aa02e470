"""Broadcasting arithmetic and matmul, each forward beside its backward."""
import numpy as np

from fastconv import backend, ops
from fastconv.autograd.function import Function


def broadcast_shape(op, a_shape, b_shape):
    # shape arithmetic on tuples: numpy's rule, whichever device the arrays live on
    try:
        return np.broadcast_shapes(a_shape, b_shape)
    except ValueError:
        raise ValueError(f"{op}: shapes {a_shape} and {b_shape} cannot be broadcast together") from None


def unbroadcast(grad, shape):
    """Sums a broadcast gradient back down to `shape` (the inverse of numpy's broadcasting)."""
    if grad.shape == shape:
        return grad
    grad = grad.sum(axis=tuple(range(grad.ndim - len(shape))))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    return grad.sum(axis=stretched, keepdims=True).reshape(shape)


class _Binary(Function):
    """out = compute(xp, a, b) with numpy broadcasting (xp: the arrays' module); subclasses give
    d out / d a and d out / d b."""

    @classmethod
    def forward(cls, ctx, a, b):
        broadcast_shape(cls.__name__.lower(), a.shape, b.shape)
        out = cls.compute(backend.array_module(a, b), a, b)
        ctx.save_for_backward(a, b, out)
        return out

    @classmethod
    def backward(cls, ctx, grad):
        a, b, out = ctx.saved_arrays
        need_a, need_b = ctx.needs_input_grad
        grad_a = unbroadcast(cls.grad_a(a, b, out, grad), a.shape) if need_a else None
        grad_b = unbroadcast(cls.grad_b(a, b, out, grad), b.shape) if need_b else None
        return grad_a, grad_b


class Add(_Binary):
    compute = staticmethod(lambda xp, a, b: xp.add(a, b))
    grad_a = grad_b = staticmethod(lambda a, b, out, g: g)


class Sub(_Binary):
    compute = staticmethod(lambda xp, a, b: xp.subtract(a, b))
    grad_a = staticmethod(lambda a, b, out, g: g)
    grad_b = staticmethod(lambda a, b, out, g: -g)


class Mul(_Binary):
    compute = staticmethod(lambda xp, a, b: xp.multiply(a, b))
    grad_a = staticmethod(lambda a, b, out, g: g * b)
    grad_b = staticmethod(lambda a, b, out, g: g * a)


class Div(_Binary):
    compute = staticmethod(lambda xp, a, b: xp.divide(a, b))
    grad_a = staticmethod(lambda a, b, out, g: g / b)
    grad_b = staticmethod(lambda a, b, out, g: -g * out / b)


class Pow(_Binary):
    compute = staticmethod(lambda xp, a, b: xp.power(a, b))
    grad_a = staticmethod(lambda a, b, out, g: g * b * a ** (b - 1))
    grad_b = staticmethod(lambda a, b, out, g: g * out * backend.array_module(a).log(a))


class Neg(Function):
    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, grad):
        return -grad


def _matmul_arrays(a, b):
    """2-d float products go to our GEMM; batched ones (rare here) to the array module's."""
    if a.ndim == 2 and b.ndim == 2 and a.dtype == b.dtype and a.dtype in ops._checks.FLOAT_DTYPES:
        return ops.matmul(a, b)
    return backend.array_module(a, b).matmul(a, b)


def _as_matrices(a, b):
    """torch.matmul's rule for vectors: a 1-d a is a row (1, n), a 1-d b a column (n, 1)."""
    return (a[None, :] if a.ndim == 1 else a), (b[:, None] if b.ndim == 1 else b)


def _without_vector_axes(shape, vector_a, vector_b):
    """The product's shape less the axes _as_matrices added (a's row axis, b's column axis)."""
    return shape[:-2] + (() if vector_a else shape[-2:-1]) + (() if vector_b else shape[-1:])


class MatMul(Function):
    @staticmethod
    def forward(ctx, a, b):
        if a.ndim < 1 or b.ndim < 1 or a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} are not aligned (need at least 1-d operands "
                             "with a.shape[-1] == b.shape[-2], or b.shape[0] for a 1-d b)")
        ctx.shapes = a.shape, b.shape
        a, b = _as_matrices(a, b)
        ctx.save_for_backward(a, b)
        product = _matmul_arrays(a, b)
        ctx.product_shape = product.shape
        return product.reshape(_without_vector_axes(product.shape, *(len(s) == 1 for s in ctx.shapes)))

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_arrays
        grad = grad.reshape(ctx.product_shape)
        need_a, need_b = ctx.needs_input_grad
        a_shape, b_shape = ctx.shapes
        grad_a = unbroadcast(_matmul_arrays(grad, b.swapaxes(-1, -2)), a.shape).reshape(a_shape) if need_a else None
        grad_b = unbroadcast(_matmul_arrays(a.swapaxes(-1, -2), grad), b.shape).reshape(b_shape) if need_b else None
        return grad_a, grad_b
