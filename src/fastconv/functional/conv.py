"""conv2d as a Function over the compiled kernels of fastconv.ops."""
from typing import Optional, Union

from fastconv._typing import IntPair
from fastconv import ops
from fastconv.autograd import Function, Tensor
from fastconv.functional._unbatched import run_batched


class Conv2d(Function):
    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation, groups, algo):
        ctx.args = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, algo=algo)
        ctx.save_for_backward(x, weight)
        return ops.conv2d(x, weight, bias=bias, **ctx.args)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_arrays
        need_x, need_weight, need_bias = ctx.needs_input_grad[:3]
        if need_x:
            return ops.conv2d_backward(x, weight, grad, **ctx.args, needs_bias=need_bias)
        # e.g. the first layer: skip the input gradient, about half of the backward's work
        grad_weight = ops.conv2d_weight(x, weight.shape, grad, **ctx.args) if need_weight else None
        return None, grad_weight, grad.sum(axis=(0, 2, 3)) if need_bias else None


def conv2d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride: IntPair = 1,
           padding: Union[str, IntPair] = 0, dilation: IntPair = 1, groups: int = 1, *, algo: str = "auto") -> Tensor:
    """torch.nn.functional.conv2d. algo picks the kernels of the forward and of both gradients:
    'auto' (per shape, see fastconv.ops.conv_algo), 'winograd' or one of ops.conv_algo.algorithms().
    An unbatched (C, H, W) input gives a (C_out, H_out, W_out) output, as in PyTorch."""
    return run_batched(Conv2d.apply, input, weight, bias, stride, padding, dilation, groups, algo)
