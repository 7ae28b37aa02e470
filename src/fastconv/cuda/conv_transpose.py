"""conv_transpose2d on CUDA: fastconv._C's conv_transpose2d_output_shape, conv_transpose2d_forward
and conv_transpose2d_backward, with their signatures, for CuPy arrays.

As on the CPU (csrc/conv_transpose/cpu/conv_transpose.cpp), a transposed convolution of x with w
is the input gradient of the equivalent conv2d, whose output gradient is x; so each kernel is one
of fastconv.cuda.conv's: the forward runs conv2d's input gradient (a GEMM, then col2im's gather),
the input gradient conv2d's forward with the algorithm asked for, the weight gradient conv2d's
weight gradient with x and grad_output in swapped roles. The bias and its gradient are a
broadcast add and a channel sum on the device. The arguments are checked by fastconv._C's rules,
with its messages, before any launch.
"""
from fastconv import _C
from fastconv.cuda import _kernel_args as args
from fastconv.cuda import conv

conv_transpose2d_output_shape = _C.conv_transpose2d_output_shape


def _equivalent_conv2d(stride, padding, output_padding, dilation, groups):
    """conv2d's (stride, pad_begin, pad_end, dilation, groups): output_padding rows lie past the
    equivalent convolution's last window, so they shorten its end padding."""
    pad_end = tuple(p - o for p, o in zip(padding, output_padding))
    return stride, tuple(padding), pad_end, dilation, groups


def _checked(x, w, *params):
    """(input, weight, the output shape of conv_transpose2d) after fastconv._C's checks."""
    x = args.float_input(x, "input")
    w = args.float_input(w, "weight", x.dtype)
    return x, w, conv_transpose2d_output_shape(tuple(x.shape), tuple(w.shape), *params)


def conv_transpose2d_forward(input, weight, bias, out, stride, padding, output_padding, dilation, groups, algo):
    params = (stride, padding, output_padding, dilation, groups)
    x, w, shape = _checked(input, weight, *params)
    args.output(out, "out", tuple(shape), x.dtype)
    b = args.vector_input(bias, "bias", shape[1], x.dtype)
    conv.conv2d_backward_input(x, w, out, *_equivalent_conv2d(*params), algo=algo)
    if b is not None:
        out += b.reshape(1, -1, 1, 1)


def conv_transpose2d_backward(input, weight, grad_output, grad_input, grad_weight, grad_bias, stride, padding,
                              output_padding, dilation, groups, input_algo, weight_algo):
    params = (stride, padding, output_padding, dilation, groups)
    x, w, shape = _checked(input, weight, *params)
    dy = args.float_input(grad_output, "grad_output", x.dtype)
    if tuple(dy.shape) != tuple(shape):
        raise ValueError(f"grad_output: expected shape {tuple(shape)}, got {tuple(dy.shape)}")
    geometry = _equivalent_conv2d(*params)
    if grad_input is not None:
        conv.conv2d_forward(dy, w, None, grad_input, *geometry, algo=input_algo)
    if grad_weight is not None:
        conv.conv2d_backward_weight(dy, x, grad_weight, None, *geometry, algo=weight_algo)
    if grad_bias is not None:
        args.output(grad_bias, "grad_bias", (shape[1],), x.dtype)
        grad_bias[...] = dy.sum(axis=(0, 2, 3))
