"""conv_transpose2d's "pixel_shuffle" algorithm: ESPCN's sub-pixel convolution.

Output pixel (s i + a, s j + b) of a stride-s transposed convolution (phase (a, b)) sums input
pixels (i + u, j + v) over a few offsets (u, v) near 0, each with one tap of the kernel. So the
s x s phases of C_out channels are the s^2 C_out output channels of one stride-1 convolution of
the input over the window of offsets, [-m, m]^2, whose filters hold each phase's taps at their
offsets and zeros elsewhere; a pixel shuffle (torch.nn.functional.pixel_shuffle's order:
channel k s^2 + a s + b) then lays them out. That convolution runs conv2d's kernels, Winograd
for a 3x3 window: for the common 4x4 / 2 upsampling (a 3x3 window holding 4 of each phase's 9
taps) F(4x4, 3x3)'s 36 products per 16 outputs against 64 direct ones. The gradients are the
same convolution's: the input gradient of its pixel-unshuffled grad_output, and its weight
gradient, of which the taps that are the kernel's are kept. Winograd writes its output shuffled
and its input gradient reads the gradient's phases where they lie (conv2d's `pixel_shuffle`
argument); the weight gradient and the other kernels read an unshuffled copy.

Runs where every phase has exactly H x W outputs (kernel + output_padding - 2 padding equals the
stride, on both axes, with one stride), without dilation or groups, on the CPU library. As with
Winograd in conv2d, an infinite or NaN input value reaches more outputs than in PyTorch (the
stacked filters' zeros and the transforms multiply it): where that matters, pin "subpixel".
"""
import functools

import numpy as np

from fastconv.backend import device_of, empty
from fastconv.ops import conv_algo, conv_weight_cache
from fastconv.ops.conv import _transform_tile

PIXEL_SHUFFLE = "pixel_shuffle"


def _half_window(kernel, stride, padding):
    """m: the input offsets a phase reads, u with kernel row a + padding - stride u in [0, kernel)
    for some phase a, lie in [-m, m]."""
    lowest = -((kernel - 1 - padding) // stride)  # ceil((padding - kernel + 1) / stride)
    highest = (stride - 1 + padding) // stride
    return max(-lowest, highest, 0)


def unsupported_reason(lib, input_shape, weight_shape, args):
    """Why the algorithm cannot run this transposed convolution (args: its stride, padding,
    output_padding, dilation, groups), or None."""
    stride, padding, output_padding, dilation, groups = args
    if not hasattr(lib, "pixel_shuffle"):
        return "it runs on the CPU only (the arrays are on a device)"
    if groups != 1 or tuple(dilation) != (1, 1):
        return "it needs groups=1 and dilation=1"
    if stride[0] != stride[1] or stride[0] < 2:
        return "it needs one stride above 1 on both axes"
    if any(k + o - 2 * p != stride[0] for k, o, p in zip(weight_shape[2:], output_padding, padding)):
        return "it needs kernel + output_padding - 2 * padding == stride on both axes (an output of stride x the input)"
    return None


def _taps(kernel, stride, padding, m):
    """For each kernel row: (its phase a, its offset u + m in the stacked window)."""
    return [((k - padding) % stride, ((k - padding) % stride + padding - k) // stride + m) for k in range(kernel)]


class _Geometry:
    """A transposed convolution's stacked form: the window's half widths, each kernel tap's
    place in the stacked filters, and conv2d's arguments of the stacked convolution."""

    def __init__(self, weight_shape, args):
        stride, padding = args[0], args[1]
        c_in, c_out, r, s = weight_shape
        self.factor = stride[0]
        self.m = tuple(_half_window(k, stride[0], p) for k, p in zip((r, s), padding))
        self.rows, self.cols = _taps(r, stride[0], padding[0], self.m[0]), _taps(s, stride[0], padding[1], self.m[1])
        self.stacked_shape = (c_out * self.factor ** 2, c_in, 2 * self.m[0] + 1, 2 * self.m[1] + 1)
        self.conv_args = ((1, 1), self.m, self.m, (1, 1), 1)
        # conv_weight_cache keeps the stacked filters of a weight (remade when its bytes change)
        # with their transforms, under its one budget
        self.derivation = conv_weight_cache.Derivation((PIXEL_SHUFFLE, tuple(weight_shape), args),
                                                       self.stacked_shape, self.stack)

    def phase_view(self, stacked):
        """stacked (C_out s^2, C_in, window) as (C_out, s, s, C_in, window rows, window columns)."""
        f = self.factor
        return stacked.reshape(self.stacked_shape[0] // f ** 2, f, f, *self.stacked_shape[1:])

    def stack(self, w, out):
        """out = the stacked filters of w (C_in, C_out, R, S)."""
        out[...] = 0
        phases = self.phase_view(out)
        for kh, (a, u) in enumerate(self.rows):
            for kw, (b, v) in enumerate(self.cols):
                phases[:, a, b, :, u, v] = w[:, :, kh, kw].T
        return out

    def unstack(self, stacked, out):
        """out (C_in, C_out, R, S) = the kernel's taps of stacked filters (a weight gradient)."""
        phases = self.phase_view(stacked)
        for kh, (a, u) in enumerate(self.rows):
            for kw, (b, v) in enumerate(self.cols):
                out[:, :, kh, kw] = phases[:, a, b, :, u, v].T
        return out


@functools.lru_cache(maxsize=1024)
def _geometry(weight_shape, args):
    return _Geometry(weight_shape, args)


@functools.lru_cache(maxsize=4096)
def _inner_algorithm(input_shape, stacked_shape, conv_args, direction):
    """conv2d's fixed rule for the stacked convolution: timing it inside conv_transpose2d's own
    choice would time its candidates' trials instead."""
    candidates = conv_algo.supported(input_shape, stacked_shape, conv_args)
    return conv_algo.heuristic(input_shape, stacked_shape, conv_args, candidates, direction)


def _fused(algo):
    """Whether conv2d's kernels for `algo` write the pixel-shuffled output (and read its
    gradient) directly: Winograd's output transform interleaves the phases."""
    return algo.startswith("winograd")


def _stacked(lib, x, w, g, algo, use):
    """(the stacked filters of w, their transform for `algo` and `use` or None), from conv2d's
    weight cache: made once per weight version."""
    tile = _transform_tile(lib, algo, tuple(x.shape), g.stacked_shape, g.conv_args, use)
    return conv_weight_cache.derived(lib, w, 1, g.derivation, algo, use, tile)


def forward(lib, x, w, bias, y, args):
    """y = conv_transpose2d(x, w, bias) (args: stride, padding, output_padding, dilation, groups)."""
    g = _geometry(tuple(w.shape), args)
    b = None if bias is None else np.repeat(bias, g.factor ** 2)
    algo = _inner_algorithm(tuple(x.shape), g.stacked_shape, g.conv_args, "forward")
    stacked, transformed = _stacked(lib, x, w, g, algo, "forward")
    if _fused(algo):
        return lib.conv2d_forward(x, stacked, b, y, *g.conv_args, algo, False, transformed, None, g.factor)
    deep = empty((x.shape[0], g.stacked_shape[0], x.shape[2], x.shape[3]), x.dtype, device_of(x))
    lib.conv2d_forward(x, stacked, b, deep, *g.conv_args, algo, False, transformed, None)
    lib.pixel_shuffle(deep, y, g.factor)


def backward(lib, x, w, dy, dx, dw, db, args):
    """dx and dw (and db) of conv_transpose2d(x, w) for its output's gradient dy, into the arrays
    given: dx None leaves the input gradient to another kernel, dw None the weight and bias
    gradients."""
    g = _geometry(tuple(w.shape), args)
    if dx is not None:  # the stacked filters and their transform serve the input gradient only
        input_algo = _inner_algorithm(tuple(x.shape), g.stacked_shape, g.conv_args, "input")
        stacked, transformed = _stacked(lib, x, w, g, input_algo, "input_gradient")
    # dy unshuffled: for the weight gradient, and then for the input gradient too (whose
    # contiguous rows copy faster than dy's phases: 3-7% of the pair); none for Winograd's
    # input gradient alone, which reads dy's phases where they lie.
    deep = None
    if dw is not None or (dx is not None and not _fused(input_algo)):
        deep = empty((x.shape[0], g.stacked_shape[0], x.shape[2], x.shape[3]), x.dtype, device_of(x))
        lib.pixel_unshuffle(dy, deep, g.factor)
    if dx is not None:
        if deep is None:
            lib.conv2d_backward_input(dy, stacked, dx, *g.conv_args, input_algo, transformed, g.factor)
        else:
            lib.conv2d_backward_input(deep, stacked, dx, *g.conv_args, input_algo, transformed)
    if dw is not None:
        d_stacked = empty(g.stacked_shape, x.dtype, device_of(x))
        d_bias = None if db is None else empty(g.stacked_shape[0], x.dtype, device_of(x))
        algo = _inner_algorithm(tuple(x.shape), g.stacked_shape, g.conv_args, "weight")
        lib.conv2d_backward_weight(x, deep, d_stacked, d_bias, *g.conv_args, algo)
        g.unstack(d_stacked, dw)
        if db is not None:  # each output channel's s^2 phase sums
            db[...] = d_bias.reshape(-1, g.factor ** 2).sum(axis=1, dtype=np.float64)
