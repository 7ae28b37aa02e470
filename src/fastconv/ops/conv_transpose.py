"""conv_transpose2d and its gradients, with torch.nn.functional.conv_transpose2d's argument rules.

The kernels are conv2d's, run on the equivalent convolution (csrc/conv/conv_transpose.cpp).
"""
import numpy as np

from fastconv import _C
from fastconv.ops._checks import int_pair
from fastconv.ops.conv import _bias_array, _prepare

_LAYOUTS = {"input": "(N, C_in, H, W)", "weight": "(C_in, C_out/groups, R, S)", "grad_output": "(N, C_out, H_out, W_out)"}


def conv_transpose2d_arguments(stride, padding, output_padding, groups, dilation):
    """Normalise to the C++ form: stride, padding, output_padding, dilation, groups (ranges are
    checked in C++, which names the argument)."""
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)):
        raise TypeError(f"groups: expected an int, got {groups!r}")
    return (int_pair(stride, "stride"), int_pair(padding, "padding"), int_pair(output_padding, "output_padding"),
            int_pair(dilation, "dilation"), int(groups))


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Transposed 2-d convolution of an NCHW batch, as torch.nn.functional.conv_transpose2d.

    input (N, C_in, H, W), weight (C_in, C_out/groups, R, S), bias (C_out,) or None ->
    (N, C_out, (H-1)*stride - 2*padding + dilation*(R-1) + output_padding + 1, ...).
    """
    x, w = _prepare({"input": input, "weight": weight}, _LAYOUTS)
    args = conv_transpose2d_arguments(stride, padding, output_padding, groups, dilation)
    y = np.empty(_C.conv_transpose2d_output_shape(x.shape, w.shape, *args), dtype=x.dtype)
    b = _bias_array(bias, x.dtype, y.shape[1])
    _C.conv_transpose2d_forward(x, w, b, y, *args)
    return y


def conv_transpose2d_backward(input, weight, grad_output, stride=1, padding=0, output_padding=0, groups=1,
                              dilation=1, needs_bias=True):
    """(grad_input, grad_weight, grad_bias) of conv_transpose2d; grad_bias is None unless asked."""
    x, w, dy = _prepare({"input": input, "weight": weight, "grad_output": grad_output}, _LAYOUTS)
    args = conv_transpose2d_arguments(stride, padding, output_padding, groups, dilation)
    dx, dw = np.empty_like(x), np.empty_like(w)
    db = np.empty(dy.shape[1], dtype=w.dtype) if needs_bias else None
    _C.conv_transpose2d_backward(x, w, dy, dx, dw, db, *args)
    return dx, dw, db
