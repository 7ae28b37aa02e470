"""batch_norm over the fused kernel of fastconv.ops (optionally with a residual add and a ReLU)."""
from typing import Optional

from fastconv import ops
from fastconv.autograd import Function, Tensor


class BatchNorm(Function):
    """relu?(batch_norm(x) + residual?) over every axis but the channel axis 1: (N, C), (N, C, L),
    (N, C, H, W) or (N, C, D, H, W). The compiled kernel works on (N, C, H, W); lower ranks are
    viewed as such, higher ones as (N, C, D*H*W, 1).
    The residual add and the ReLU run inside the normalising pass, and the backward reads the
    ReLU mask from the saved output: no intermediate array in either direction."""

    @staticmethod
    def forward(ctx, x, running_mean, running_var, weight, bias, residual, training, momentum, eps, relu):
        as_4d = x.reshape(x.shape + (1,) * (4 - x.ndim) if x.ndim <= 4 else x.shape[:2] + (-1, 1))
        z = None if residual is None else residual.reshape(as_4d.shape)
        y, mean, invstd = ops.batch_norm(as_4d, running_mean, running_var, weight, bias, training, momentum, eps,
                                         residual=z, relu=relu)
        ctx.training, ctx.relu = training, relu
        ctx.save_for_backward(as_4d, mean, invstd, weight, y if relu else None)
        return y.reshape(x.shape)

    @staticmethod
    def backward(ctx, grad):
        x, mean, invstd, weight, y = ctx.saved_arrays
        need_weight, need_bias, need_residual = ctx.needs_input_grad[3:6]
        grad_x, grad_weight, grad_bias, grad_residual = ops.batch_norm_backward(
            grad.reshape(x.shape), x, mean, invstd, weight, ctx.training, output=y, relu=ctx.relu,
            residual=need_residual)
        return (grad_x.reshape(grad.shape), None, None, grad_weight if need_weight else None,
                grad_bias if need_bias else None, grad_residual.reshape(grad.shape) if need_residual else None)


def batch_norm(input: Tensor, running_mean: Optional[Tensor], running_var: Optional[Tensor],
               weight: Optional[Tensor] = None, bias: Optional[Tensor] = None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5, *, residual: Optional[Tensor] = None,
               relu: bool = False) -> Tensor:
    """torch.nn.functional.batch_norm, plus two keyword-only fusions (off by default, so a
    PyTorch call means the same here): relu(batch_norm(input) + residual), the tail of a ResNet
    block, in one pass over memory. `residual` has input's shape and gets a gradient."""
    if input.ndim < 2:
        raise ValueError(f"input: expected 2D or more input (got {input.ndim}D input)")
    if not training and running_mean is None:
        raise ValueError("batch_norm: evaluation mode needs running_mean and running_var")
    if residual is not None and tuple(residual.shape) != tuple(input.shape):
        raise ValueError(f"batch_norm: residual of shape {tuple(residual.shape)} does not match input of shape "
                         f"{tuple(input.shape)}")
    return BatchNorm.apply(input, running_mean, running_var, weight, bias, residual, training, momentum, eps,
                           bool(relu))
