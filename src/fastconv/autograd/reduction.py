"""Reductions over axes (sum, max); mean is a sum scaled in Tensor.mean."""
import numpy as np

from fastconv import backend
from fastconv.autograd.function import Function


def normalize_axes(axis, ndim):
    """None, an int or a sequence of ints (negative allowed) -> a sorted tuple of axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    for a in axes:
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"axis {a} is out of range for a tensor with {ndim} dimensions")
    return tuple(sorted(a % max(ndim, 1) for a in axes))


def _expand_like(grad, axes, keepdims, shape):
    """grad of a reduced tensor, broadcast back over the reduced axes."""
    xp = backend.array_module(grad)
    if not keepdims:
        grad = xp.expand_dims(grad, axes)
    return xp.broadcast_to(grad, shape)


class Sum(Function):
    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        ctx.axes, ctx.keepdims, ctx.shape = normalize_axes(axis, x.ndim), keepdims, x.shape
        return x.sum(axis=ctx.axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad):
        return _expand_like(grad, ctx.axes, ctx.keepdims, ctx.shape)


class Max(Function):
    """Ties share the gradient equally (as torch.amax does)."""

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        ctx.axes, ctx.keepdims = normalize_axes(axis, x.ndim), keepdims
        out = x.max(axis=ctx.axes, keepdims=True)
        ctx.save_for_backward(x == out)
        return out if keepdims else out.squeeze(axis=ctx.axes)

    @staticmethod
    def backward(ctx, grad):
        (is_max,) = ctx.saved_arrays
        share = (is_max / is_max.sum(axis=ctx.axes, keepdims=True)).astype(grad.dtype)
        return _expand_like(grad, ctx.axes, ctx.keepdims, is_max.shape) * share
