"""conv_transpose2d and its gradients, with torch.nn.functional.conv_transpose2d's argument rules.

A transposed convolution is the input gradient of the equivalent conv2d (whose input is our
output), so each of its three kernels can be one of conv2d's (csrc/conv_transpose/cpu/conv_transpose.cpp):
the forward runs conv2d's input gradient, the input gradient conv2d's forward, the weight gradient
conv2d's weight gradient. The forward and the weight gradient have an algorithm of their own too,
"subpixel" (csrc/conv_transpose/cpu/subpixel.cpp): stride_h x stride_w stride-1 convolutions, one
per output phase, with no products by inserted zeros and no scatter; and "pixel_shuffle"
(ops/conv_transpose_shuffle.py): the phases as the channels of one stride-1 convolution, which
Winograd runs, then a pixel shuffle. algo="auto" chooses as
conv2d's auto does, over a shape's first calls: the forward among conv2d's input-gradient
kernels and subpixel (one choice, shared with a strided conv2d's input gradient of the same
geometry where subpixel is not preferred by its fixed rule), and pixel_shuffle where it runs
(then a choice of its own); the backward each gradient's conv2d kernel, then that pair against
the pairs with shared im2col columns, subpixel's weight gradient or pixel_shuffle's gradients.
"""
import functools
from typing import Optional, Tuple

import numpy as np

from fastconv._typing import Array, IntPair
from fastconv.backend import device_of, empty, empty_like, kernels
from fastconv.ops import conv_algo, conv_transpose_shuffle
from fastconv.ops._checks import an_int, contiguous, convolved_input, to_channels_last, window_pair
from fastconv.ops.conv import (SUBPIXEL, _algorithm, _algorithm_name, _bias_array, _checked, _contiguous,
                               _forward_in_place, _input_gradient_in_place, _layout, _run_channels_last,
                               _weight_gradient_in_place, subpixel_runs)
from fastconv.ops.conv_transpose_shuffle import PIXEL_SHUFFLE

_LAYOUTS = {"input": "(N, C_in, H, W)", "weight": "(C_in, C_out/groups, R, S)", "grad_output": "(N, C_out, H_out, W_out)"}


def conv_transpose2d_arguments(stride, padding, output_padding, groups, dilation):
    """Normalise to the C++ form: stride, padding, output_padding, dilation, groups (ranges are
    checked in C++, which names the argument)."""
    groups = an_int(groups, "groups")
    return (window_pair(stride, "stride"), window_pair(padding, "padding"),
            window_pair(output_padding, "output_padding"), window_pair(dilation, "dilation"), groups)


def _equivalent_conv2d_arguments(args):
    """conv2d's (stride, pad_begin, pad_end, dilation, groups) for the equivalent convolution:
    output_padding rows lie past its last window, so they shorten its end padding."""
    stride, padding, output_padding, dilation, groups = args
    pad_end = tuple(p - o for p, o in zip(padding, output_padding))
    return stride, padding, pad_end, dilation, groups


def algorithms():
    """Every algorithm conv_transpose2d's `algo` may name: 'subpixel', 'pixel_shuffle' and conv2d's."""
    return [SUBPIXEL, PIXEL_SHUFFLE] + conv_algo.algorithms()


@functools.lru_cache(maxsize=4096)
def _shuffle_reason(lib, x_shape, w_shape, args):
    """Why pixel_shuffle cannot run this transposed convolution, or None: asked once per shape."""
    return conv_transpose_shuffle.unsupported_reason(lib, x_shape, w_shape, args)


def _algorithm_choice(lib, algo, input_shape, weight_shape, conv_args):
    """_algorithm_name's, also accepting 'subpixel' and 'pixel_shuffle' (on the CPU library, which
    has them). On a device library 'auto' is its fixed rule: the pairs timed below are timed on
    the host's clock."""
    if algo == PIXEL_SHUFFLE:
        return algo
    if algo != SUBPIXEL:
        if algo not in ("auto", "winograd", *conv_algo.algorithms()):
            raise ValueError(f"algo: expected 'auto', 'winograd' or one of {algorithms()}, got {algo!r}")
        if algo == "auto" and hasattr(lib, "conv2d_resolve"):
            return lib.conv2d_heuristic(input_shape, weight_shape, *conv_args)
        return _algorithm_name(lib, algo, input_shape, weight_shape, conv_args)
    if not hasattr(lib, "conv_transpose2d_unsupported_reason"):
        raise ValueError(f"algo: {SUBPIXEL!r} runs on the CPU only (the arrays are on a device)")
    return algo


def subpixel_first(output_shape, weight_shape, stride, groups):
    """Whether deterministic mode runs the forward and the weight gradient by subpixel rather
    than by conv2d's picks: for a strided kernel larger than its stride (each phase convolves with
    at least 2x2 taps) whose output phases are at least 16 pixels wide, with at least 16 channels
    per group each way (its GEMM tiles span 8 output channels by 32 pixels in the forward, and 32
    input channels in the weight gradient: fewer pay for padding). Measured, one thread,
    forward: 4x4/2 on 16x16 inputs 3.1 ms against implicit GEMM's 3.25, 3x3/2 0.88 against 0.93,
    5x5/3 0.36 against 0.64; but 4x4/2 on 8x8 inputs 22 ms against 15 (its phase rows of 8
    pixels leave a GEMM tile half padding), 2x2/2 (1x1 phases) 3.4 against 3.2, and at stride 1
    Winograd wins. Weight gradient: 3.1 ms against im2col's 4.0, 1.0 against 1.15, 0.41 against
    0.61; 2x2/2 3.9 against 3.4, 4x4/2 on 8x8 inputs 18 against 19."""
    strided = max(stride) > 1
    phases_have_taps = all(k > s for k, s in zip(weight_shape[2:], stride))
    channels = min(weight_shape[0] // groups, weight_shape[1])
    return strided and phases_have_taps and output_shape[3] // stride[1] >= 16 and channels >= 16


def _shuffle_runs(lib, algo, x, w, args):
    """Whether pixel_shuffle runs this call: for 'auto', where it can; pinned, where it can, else
    a ValueError with the reason."""
    if algo not in ("auto", PIXEL_SHUFFLE):
        return False
    reason = _shuffle_reason(lib, x.shape, w.shape, args)
    if reason is not None and algo == PIXEL_SHUFFLE:
        raise ValueError(f"algo='{PIXEL_SHUFFLE}' cannot run this transposed convolution: {reason}")
    return reason is None


def _forward_algorithm(lib, algo, run, x, w, y, args, conv_args, shuffle):
    """The forward's algorithm: a pinned one as it is; for 'auto', the choice among the
    equivalent conv2d's input-gradient kernels and, where they run the shape, subpixel (the
    fixed rule's pick where subpixel_first says so) and pixel_shuffle (`shuffle`: _shuffle_runs)."""
    if algo != "auto":
        return algo
    extra = (SUBPIXEL,) if subpixel_runs(lib, x.shape, w.shape, args) else ()
    extra += (PIXEL_SHUFFLE,) if shuffle else ()
    if not extra:
        return _algorithm(lib, algo, "input", run, y.shape, w.shape, conv_args, x.dtype)
    prefer = SUBPIXEL if SUBPIXEL in extra and subpixel_first(y.shape, w.shape, args[0], args[-1]) else None
    return conv_algo.resolve("input", run, y.shape, w.shape, conv_args, x.dtype, extra=extra, prefer=prefer)


def _add_bias(y, bias):
    if bias is not None:
        y += bias.reshape(1, -1, 1, 1)
    return y


def _channel_sums(a):
    """Sums over (N, H, W) per channel, in float64 as the kernels' bias gradients, in a's dtype."""
    return np.add.reduce(a, axis=(0, 2, 3), dtype=np.float64).astype(a.dtype)


def conv_transpose2d(input: Array, weight: Array, bias: Optional[Array] = None, stride: IntPair = 1,
                     padding: IntPair = 0, output_padding: IntPair = 0, groups: int = 1, dilation: IntPair = 1, *,
                     algo: str = "auto") -> Array:
    """Transposed 2-d convolution of an NCHW batch, as torch.nn.functional.conv_transpose2d.

    input (N, C_in, H, W), weight (C_in, C_out/groups, R, S), bias (C_out,) or None ->
    (N, C_out, (H-1)*stride - 2*padding + dilation*(R-1) + output_padding + 1, ...).
    algo: "subpixel" (stride_h x stride_w stride-1 convolutions, one per output phase; not
    with dilation), "pixel_shuffle" (one stride-1 convolution to the phases as channels, then a
    pixel shuffle: ops/conv_transpose_shuffle.py), one of conv2d's (its input-gradient kernel
    computes the result), or "auto" (the fastest of them for this shape, chosen over its first
    calls as conv2d's auto).
    A channels_last input (NHWC memory, as torch's channels_last) gives a channels_last output,
    as torch's does: computed in place with algo "auto" or "im2col" (auto times that against
    NCHW copies), on NCHW copies with another algorithm.
    """
    lib = kernels(input, weight, bias, op="conv_transpose2d")
    arrays = _checked({"input": input, "weight": weight}, _LAYOUTS)
    convolved_input(arrays["input"])
    args = conv_transpose2d_arguments(stride, padding, output_padding, groups, dilation)
    conv_args = _equivalent_conv2d_arguments(args)
    layout = _layout(arrays["input"], arrays["weight"].shape, groups, algo)
    if layout != "nchw":  # the equivalent conv2d's input gradient, in place (its sub-pixel phases) or on copies
        x, w = arrays["input"], contiguous(arrays["weight"])
        y_shape = lib.conv_transpose2d_output_shape(x.shape, w.shape, *args)
        runs = {"nchw_copy": lambda: to_channels_last(conv_transpose2d(contiguous(x), w, bias, stride, padding,
                                                                       output_padding, groups, dilation, algo=algo)),
                "channels_last": lambda: _add_bias(_input_gradient_in_place(lib, y_shape, w, x, conv_args),
                                                   _bias_array(bias, x, y_shape[1]))}
        return _run_channels_last(layout, algo, "transposed forward", runs, y_shape, w.shape, conv_args, x.dtype)
    x, w = _contiguous(arrays)
    y = empty(lib.conv_transpose2d_output_shape(x.shape, w.shape, *args), x.dtype, device_of(x))
    b = _bias_array(bias, x, y.shape[1])
    algo = _algorithm_choice(lib, algo, y.shape, w.shape, conv_args)
    shuffle = _shuffle_runs(lib, algo, x, w, args)  # a pinned pixel_shuffle that cannot run says why

    def run_forward(a):
        if a == PIXEL_SHUFFLE:
            return conv_transpose_shuffle.forward(lib, x, w, b, y, args)
        lib.conv_transpose2d_forward(x, w, b, y, *args, a)
    run = conv_algo.reusing(run_forward)
    run(_forward_algorithm(lib, algo, run, x, w, y, args, conv_args, shuffle))
    return y


def conv_transpose2d_backward(input: Array, weight: Array, grad_output: Array, stride: IntPair = 1,
                              padding: IntPair = 0, output_padding: IntPair = 0, groups: int = 1, dilation: IntPair = 1,
                              needs_bias: bool = True, *, algo: str = "auto") -> Tuple[Array, Array, Optional[Array]]:
    """(grad_input, grad_weight, grad_bias) of conv_transpose2d; grad_bias is None unless asked;
    grad_input in input's layout (channels_last for a channels_last input).
    algo "subpixel" runs implicit GEMM's strided convolution for the input gradient (it splits
    its input into the same stride phases) and the phases' own GEMMs for the weight gradient."""
    lib = kernels(input, weight, grad_output, op="conv_transpose2d_backward")
    arrays = _checked({"input": input, "weight": weight, "grad_output": grad_output}, _LAYOUTS)
    args = conv_transpose2d_arguments(stride, padding, output_padding, groups, dilation)
    conv_args = _equivalent_conv2d_arguments(args)
    layout = _layout(arrays["input"], arrays["weight"].shape, groups, algo)
    if layout != "nchw":  # grad_input in input's layout, channels_last
        x, w, dy = arrays["input"], contiguous(arrays["weight"]), arrays["grad_output"]

        def on_copies():
            dx, dw, db = conv_transpose2d_backward(contiguous(x), w, contiguous(dy), stride, padding, output_padding,
                                                   groups, dilation, needs_bias, algo=algo)
            return to_channels_last(dx), dw, db

        def in_place():  # the equivalent conv2d's forward and weight gradient, input and output swapped
            dx = _forward_in_place(lib, dy, w, None, conv_args, False)
            dw, _ = _weight_gradient_in_place(lib, dy, x, w.shape, conv_args, False)
            return dx, dw, _channel_sums(dy) if needs_bias else None

        runs = {"nchw_copy": on_copies, "channels_last": in_place}
        return _run_channels_last(layout, algo, "transposed backward", runs, dy.shape, w.shape, conv_args, x.dtype)
    x, w, dy = _contiguous(arrays)
    dx, dw = empty_like(x), empty_like(w)
    db = empty(dy.shape[1], w.dtype, device_of(w)) if needs_bias else None
    algo = _algorithm_choice(lib, algo, dy.shape, w.shape, conv_args)
    shuffle = _shuffle_runs(lib, algo, x, w, args)
    if algo == PIXEL_SHUFFLE:
        conv_transpose_shuffle.backward(lib, x, w, dy, dx, dw, db, args)
        return dx, dw, db
    # 'auto' times each kernel on its own; the call then runs both at once (two im2col kernels
    # share grad_output's columns).
    run_input = conv_algo.reusing(lambda a: lib.conv_transpose2d_backward(x, w, dy, dx, None, None, *args, a, "im2col"))
    run_weight = conv_algo.reusing(lambda a: lib.conv_transpose2d_backward(x, w, dy, None, dw, None, *args, "im2col",
                                                                           a))
    algos = (_algorithm(lib, algo, "forward", run_input, dy.shape, w.shape, conv_args, x.dtype),
             _algorithm(lib, algo, "weight", run_weight, dy.shape, w.shape, conv_args, x.dtype))

    def run_pair(pair):  # pixel_shuffle's input gradient with its own weight gradient or another kernel's
        if pair[0] != PIXEL_SHUFFLE:
            return lib.conv_transpose2d_backward(x, w, dy, dx, dw, db, *args, *pair)
        both = pair[1] == PIXEL_SHUFFLE
        conv_transpose_shuffle.backward(lib, x, w, dy, dx, dw if both else None, db if both else None, args)
        if not both:
            lib.conv_transpose2d_backward(x, w, dy, None, dw, db, *args, "im2col", pair[1])
    run_both = conv_algo.reusing(run_pair)
    if algo == "auto":  # the two fastest apart, both im2col sharing their columns, subpixel's weight gradient
        # or pixel_shuffle's gradients (a direction of its own: pairs timed before subpixel existed are not
        # reused from the disk cache)
        candidates = [algos, ("im2col", "im2col")]
        if subpixel_runs(lib, x.shape, w.shape, args):
            candidates.insert(0 if subpixel_first(dy.shape, w.shape, args[0], args[-1]) else 2, (algos[0], SUBPIXEL))
        if shuffle:
            candidates += [(PIXEL_SHUFFLE, PIXEL_SHUFFLE), (PIXEL_SHUFFLE, algos[1])]
        direction = "transposed backward" + ("+" + PIXEL_SHUFFLE if shuffle else "")  # a choice of its own
        algos = conv_algo.resolve_among(direction, run_both, dy.shape, w.shape, conv_args, x.dtype, candidates)
    run_both(algos)
    return dx, dw, db
