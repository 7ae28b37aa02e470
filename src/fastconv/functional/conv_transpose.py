"""conv_transpose2d as a Function over the compiled kernels of fastconv.ops."""
from typing import Optional

from fastconv._typing import IntPair
from fastconv import ops
from fastconv.autograd import Function, Tensor
from fastconv.functional._unbatched import run_batched


class ConvTranspose2d(Function):
    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, output_padding, groups, dilation, algo):
        ctx.args = dict(stride=stride, padding=padding, output_padding=output_padding, groups=groups,
                        dilation=dilation, algo=algo)
        ctx.save_for_backward(x, weight)
        return ops.conv_transpose2d(x, weight, bias, **ctx.args)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_arrays
        need_bias = ctx.needs_input_grad[2]
        return ops.conv_transpose2d_backward(x, weight, grad, **ctx.args, needs_bias=need_bias)


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride: IntPair = 1,
                     padding: IntPair = 0, output_padding: IntPair = 0, groups: int = 1, dilation: IntPair = 1, *,
                     algo: str = "auto") -> Tensor:
    """torch.nn.functional.conv_transpose2d: weight (C_in, C_out/groups, R, S). algo picks the
    conv2d kernels that compute it and its gradients, as in conv2d, or "subpixel" (one stride-1
    convolution per output phase, for the forward and the weight gradient; not with dilation), or
    "pixel_shuffle" (one stride-1 convolution whose channels are the phases, then a pixel shuffle:
    where kernel + output_padding - 2 padding == stride, groups and dilation 1).
    An unbatched (C_in, H, W) input gives a (C_out, H_out, W_out) output, as in PyTorch."""
    return run_batched(ConvTranspose2d.apply, input, weight, bias, stride, padding, output_padding, groups, dilation,
                       algo)
