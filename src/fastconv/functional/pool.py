"""Max, average and adaptive average pooling: the compiled kernels of fastconv.ops. max_pool2d,
avg_pool2d and adaptive_avg_pool2d take an unbatched (C, H, W) input too, as PyTorch does. A
channels_last input gives a channels_last output, and its gradient is channels_last too."""
from typing import Optional, Sequence, Tuple, Union

from fastconv._typing import IntPair
from fastconv import ops
from fastconv.autograd import Function, Tensor
from fastconv.functional._unbatched import run_batched
from fastconv.ops._checks import is_channels_last


class MaxPool2d(Function):
    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices=False):
        y, indices = ops.max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices=True)
        ctx.input_shape, ctx.channels_last = x.shape, is_channels_last(x)
        ctx.save_for_backward(indices)
        return (y, indices) if return_indices else y

    @staticmethod
    def backward(ctx, grad, grad_indices=None):
        (indices,) = ctx.saved_arrays
        return ops.max_pool2d_backward(grad, ctx.input_shape, indices, check_indices=False,
                                       channels_last=ctx.channels_last)


def _max_pool2d_with_indices(input, kernel_size, stride, padding, dilation, ceil_mode):
    y, indices = MaxPool2d.apply(input, kernel_size, stride, padding, dilation, ceil_mode, True)
    return y, Tensor(indices.data)  # the indices carry no gradient, as in PyTorch


def max_pool2d(input: Tensor, kernel_size: IntPair, stride: Optional[IntPair] = None, padding: IntPair = 0,
               dilation: IntPair = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> Union[Tensor, Tuple[Tensor, Tensor]]:
    """torch.nn.functional.max_pool2d; with return_indices, (output, int64 indices h*W+w per plane)."""
    if return_indices:
        return run_batched(_max_pool2d_with_indices, input, kernel_size, stride, padding, dilation, ceil_mode)
    return run_batched(MaxPool2d.apply, input, kernel_size, stride, padding, dilation, ceil_mode)


class AvgPool2d(Function):
    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override=None):
        ctx.input_shape, ctx.channels_last = x.shape, is_channels_last(x)
        ctx.args = (kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
        return ops.avg_pool2d(x, *ctx.args)

    @staticmethod
    def backward(ctx, grad):
        return ops.avg_pool2d_backward(grad, ctx.input_shape, *ctx.args, channels_last=ctx.channels_last)


def avg_pool2d(input: Tensor, kernel_size: IntPair, stride: Optional[IntPair] = None, padding: IntPair = 0,
               ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: Optional[int] = None) -> Tensor:
    """torch.nn.functional.avg_pool2d."""
    return run_batched(AvgPool2d.apply, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                       divisor_override)


class AdaptiveAvgPool2d(Function):
    @staticmethod
    def forward(ctx, x, output_size):
        ctx.input_shape, ctx.channels_last = x.shape, is_channels_last(x)
        return ops.adaptive_avg_pool2d(x, output_size)

    @staticmethod
    def backward(ctx, grad):
        return ops.adaptive_avg_pool2d_backward(grad, ctx.input_shape, channels_last=ctx.channels_last)


def adaptive_avg_pool2d(input: Tensor, output_size: Union[int, Sequence[Optional[int]]]) -> Tensor:
    """torch.nn.functional.adaptive_avg_pool2d."""
    return run_batched(AdaptiveAvgPool2d.apply, input, output_size)
