"""conv_transpose2d and its gradients, with torch.nn.functional.conv_transpose2d's argument rules.

A transposed convolution is the input gradient of the equivalent conv2d (whose input is our
output), so each of its three kernels is one of conv2d's (csrc/conv/conv_transpose.cpp): the
forward runs conv2d's input gradient, the input gradient conv2d's forward, the weight gradient
conv2d's weight gradient. algo="auto" picks each one's algorithm as conv2d's auto does (timed
once per shape, shared with plain conv2d calls of the same geometry).
"""
import numpy as np

from fastconv import _C
from fastconv.ops import conv_algo
from fastconv.ops._alloc import empty, empty_like
from fastconv.ops._checks import int_pair
from fastconv.ops.conv import _algorithm, _bias_array, _prepare

_LAYOUTS = {"input": "(N, C_in, H, W)", "weight": "(C_in, C_out/groups, R, S)", "grad_output": "(N, C_out, H_out, W_out)"}


def conv_transpose2d_arguments(stride, padding, output_padding, groups, dilation):
    """Normalise to the C++ form: stride, padding, output_padding, dilation, groups (ranges are
    checked in C++, which names the argument)."""
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)):
        raise TypeError(f"groups: expected an int, got {groups!r}")
    return (int_pair(stride, "stride"), int_pair(padding, "padding"), int_pair(output_padding, "output_padding"),
            int_pair(dilation, "dilation"), int(groups))


def _equivalent_conv2d_arguments(args):
    """conv2d's (stride, pad_begin, pad_end, dilation, groups) for the equivalent convolution:
    output_padding rows lie past its last window, so they shorten its end padding."""
    stride, padding, output_padding, dilation, groups = args
    pad_end = tuple(p - o for p, o in zip(padding, output_padding))
    return stride, padding, pad_end, dilation, groups


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1,
                     *, algo="auto"):
    """Transposed 2-d convolution of an NCHW batch, as torch.nn.functional.conv_transpose2d.

    input (N, C_in, H, W), weight (C_in, C_out/groups, R, S), bias (C_out,) or None ->
    (N, C_out, (H-1)*stride - 2*padding + dilation*(R-1) + output_padding + 1, ...).
    algo: as conv2d's, for the conv2d input-gradient kernel that computes it.
    """
    x, w = _prepare({"input": input, "weight": weight}, _LAYOUTS)
    args = conv_transpose2d_arguments(stride, padding, output_padding, groups, dilation)
    y = empty(_C.conv_transpose2d_output_shape(x.shape, w.shape, *args), dtype=x.dtype)
    b = _bias_array(bias, x.dtype, y.shape[1])
    run = lambda a: _C.conv_transpose2d_forward(x, w, b, y, *args, a)
    run(_algorithm(algo, "input", run, y.shape, w.shape, _equivalent_conv2d_arguments(args), x.dtype))
    return y


def conv_transpose2d_backward(input, weight, grad_output, stride=1, padding=0, output_padding=0, groups=1,
                              dilation=1, needs_bias=True, *, algo="auto"):
    """(grad_input, grad_weight, grad_bias) of conv_transpose2d; grad_bias is None unless asked."""
    x, w, dy = _prepare({"input": input, "weight": weight, "grad_output": grad_output}, _LAYOUTS)
    args = conv_transpose2d_arguments(stride, padding, output_padding, groups, dilation)
    conv_args = _equivalent_conv2d_arguments(args)
    dx, dw = empty_like(x), empty_like(w)
    db = empty(dy.shape[1], dtype=w.dtype) if needs_bias else None
    # 'auto' times each kernel on its own; the call then runs both at once (two im2col kernels
    # share grad_output's columns).
    run_input = lambda a: _C.conv_transpose2d_backward(x, w, dy, dx, None, None, *args, a, "im2col")
    run_weight = lambda a: _C.conv_transpose2d_backward(x, w, dy, None, dw, None, *args, "im2col", a)
    algos = (_algorithm(algo, "forward", run_input, dy.shape, w.shape, conv_args, x.dtype),
             _algorithm(algo, "weight", run_weight, dy.shape, w.shape, conv_args, x.dtype))
    run_both = lambda pair: _C.conv_transpose2d_backward(x, w, dy, dx, dw, db, *args, *pair)
    if algo == "auto":  # the two fastest apart, or both im2col sharing their columns
        algos = conv_algo.resolve_among("forward+weight", run_both, dy.shape, w.shape, conv_args, x.dtype,
                                        [algos, ("im2col", "im2col")])
    run_both(algos)
    return dx, dw, db
