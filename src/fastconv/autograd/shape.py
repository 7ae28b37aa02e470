"""Views and rearrangements: reshape, permute, indexing, concatenation, a copy to another device."""
from itertools import accumulate

import numpy as np

from fastconv import backend
from fastconv.autograd.function import Function


class Reshape(Function):
    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        try:
            return x.reshape(shape)
        except ValueError:
            raise ValueError(f"reshape: a tensor of shape {x.shape} ({x.size} elements) "
                             f"cannot be viewed as shape {tuple(shape)}") from None

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.shape)


class Permute(Function):
    @staticmethod
    def forward(ctx, x, dims):
        if sorted(d % x.ndim for d in dims) != list(range(x.ndim)):
            raise ValueError(f"permute: {tuple(dims)} is not a permutation of the axes of shape {x.shape}")
        ctx.inverse = sorted(range(x.ndim), key=lambda axis: dims[axis] % x.ndim)
        return x.transpose(dims)

    @staticmethod
    def backward(ctx, grad):
        return grad.transpose(ctx.inverse)


def _is_basic_index(index):
    """Ints, slices, None and Ellipsis select each element at most once (no scatter-add needed)."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(p is None or p is Ellipsis or isinstance(p, (int, np.integer, slice)) for p in parts)


class GetItem(Function):
    @staticmethod
    def forward(ctx, x, index):
        ctx.shape, ctx.index = x.shape, index
        return x[index]

    @staticmethod
    def backward(ctx, grad):
        xp = backend.array_module(grad)
        full = xp.zeros(ctx.shape, dtype=grad.dtype)
        if _is_basic_index(ctx.index):
            full[ctx.index] = grad
        else:  # integer arrays may repeat an element: each use adds its gradient
            xp.add.at(full, ctx.index, grad)
        return full, None


class Cat(Function):
    @staticmethod
    def forward(ctx, *arrays, axis=0):
        first = arrays[0]
        axis = axis % first.ndim
        for a in arrays[1:]:
            if a.ndim != first.ndim or any(
                    n != m for d, (n, m) in enumerate(zip(a.shape, first.shape)) if d != axis):
                raise ValueError(f"cat: shapes {first.shape} and {a.shape} differ outside dim {axis}")
        ctx.axis = axis
        ctx.boundaries = list(accumulate(a.shape[axis] for a in arrays))[:-1]
        return backend.array_module(*arrays).concatenate(arrays, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        return tuple(backend.array_module(grad).split(grad, ctx.boundaries, axis=ctx.axis))


class Split(Function):
    """Several outputs from one node: backward concatenates their gradients in one pass (slicing
    each piece with GetItem would allocate a full-size gradient per piece)."""

    @staticmethod
    def forward(ctx, x, sizes, axis):
        ctx.axis = axis
        return tuple(backend.array_module(x).split(x, list(accumulate(sizes))[:-1], axis=axis))

    @staticmethod
    def backward(ctx, *grads):
        return backend.array_module(*grads).concatenate(grads, axis=ctx.axis)


class ToDevice(Function):
    """The same values on another device; the gradient goes back to the input's device."""

    @staticmethod
    def forward(ctx, x, device):
        ctx.device = backend.device_of(x)
        return backend.to_device(x, device)

    @staticmethod
    def backward(ctx, grad):
        return backend.to_device(grad, ctx.device), None


def cat(tensors, dim=0):
    """Concatenates tensors along an existing dim (torch.cat)."""
    return Cat.apply(*tensors, axis=dim)


def stack(tensors, dim=0):
    """Joins same-shaped tensors along a new dim (torch.stack)."""
    return cat([t.unsqueeze(dim) for t in tensors], dim)


def split(tensor, split_size_or_sections, dim=0):
    """Pieces of `tensor` along dim: of size split_size_or_sections (the last may be smaller),
    or of the listed sizes, which must add up to the dim's size (torch.split)."""
    length = tensor.shape[dim]
    if isinstance(split_size_or_sections, (int, np.integer)):
        sizes = [min(split_size_or_sections, length - s) for s in range(0, length, split_size_or_sections)]
    else:
        sizes = list(split_size_or_sections)
        if sum(sizes) != length:
            raise ValueError(f"split: sections {sizes} do not add up to {length}, "
                             f"the size of dim {dim} of shape {tensor.shape}")
    return list(Split.apply(tensor, sizes, dim))


def unbind(tensor, dim=0):
    """The slices of `tensor` along dim, that dim removed (torch.unbind), e.g. an RNN's steps."""
    return [piece.squeeze(dim) for piece in split(tensor, 1, dim)]
