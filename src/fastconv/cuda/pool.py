"""2-d pooling on CUDA (csrc/pool/cuda/pool.cu): fastconv._C's max_pool2d, avg_pool2d and
adaptive_avg_pool2d kernels, forward and backward, with their arguments and rules, for CuPy
arrays. The window is checked by fastconv._C's own rules (pool2d_output_shape, which reads no
array) before any launch."""
import numpy as np

from fastconv import _C
from fastconv.cuda import _kernel_args as args
from fastconv.cuda import loader
from fastconv.ops._checks import contiguous

pool2d_output_shape = _C.pool2d_output_shape


def _window_sizes(input_shape, output_shape, kernel, stride, padding, dilation):
    """The 12 sizes of the kernels' WindowGeometry: H, W, P, Q, then the window's pairs."""
    return (*input_shape[2:], *output_shape[2:], *kernel, *stride, *padding, *dilation)


def _windowed(input_shape, kernel, stride, padding, dilation, ceil_mode):
    """The output shape, after fastconv._C's checks of the window (ValueError naming the argument)."""
    return tuple(_C.pool2d_output_shape(tuple(input_shape), kernel, stride, padding, dilation, bool(ceil_mode)))


def max_pool2d_forward(input, out, indices, kernel_size, stride, padding, dilation, ceil_mode):
    x = args.float_input(input, "input")
    shape = _windowed(args.nchw_shape(x, "input"), kernel_size, stride, padding, dilation, ceil_mode)
    args.output(out, "out", shape, x.dtype)
    idx = args.optional_output(indices, "indices", shape, np.dtype(np.int64))
    args.launch("pool", "max_pool2d_forward", out.size,
                _window_sizes(x.shape, shape, kernel_size, stride, padding, dilation), (x, out, idx))


def _same_batch_and_channels(smaller, smaller_name, larger, larger_name):
    if tuple(smaller.shape[:2]) != tuple(larger.shape[:2]):
        raise ValueError(f"{larger_name}: batch and channels must match {smaller_name}'s, got "
                         f"{tuple(larger.shape)} for {smaller_name} {tuple(smaller.shape)}")


def max_pool2d_backward(grad_output, indices, grad_input):
    dy = args.float_input(grad_output, "grad_output")
    out_shape = args.nchw_shape(dy, "grad_output")
    in_shape = args.nchw_shape(grad_input, "grad_input")
    _same_batch_and_channels(dy, "grad_output", grad_input, "grad_input")
    if indices.dtype != np.int64 or tuple(indices.shape) != out_shape:
        raise ValueError(f"indices: expected an int64 array of shape {out_shape}, got {indices.dtype} "
                         f"{tuple(indices.shape)}")
    args.output(grad_input, "grad_input", in_shape, dy.dtype)
    grad_input.fill(0)
    args.launch("pool", "max_pool2d_backward", dy.size, (in_shape[2] * in_shape[3], out_shape[2] * out_shape[3]),
                (dy, contiguous(indices), grad_input))


def _avg_launch(op, count, sizes, count_include_pad, divisor_override, source, target):
    """The avg_pool2d kernels take (count, window sizes, count_include_pad, divisor, from, to)."""
    loader.launch(args.kernel("pool", op, source.dtype), count,
                  (*args.int64s(count, *sizes), args.flag(count_include_pad), np.int64(divisor_override), source,
                   target))


def avg_pool2d_forward(input, out, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    x = args.float_input(input, "input")
    shape = _windowed(args.nchw_shape(x, "input"), kernel_size, stride, padding, (1, 1), ceil_mode)
    args.output(out, "out", shape, x.dtype)
    _avg_launch("avg_pool2d_forward", out.size, _window_sizes(x.shape, shape, kernel_size, stride, padding, (1, 1)),
                count_include_pad, divisor_override, x, out)


def avg_pool2d_backward(grad_output, grad_input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                        divisor_override):
    dy = args.float_input(grad_output, "grad_output")
    in_shape = args.nchw_shape(grad_input, "grad_input")
    shape = _windowed(in_shape, kernel_size, stride, padding, (1, 1), ceil_mode)
    if tuple(dy.shape) != shape:
        raise ValueError(f"grad_output: expected shape {shape}, got {tuple(dy.shape)}")
    args.output(grad_input, "grad_input", in_shape, dy.dtype)
    _avg_launch("avg_pool2d_backward", grad_input.size,
                _window_sizes(in_shape, shape, kernel_size, stride, padding, (1, 1)), count_include_pad,
                divisor_override, dy, grad_input)


def _adaptive_sizes(input_shape, output_shape):
    """H, W, P, Q after fastconv._C's rules for adaptive pooling (sizes >= 1, (P + 1) * H in int64)."""
    h, w, p, q = (*input_shape[2:], *output_shape[2:])
    for size, name in ((p, "output_size"), (q, "output_size")):
        if size < 1:
            raise ValueError(f"{name}: must be >= 1, got {size}")
    for size, axis in ((h, "height"), (w, "width")):
        if size < 1:
            raise ValueError(f"input: {axis} must be >= 1 for adaptive pooling")
    if max(h * p, w * q) >= 2**63:
        raise ValueError("output_size: output size * input size overflows int64")
    return h, w, p, q


def adaptive_avg_pool2d_forward(input, out):
    x = args.float_input(input, "input")
    in_shape, out_shape = args.nchw_shape(x, "input"), args.nchw_shape(out, "out")
    _same_batch_and_channels(out, "out", x, "input")
    args.output(out, "out", out_shape, x.dtype)
    args.launch("pool", "adaptive_avg_pool2d_forward", out.size, _adaptive_sizes(in_shape, out_shape), (x, out))


def adaptive_avg_pool2d_backward(grad_output, grad_input):
    dy = args.float_input(grad_output, "grad_output")
    out_shape, in_shape = args.nchw_shape(dy, "grad_output"), args.nchw_shape(grad_input, "grad_input")
    _same_batch_and_channels(dy, "grad_output", grad_input, "grad_input")
    args.output(grad_input, "grad_input", in_shape, dy.dtype)
    args.launch("pool", "adaptive_avg_pool2d_backward", grad_input.size, _adaptive_sizes(in_shape, out_shape),
                (dy, grad_input))
