"""conv2d and its gradients, with torch.nn.functional.conv2d's argument rules.

`conv2d_input` and `conv2d_weight` mirror torch.nn.grad.conv2d_input / conv2d_weight.
"""
import functools
from typing import Optional, Tuple, Union

import numpy as np

from fastconv._typing import Array, IntPair, Shape4
from fastconv.backend import device_of, empty, empty_channels_last, empty_like, kernels
from fastconv.ops import conv_algo, conv_weight_cache
from fastconv.ops.conv_weight_cache import PreparedWeight
from fastconv.ops._checks import (an_int, check_ndim, contiguous, convolved_input, float_array, is_channels_last,
                                  same_dtype, shape4, to_channels_last, window_pair)


def conv2d_arguments(weight_shape, stride, padding, dilation, groups):
    """Normalise conv2d's arguments to the C++ form: stride, pad_begin, pad_end, dilation, groups."""
    stride, dilation = window_pair(stride, "stride"), window_pair(dilation, "dilation")
    groups = an_int(groups, "groups")
    for name, pair in (("stride", stride), ("dilation", dilation)):
        if min(pair) < 1:
            raise ValueError(f"{name}: must be >= 1, got {pair}")
    if groups < 1:
        raise ValueError(f"groups: must be >= 1, got {groups}")
    if isinstance(padding, str):
        if padding == "valid":
            return stride, (0, 0), (0, 0), dilation, groups
        if padding != "same":
            raise ValueError(f"padding: expected 'same', 'valid', an int or a pair, got {padding!r}")
        if stride != (1, 1):
            raise ValueError("padding='same' is not supported for strided convolutions")
        # PyTorch puts the odd extra row/column of an even kernel at the end.
        total = [d * (k - 1) for d, k in zip(dilation, weight_shape[2:])]
        begin = tuple(t // 2 for t in total)
        end = tuple(t - b for t, b in zip(total, begin))
        return stride, begin, end, dilation, groups
    pad = window_pair(padding, "padding")
    if min(pad) < 0:
        raise ValueError(f"padding: must be >= 0, got {pad}")
    return stride, pad, pad, dilation, groups


def _checked(arrays, layouts):
    """Float, same-dtype 4-d arrays, as given."""
    out = {n: float_array(a, n) for n, a in arrays.items()}
    same_dtype(out)
    for name, a in out.items():
        check_ndim(a, 4, name, layouts[name])
    return out


def _contiguous(arrays):
    """The arrays C-contiguous (non-contiguous views are copied once)."""
    return [contiguous(a) for a in arrays.values()]


def _prepare(arrays, layouts):
    """Float, same-dtype, C-contiguous 4-d arrays."""
    return _contiguous(_checked(arrays, layouts))


# channels_last arrays are convolved in place by their own kernels (csrc/conv/cpu/channels_last.cpp:
# direct over NHWC memory where it runs, else im2col + GEMM with the pixels as the GEMM's rows),
# which the C++ entry points run as algorithm 'im2col'. With algo='auto' each shape is timed in
# place and on NCHW copies (conv_algo.resolve_layout): the NCHW side has Winograd and FFT. With
# few channels per group the in-place GEMMs are too narrow to pay (a depthwise layer with a
# multiplier has one-channel GEMMs; with multiplier 1 it has a kernel of its own), and a call
# that names another algorithm asks for the NCHW kernels: those run on NCHW copies, the result
# copied back to channels_last.
CHANNELS_LAST_ALGO = "im2col"
_MIN_CHANNELS_PER_GROUP = 8


def _layout(activation, weight_shape, groups, algo):
    """How a call whose layout `activation` decides can run: 'nchw'; 'channels_last' (in place,
    or for algo='auto' whichever of conv_algo.LAYOUTS is faster: _run_channels_last); or
    'nchw_copy'."""
    if not is_channels_last(activation):
        return "nchw"
    per_group = min(weight_shape[0] // groups, weight_shape[1])
    depthwise = weight_shape[0] == groups and weight_shape[1] == 1  # multiplier 1: a kernel of its own
    in_place = (algo in ("auto", CHANNELS_LAST_ALGO)
                and (groups == 1 or depthwise or per_group >= _MIN_CHANNELS_PER_GROUP))
    return "channels_last" if in_place else "nchw_copy"


def _run_channels_last(layout, algo, direction, runs, input_shape, weight_shape, args, dtype):
    """Runs a channels_last call (`layout` from _layout, not 'nchw') as runs[layout](), or for
    algo='auto' in place by the timed choice between runs['channels_last'] and runs['nchw_copy']."""
    run = conv_algo.reusing(lambda chosen: runs[chosen]())
    if layout == "channels_last" and algo == "auto":
        layout = conv_algo.resolve_layout(direction, run, input_shape, weight_shape, args, dtype)
    return run(layout)


def _bias_array(bias, input, out_channels):
    if bias is None:
        return None
    bias = contiguous(float_array(bias, "bias"))
    same_dtype({"input": input, "bias": bias})
    if bias.shape != (out_channels,):
        raise ValueError(f"bias: expected shape ({out_channels},), got {bias.shape}")
    return bias


def _residual_array(residual, input, output_shape, layout):
    """conv2d's residual checked against the output it is added to, in that output's memory
    layout (NCHW, or channels_last for `layout` 'channels_last'), copied only if it is not."""
    if residual is None:
        return None
    residual = float_array(residual, "residual")
    same_dtype({"input": input, "residual": residual})
    if tuple(residual.shape) != tuple(output_shape):
        raise ValueError(f"residual: expected the output's shape {tuple(output_shape)}, got {tuple(residual.shape)}")
    return to_channels_last(residual) if layout == "channels_last" else contiguous(residual)


def _algorithm_name(lib, algo, input_shape, weight_shape, args):
    """`algo` checked against the build's list, once per call: 'winograd' as the tile size it
    picks for this shape; 'auto' as it is, for _algorithm to choose per direction."""
    if algo == "auto":
        return algo
    if algo == "winograd":
        return conv_algo.winograd_variant(input_shape, weight_shape, args)
    if algo not in conv_algo.algorithms():
        raise ValueError(f"algo: expected 'auto', 'winograd' or one of {conv_algo.algorithms()}, got {algo!r}")
    return algo


SUBPIXEL = "subpixel"


@functools.lru_cache(maxsize=4096)
def subpixel_runs(lib, input_shape, weight_shape, args):
    """Whether conv_transpose2d's subpixel kernels run this transposed convolution (args: its
    stride, padding, output_padding, dilation, groups): asked once per shape."""
    return lib.conv_transpose2d_unsupported_reason(SUBPIXEL, input_shape, weight_shape, *args) is None


@functools.lru_cache(maxsize=4096)
def _transposed_arguments(lib, input_shape, weight_shape, args):
    """The conv_transpose2d (stride, padding, output_padding, dilation, groups) whose forward of
    grad_output is this strided convolution's input gradient, and whose weight gradient (its
    input grad_output, its output's gradient the convolution's input) is the convolution's
    weight gradient; None where subpixel cannot run it (stride 1, dilation, or on a device).
    Worked out once per shape, not on every gradient call. subpixel runs it as one stride-1
    convolution per output phase, without the input gradient's col2im scatter (resnet20's 3x3/2 layer: input gradient 1.0 ms against im2col's
    1.4, weight gradient 1.2 against 1.8, 2 threads)."""
    stride, pad_begin, _, dilation, groups = args
    if stride == (1, 1) or dilation != (1, 1) or not hasattr(lib, "conv_transpose2d_unsupported_reason"):
        return None
    out = lib.conv2d_output_shape(input_shape, weight_shape, *args)
    # The transposed convolution's output is (P - 1) * stride - 2 * pad + R + output_padding.
    output_padding = tuple(h + 2 * b - r - (p - 1) * s for h, b, r, p, s in
                           zip(input_shape[2:], pad_begin, weight_shape[2:], out[2:], stride))
    if any(not 0 <= o < s for o, s in zip(output_padding, stride)):
        return None
    transposed = (stride, pad_begin, output_padding, dilation, groups)
    return transposed if subpixel_runs(lib, tuple(out), weight_shape, transposed) else None


def _gradient_algorithm(lib, algo, direction, run, input_shape, weight_shape, args, dtype, transposed):
    """_algorithm's pick for a gradient; for 'auto' with `transposed` arguments, subpixel's
    kernels are timed too."""
    if algo != "auto" or transposed is None:
        return _algorithm(lib, algo, direction, run, input_shape, weight_shape, args, dtype)
    return conv_algo.resolve(direction, run, input_shape, weight_shape, args, dtype, extra=(SUBPIXEL,))


def _input_gradient_runner(lib, w, prepared, dy, dx, args, transposed):
    """run(algo): conv2d's input gradient into dx by `algo`, or by subpixel's transposed forward."""
    def run(algo):
        if algo == SUBPIXEL:
            return lib.conv_transpose2d_forward(dy, w, None, dx, *transposed, SUBPIXEL)
        lib.conv2d_backward_input(dy, w, dx, *args, algo,
                                  _transformed(lib, w, prepared, algo, "input_gradient", dx.shape, args))
    return conv_algo.reusing(run)


def _weight_gradient_runner(lib, x, dy, dw, db, args, transposed):
    """run(algo): conv2d's weight (and bias) gradient by `algo`, or by subpixel's transposed
    weight gradient (dw serves as its weight: only the shape is read), the bias gradient then
    summed apart."""
    def run(algo):
        if algo != SUBPIXEL:
            return lib.conv2d_backward_weight(x, dy, dw, db, *args, algo)
        lib.conv_transpose2d_backward(dy, dw, x, None, dw, None, *transposed, "im2col", SUBPIXEL)
        if db is not None:  # each plane summed pairwise in its dtype, the planes in float64
            db[...] = dy.reshape(dy.shape[0], dy.shape[1], -1).sum(axis=2).sum(axis=0, dtype=np.float64)
    return conv_algo.reusing(run)


def _algorithm(lib, algo, direction, run, input_shape, weight_shape, args, dtype):
    """The algorithm of one direction: `algo` from _algorithm_name, or the per-shape choice for
    'auto' (timed, by conv_algo.resolve on the CPU or the device library's conv2d_resolve)."""
    if algo == "auto":
        resolve = getattr(lib, "conv2d_resolve", conv_algo.resolve)
        return resolve(direction, run, input_shape, weight_shape, args, dtype)
    return algo


def _weight(weight, groups):
    """(weight array, PreparedWeight or None): a PreparedWeight runs on its frozen copy."""
    if not isinstance(weight, PreparedWeight):
        return weight, None
    if weight.groups != groups:
        raise ValueError(f"weight: prepared for groups={weight.groups}, called with groups={groups}")
    return weight.weight, weight


@functools.lru_cache(maxsize=4096)
def _transform_tile(lib, algo, input_shape, weight_shape, args, use):
    """The tile size `algo`'s weight transform is made at for this shape (FFT's; 0 for the
    others), or None where `algo` cannot run the shape or its transform is not the weight's
    alone (a strided Winograd's: the kernel makes it). Per shape, not per call."""
    if lib.conv2d_unsupported_reason(algo, input_shape, weight_shape, *args) is not None:
        return None
    return lib.conv2d_weight_transform_tile(algo, input_shape, weight_shape, *args, use)


def _transformed(lib, w, prepared, algo, use, input_shape, args):
    """The transformed weight `algo` runs on (prepared, or from the cache), or None: also for a
    shape the algorithm cannot run, which the kernel then refuses with the reason. FFT's is made
    at the tile size this call's shape runs."""
    tile = _transform_tile(lib, algo, tuple(input_shape), tuple(w.shape), args, use)
    if tile is None:
        return None
    if prepared is not None:
        return prepared.transformed(algo, use, tile)
    return conv_weight_cache.transformed(lib, w, args[-1], algo, use, tile)


def _forward_in_place(lib, x, w, bias, args, relu, residual=None):
    x, w = to_channels_last(x), contiguous(w)
    y = empty_channels_last(lib.conv2d_output_shape(x.shape, w.shape, *args), x.dtype)
    lib.conv2d_forward(x, w, _bias_array(bias, x, w.shape[0]), y, *args, CHANNELS_LAST_ALGO, bool(relu), None,
                       _residual_array(residual, x, y.shape, "channels_last"))
    return y


def _input_gradient_in_place(lib, input_size, w, dy, args):
    dx = empty_channels_last(input_size, w.dtype)
    lib.conv2d_backward_input(to_channels_last(dy), contiguous(w), dx, *args, CHANNELS_LAST_ALGO, None)
    return dx


def _weight_gradient_in_place(lib, x, dy, weight_size, args, needs_bias):
    dw = empty(weight_size, x.dtype)
    db = empty(weight_size[0], x.dtype) if needs_bias else None
    lib.conv2d_backward_weight(to_channels_last(x), to_channels_last(dy), dw, db, *args, CHANNELS_LAST_ALGO)
    return dw, db


def conv2d(input: Array, weight: Union[Array, PreparedWeight], bias: Optional[Array] = None, stride: IntPair = 1,
           padding: Union[str, IntPair] = 0, dilation: IntPair = 1, groups: int = 1, *, algo: str = "auto",
           relu: bool = False, residual: Optional[Array] = None) -> Array:
    """2-d cross-correlation of an NCHW batch, as torch.nn.functional.conv2d.

    input (N, C, H, W), weight (K, C/groups, R, S), bias (K,) or None -> (N, K, P, Q).
    A channels_last input (NHWC memory, as torch's channels_last) gives a channels_last output.
    weight may be an ops.prepare_conv_weight(...) result: its transforms are reused.
    algo: 'auto' (per-shape choice, see ops.conv_algo), 'winograd' (F(4x4,3x3) or F(2x2,3x3),
    F(4x4,5x5) or F(2x2,5x5), whichever needs fewer transform points for the output; F(2x2,7x7)
    for a 7x7 kernel) or one of ops.conv_algo.algorithms().
    relu: apply ReLU to the output inside the kernel (fused epilogue).
    residual: an array of the output's shape added to it before the ReLU, out = relu(conv + bias
    + residual) (cuDNN's conv-bias-add-activation): a ResNet block's shortcut, added as each output
    is stored (im2col, implicit GEMM, Winograd, FFT) instead of in a pass over the output of its
    own (direct, depthwise and channels_last add it in a pass after the kernel). Not
    differentiated: ops are arrays in, arrays out.
    """
    lib = kernels(input, weight, bias, residual, op="conv2d")
    weight, prepared = _weight(weight, groups)
    arrays = _checked({"input": input, "weight": weight}, {"input": "(N, C, H, W)", "weight": "(K, C/groups, R, S)"})
    convolved_input(arrays["input"])
    args = conv2d_arguments(arrays["weight"].shape, stride, padding, dilation, groups)
    x, w = arrays["input"], arrays["weight"]
    layout = _layout(x, w.shape, args[-1], algo)
    if layout != "nchw":
        runs = {"nchw_copy": lambda: to_channels_last(conv2d(contiguous(x), prepared or w, bias, stride, padding,
                                                             dilation, groups, algo=algo, relu=relu,
                                                             residual=None if residual is None
                                                             else contiguous(residual))),
                "channels_last": lambda: _forward_in_place(lib, x, w, bias, args, relu, residual)}
        return _run_channels_last(layout, algo, "forward", runs, x.shape, w.shape, args, x.dtype)
    x, w = _contiguous(arrays)
    b = _bias_array(bias, x, w.shape[0])
    y = empty(lib.conv2d_output_shape(x.shape, w.shape, *args), x.dtype, device_of(x))
    r = _residual_array(residual, x, y.shape, "nchw")
    algo = _algorithm_name(lib, algo, x.shape, w.shape, args)
    run = conv_algo.reusing(lambda a: lib.conv2d_forward(x, w, b, y, *args, a, bool(relu),
                                                         _transformed(lib, w, prepared, a, "forward", x.shape, args),
                                                         r))
    run(_algorithm(lib, algo, "forward", run, x.shape, w.shape, args, x.dtype))
    return y


def conv2d_input(input_size: Shape4, weight: Union[Array, PreparedWeight], grad_output: Array, stride: IntPair = 1,
                 padding: Union[str, IntPair] = 0, dilation: IntPair = 1, groups: int = 1, *,
                 algo: str = "auto") -> Array:
    """Gradient of conv2d with respect to its input (torch.nn.grad.conv2d_input), in
    grad_output's layout (channels_last for a channels_last grad_output)."""
    lib = kernels(weight, grad_output, op="conv2d_input")
    weight, prepared = _weight(weight, groups)
    arrays = _checked({"weight": weight, "grad_output": grad_output},
                      {"weight": "(K, C/groups, R, S)", "grad_output": "(N, K, P, Q)"})
    args = conv2d_arguments(arrays["weight"].shape, stride, padding, dilation, groups)
    w, dy = arrays["weight"], arrays["grad_output"]
    input_size = shape4(input_size, "input_size")
    layout = _layout(dy, w.shape, args[-1], algo)
    if layout != "nchw":
        runs = {"nchw_copy": lambda: to_channels_last(conv2d_input(input_size, prepared or w, contiguous(dy), stride,
                                                                   padding, dilation, groups, algo=algo)),
                "channels_last": lambda: _input_gradient_in_place(lib, input_size, w, dy, args)}
        return _run_channels_last(layout, algo, "input", runs, input_size, w.shape, args, w.dtype)
    w, dy = _contiguous(arrays)
    dx = empty(input_size, w.dtype, device_of(w))
    algo = _algorithm_name(lib, algo, dx.shape, w.shape, args)
    transposed = _transposed_arguments(lib, dx.shape, w.shape, args)
    run = _input_gradient_runner(lib, w, prepared, dy, dx, args, transposed)
    run(_gradient_algorithm(lib, algo, "input", run, dx.shape, w.shape, args, w.dtype, transposed))
    return dx


def conv2d_weight(input: Array, weight_size: Shape4, grad_output: Array, stride: IntPair = 1,
                  padding: Union[str, IntPair] = 0, dilation: IntPair = 1, groups: int = 1, *,
                  algo: str = "auto") -> Array:
    """Gradient of conv2d with respect to its weight (torch.nn.grad.conv2d_weight)."""
    lib = kernels(input, grad_output, op="conv2d_weight")
    arrays = _checked({"input": input, "grad_output": grad_output},
                      {"input": "(N, C, H, W)", "grad_output": "(N, K, P, Q)"})
    weight_size = shape4(weight_size, "weight_size")
    args = conv2d_arguments(weight_size, stride, padding, dilation, groups)
    x, dy = arrays["input"], arrays["grad_output"]
    layout = _layout(x, weight_size, args[-1], algo)
    if layout != "nchw":
        runs = {"nchw_copy": lambda: conv2d_weight(contiguous(x), weight_size, contiguous(dy), stride, padding,
                                                   dilation, groups, algo=algo),
                "channels_last": lambda: _weight_gradient_in_place(lib, x, dy, weight_size, args, False)[0]}
        return _run_channels_last(layout, algo, "weight", runs, x.shape, weight_size, args, x.dtype)
    x, dy = _contiguous(arrays)
    dw = empty(weight_size, x.dtype, device_of(x))
    algo = _algorithm_name(lib, algo, x.shape, dw.shape, args)
    transposed = _transposed_arguments(lib, x.shape, dw.shape, args)
    run = _weight_gradient_runner(lib, x, dy, dw, None, args, transposed)
    run(_gradient_algorithm(lib, algo, "weight", run, x.shape, dw.shape, args, x.dtype, transposed))
    return dw


def conv2d_backward(input: Array, weight: Union[Array, PreparedWeight], grad_output: Array, stride: IntPair = 1,
                    padding: Union[str, IntPair] = 0, dilation: IntPair = 1, groups: int = 1, needs_bias: bool = True,
                    *, algo: str = "auto") -> Tuple[Array, Array, Optional[Array]]:
    """(grad_input, grad_weight, grad_bias) of conv2d in one call; grad_bias is None unless asked.
    grad_input comes in input's layout (channels_last for a channels_last input)."""
    lib = kernels(input, weight, grad_output, op="conv2d_backward")
    weight, prepared = _weight(weight, groups)
    arrays = _checked({"input": input, "weight": weight, "grad_output": grad_output},
                      {"input": "(N, C, H, W)", "weight": "(K, C/groups, R, S)", "grad_output": "(N, K, P, Q)"})
    args = conv2d_arguments(arrays["weight"].shape, stride, padding, dilation, groups)
    x, w, dy = arrays["input"], arrays["weight"], arrays["grad_output"]
    layout = _layout(x, w.shape, args[-1], algo)
    if layout != "nchw":
        def on_nchw_copies():
            dx, dw, db = conv2d_backward(contiguous(x), prepared or w, contiguous(dy), stride, padding, dilation,
                                         groups, needs_bias, algo=algo)
            return to_channels_last(dx), dw, db

        runs = {"nchw_copy": on_nchw_copies,
                "channels_last": lambda: (_input_gradient_in_place(lib, x.shape, w, dy, args),
                                          *_weight_gradient_in_place(lib, x, dy, w.shape, args, needs_bias))}
        return _run_channels_last(layout, algo, "backward", runs, x.shape, w.shape, args, x.dtype)
    x, w, dy = _contiguous(arrays)
    dw = empty_like(w)
    db = empty(w.shape[0], w.dtype, device_of(w)) if needs_bias else None
    dx = empty_like(x)
    algo = _algorithm_name(lib, algo, x.shape, w.shape, args)
    transposed = _transposed_arguments(lib, x.shape, w.shape, args)
    run_input = _input_gradient_runner(lib, w, prepared, dy, dx, args, transposed)
    run_weight = _weight_gradient_runner(lib, x, dy, dw, db, args, transposed)
    trials = conv_algo.trials()
    input_algo = _gradient_algorithm(lib, algo, "input", run_input, x.shape, w.shape, args, x.dtype, transposed)
    weight_algo = _gradient_algorithm(lib, algo, "weight", run_weight, x.shape, w.shape, args, x.dtype, transposed)
    if input_algo == weight_algo == "depthwise" and conv_algo.trials() == trials and hasattr(lib, "conv2d_backward"):
        # Both chosen, neither run on trial: the depthwise kernels read dy once for both (their bits).
        lib.conv2d_backward(x, w, dy, dx, dw, db, *args, "depthwise")
    else:
        run_input(input_algo)
        run_weight(weight_algo)
    return dx, dw, db
