"""linear (one GEMM call) and embedding (a row lookup)."""
from typing import Optional

from fastconv import backend, ops
from fastconv.autograd import Function, Tensor
from fastconv.autograd.tensor import array_of


class Linear(Function):
    """y = x W^T + b in one GEMM call plus an in-place bias add; x may have leading batch dims."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        if weight.ndim != 2 or x.ndim < 1 or x.shape[-1] != weight.shape[1]:
            raise ValueError(f"linear: input of shape {x.shape} does not match weight of shape "
                             f"{weight.shape} (need input.shape[-1] == weight.shape[1])")
        rows = x.reshape(-1, x.shape[-1])
        y = ops.matmul(rows, weight.T)
        if bias is not None:
            y += bias
        ctx.save_for_backward(rows, weight)
        ctx.input_shape = x.shape
        return y.reshape(x.shape[:-1] + (weight.shape[0],))

    @staticmethod
    def backward(ctx, grad):
        rows, weight = ctx.saved_arrays
        need_x, need_weight, need_bias = ctx.needs_input_grad
        grad_rows = backend.array_module(grad).ascontiguousarray(grad).reshape(-1, weight.shape[0])
        grad_x = ops.matmul(grad_rows, weight).reshape(ctx.input_shape) if need_x else None
        grad_weight = ops.matmul(grad_rows.T, rows) if need_weight else None
        return grad_x, grad_weight, grad_rows.sum(axis=0) if need_bias else None


def linear(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None) -> Tensor:
    return Linear.apply(input, weight, bias)


def embedding(input: Tensor, weight: Tensor) -> Tensor:
    """Rows of weight (num_embeddings, dim) picked by the integer array input."""
    indices = array_of(input)
    if weight.ndim != 2:
        raise ValueError(f"embedding: weight must be 2-d (num_embeddings, embedding_dim), got shape {weight.shape}")
    if indices.dtype.kind not in "iu":
        raise TypeError(f"embedding: input must hold integer indices, got dtype {indices.dtype}")
    return weight[indices]
