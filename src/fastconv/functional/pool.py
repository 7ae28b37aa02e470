"""Max, average and adaptive average pooling: the compiled kernels of fastconv.ops."""
from fastconv import ops
from fastconv.autograd import Function


class MaxPool2d(Function):
    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, dilation, ceil_mode):
        y, indices = ops.max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices=True)
        ctx.input_shape = x.shape
        ctx.save_for_backward(indices)
        return y

    @staticmethod
    def backward(ctx, grad):
        (indices,) = ctx.saved_arrays
        return ops.max_pool2d_backward(grad, ctx.input_shape, indices)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    return MaxPool2d.apply(input, kernel_size, stride, padding, dilation, ceil_mode)


class AvgPool2d(Function):
    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, ceil_mode, count_include_pad):
        ctx.input_shape, ctx.args = x.shape, (kernel_size, stride, padding, ceil_mode, count_include_pad)
        return ops.avg_pool2d(x, *ctx.args)

    @staticmethod
    def backward(ctx, grad):
        return ops.avg_pool2d_backward(grad, ctx.input_shape, *ctx.args)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    return AvgPool2d.apply(input, kernel_size, stride, padding, ceil_mode, count_include_pad)


class AdaptiveAvgPool2d(Function):
    @staticmethod
    def forward(ctx, x, output_size):
        ctx.input_shape = x.shape
        return ops.adaptive_avg_pool2d(x, output_size)

    @staticmethod
    def backward(ctx, grad):
        return ops.adaptive_avg_pool2d_backward(grad, ctx.input_shape)


def adaptive_avg_pool2d(input, output_size):
    return AdaptiveAvgPool2d.apply(input, output_size)
