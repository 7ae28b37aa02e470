"""conv2d and its gradients, with torch.nn.functional.conv2d's argument rules.

`conv2d_input` and `conv2d_weight` mirror torch.nn.grad.conv2d_input / conv2d_weight.
"""
import numpy as np

from fastconv import _C
from fastconv.ops import conv_algo
from fastconv.ops._checks import check_ndim, float_array, same_dtype


def _pair(value, name):
    """An int or a pair of ints -> (int, int), as PyTorch accepts them."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return (int(value), int(value))
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value
    ):
        return (int(value[0]), int(value[1]))
    raise TypeError(f"{name}: expected an int or a pair of ints, got {value!r}")


def conv2d_arguments(weight_shape, stride, padding, dilation, groups):
    """Normalise conv2d's arguments to the C++ form: stride, pad_begin, pad_end, dilation, groups."""
    stride, dilation = _pair(stride, "stride"), _pair(dilation, "dilation")
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)):
        raise TypeError(f"groups: expected an int, got {groups!r}")
    for name, pair in (("stride", stride), ("dilation", dilation)):
        if min(pair) < 1:
            raise ValueError(f"{name}: must be >= 1, got {pair}")
    if groups < 1:
        raise ValueError(f"groups: must be >= 1, got {groups}")
    if isinstance(padding, str):
        if padding == "valid":
            return stride, (0, 0), (0, 0), dilation, int(groups)
        if padding != "same":
            raise ValueError(f"padding: expected 'same', 'valid', an int or a pair, got {padding!r}")
        if stride != (1, 1):
            raise ValueError("padding='same' is not supported for strided convolutions")
        # PyTorch puts the odd extra row/column of an even kernel at the end.
        total = [d * (k - 1) for d, k in zip(dilation, weight_shape[2:])]
        begin = tuple(t // 2 for t in total)
        end = tuple(t - b for t, b in zip(total, begin))
        return stride, begin, end, dilation, int(groups)
    pad = _pair(padding, "padding")
    if min(pad) < 0:
        raise ValueError(f"padding: must be >= 0, got {pad}")
    return stride, pad, pad, dilation, int(groups)


def _prepare(arrays, layouts):
    """Float, same-dtype, C-contiguous 4-d arrays (non-contiguous views are copied once)."""
    out = {n: float_array(a, n) for n, a in arrays.items()}
    same_dtype(out)
    for name, a in out.items():
        check_ndim(a, 4, name, layouts[name])
    return [np.ascontiguousarray(a) for a in out.values()]


def _bias_array(bias, dtype, out_channels):
    if bias is None:
        return None
    bias = np.ascontiguousarray(float_array(bias, "bias"))
    if bias.dtype != dtype:
        raise TypeError(f"bias: dtype {bias.dtype} does not match input's {dtype}")
    if bias.shape != (out_channels,):
        raise ValueError(f"bias: expected shape ({out_channels},), got {bias.shape}")
    return bias


def _algorithm(algo, direction, run, input_shape, weight_shape, args, dtype):
    """`algo` as given (checked against the build's list), or the per-shape choice for 'auto'."""
    if algo == "auto":
        return conv_algo.resolve(direction, run, input_shape, weight_shape, args, dtype)
    if algo not in conv_algo.algorithms():
        raise ValueError(f"algo: expected 'auto' or one of {conv_algo.algorithms()}, got {algo!r}")
    return algo


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, algo="auto", relu=False):
    """2-d cross-correlation of an NCHW batch, as torch.nn.functional.conv2d.

    input (N, C, H, W), weight (K, C/groups, R, S), bias (K,) or None -> (N, K, P, Q).
    algo: 'auto' (per-shape choice, see ops.conv_algo) or one of ops.conv_algo.algorithms().
    relu: apply ReLU to the output inside the kernel (fused epilogue).
    """
    x, w = _prepare({"input": input, "weight": weight},
                    {"input": "(N, C, H, W)", "weight": "(K, C/groups, R, S)"})
    args = conv2d_arguments(w.shape, stride, padding, dilation, groups)
    b = _bias_array(bias, x.dtype, w.shape[0])
    y = np.empty(_C.conv2d_output_shape(x.shape, w.shape, *args), dtype=x.dtype)
    run = lambda a: _C.conv2d_forward(x, w, b, y, *args, a, bool(relu))
    run(_algorithm(algo, "forward", run, x.shape, w.shape, args, x.dtype))
    return y


def _shape4(shape, name):
    shape = tuple(int(s) for s in shape)
    if len(shape) != 4:
        raise ValueError(f"{name}: expected 4 sizes (N, C, H, W), got {shape}")
    return shape


def conv2d_input(input_size, weight, grad_output, stride=1, padding=0, dilation=1, groups=1, *, algo="auto"):
    """Gradient of conv2d with respect to its input (torch.nn.grad.conv2d_input)."""
    w, dy = _prepare({"weight": weight, "grad_output": grad_output},
                     {"weight": "(K, C/groups, R, S)", "grad_output": "(N, K, P, Q)"})
    args = conv2d_arguments(w.shape, stride, padding, dilation, groups)
    dx = np.empty(_shape4(input_size, "input_size"), dtype=w.dtype)
    run = lambda a: _C.conv2d_backward_input(dy, w, dx, *args, a)
    run(_algorithm(algo, "input", run, dx.shape, w.shape, args, w.dtype))
    return dx


def conv2d_weight(input, weight_size, grad_output, stride=1, padding=0, dilation=1, groups=1, *, algo="auto"):
    """Gradient of conv2d with respect to its weight (torch.nn.grad.conv2d_weight)."""
    x, dy = _prepare({"input": input, "grad_output": grad_output},
                     {"input": "(N, C, H, W)", "grad_output": "(N, K, P, Q)"})
    weight_size = _shape4(weight_size, "weight_size")
    args = conv2d_arguments(weight_size, stride, padding, dilation, groups)
    dw = np.empty(weight_size, dtype=x.dtype)
    run = lambda a: _C.conv2d_backward_weight(x, dy, dw, None, *args, a)
    run(_algorithm(algo, "weight", run, x.shape, dw.shape, args, x.dtype))
    return dw


def conv2d_backward(input, weight, grad_output, stride=1, padding=0, dilation=1, groups=1,
                    needs_bias=True, *, algo="auto"):
    """(grad_input, grad_weight, grad_bias) of conv2d in one call; grad_bias is None unless asked."""
    x, w, dy = _prepare({"input": input, "weight": weight, "grad_output": grad_output},
                        {"input": "(N, C, H, W)", "weight": "(K, C/groups, R, S)", "grad_output": "(N, K, P, Q)"})
    args = conv2d_arguments(w.shape, stride, padding, dilation, groups)
    dx, dw = np.empty_like(x), np.empty_like(w)
    db = np.empty(w.shape[0], dtype=w.dtype) if needs_bias else None
    run_input = lambda a: _C.conv2d_backward_input(dy, w, dx, *args, a)
    run_weight = lambda a: _C.conv2d_backward_weight(x, dy, dw, db, *args, a)
    run_input(_algorithm(algo, "input", run_input, x.shape, w.shape, args, x.dtype))
    run_weight(_algorithm(algo, "weight", run_weight, x.shape, w.shape, args, x.dtype))
    return dx, dw, db
