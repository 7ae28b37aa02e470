"""Resampling of (N, C, H, W) batches, as torch.nn.functional's: grid_sample and affine_grid (4-d), and
interpolate's "nearest", "nearest-exact", "bilinear", "bicubic" (these two also antialiased) and
"area" modes, with their gradients.

grid_sample: grid (N, H_out, W_out, 2) holds (x, y) in [-1, 1]: -1 and 1 are the centres of the
corner pixels with align_corners=True, and the outer edges of the corner pixels without. Points
outside read 0 (padding_mode="zeros"), the nearest border pixel ("border"), or the image
mirrored at its borders ("reflection").

interpolate: output size `size`, or floor(input size * scale_factor). Source index of output
pixel d: with a scale_factor (and recompute_scale_factor not set) the rules use 1 / scale_factor,
otherwise input size / output size (bilinear copies a dimension whose size does not change,
as PyTorch does); bilinear maps pixel centres, (d + 0.5) * scale - 0.5 clamped
at 0, or corner centres with align_corners=True, d * (in - 1) / (out - 1); nearest takes
floor(d * scale) in float32, PyTorch's legacy "nearest", and "nearest-exact" the pixel under the
output pixel's centre, floor((d + 0.5) * scale); "area" is adaptive average pooling to the
output size, as in PyTorch; bicubic takes the four pixels around
the unclamped source index (d + 0.5) * scale - 0.5 (border pixels repeated) with Keys' cubic
weights, a = -0.75. antialias=True (bilinear and bicubic, as in torch) widens the filter by the
scale when downsampling, so that every input pixel counts: PIL's triangle and cubic (a = -0.5)
filters, normalised, over the pixels within (2 or 4) / 2 * scale of the output pixel's centre.

Layouts: as torch's, the output of a channels_last input (NCHW axes over NHWC memory) is
channels_last too, and so is its input gradient: the kernels read and write that layout in
place, with the NCHW kernels' values bit for bit (the grid stays (N, H_out, W_out, 2)).
"""
import math
from typing import Optional, Sequence, Tuple, Union

import numpy as np

from fastconv._typing import Array, IntPair, Shape4
from fastconv.backend import device_of, empty, empty_like, kernels
from fastconv.ops.pool import adaptive_avg_pool2d, adaptive_avg_pool2d_backward
from fastconv.ops._checks import (ARGUMENT_LIMIT, check_ndim, check_size, contiguous, empty_image, float_array,
                                  image_input, in_layout_of, int_pair, is_channels_last, same_dtype, shape4,
                                  to_channels_last)

MODES = {"bilinear": 0, "nearest": 1}
# fastconv._C's interpolate modes: the antialiased filters are modes of their own (3 and 4).
INTERPOLATE_MODES = {"bilinear": 0, "nearest": 1, "bicubic": 2, "nearest-exact": 5}
AREA = "area"  # adaptive average pooling (ops.pool), not a mode of the resampling kernels
# The interpolating modes: align_corners applies to them, and antialias=True (kernel modes 3, 4).
ANTIALIASED = {"bilinear": 3, "bicubic": 4}
PADDING_MODES = {"zeros": 0, "border": 1, "reflection": 2}


def _mode_index(mode):
    if mode not in MODES:
        raise ValueError(f"mode: expected 'bilinear' or 'nearest', got {mode!r}")
    return MODES[mode]


def _options(mode, padding_mode):
    mode_index = _mode_index(mode)
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"padding_mode: expected 'zeros', 'border' or 'reflection', got {padding_mode!r}")
    return mode_index, PADDING_MODES[padding_mode]


def _input_and_grid(input, grid, channels_last):
    x = image_input(input, "input", channels_last)
    g = float_array(grid, "grid")
    same_dtype({"input": x, "grid": g})
    check_ndim(g, 4, "grid", "(N, H_out, W_out, 2)")  # the kernel checks the sizes
    return x, contiguous(g)


def grid_sample(input: Array, grid: Array, mode: str = "bilinear", padding_mode: str = "zeros",
                align_corners: bool = False) -> Array:
    """input (N, C, H, W) sampled at grid (N, H_out, W_out, 2) -> (N, C, H_out, W_out)."""
    lib = kernels(input, grid, op="grid_sample")
    options = _options(mode, padding_mode)
    channels_last = is_channels_last(input)
    x, g = _input_and_grid(input, grid, channels_last)
    out = empty_image((x.shape[0], x.shape[1], g.shape[1], g.shape[2]), x.dtype, device_of(x), channels_last)
    lib.grid_sample_forward(x, g, out, *options, bool(align_corners))
    return out


def grid_sample_backward(grad_output: Array, input: Array, grid: Array, mode: str = "bilinear",
                         padding_mode: str = "zeros", align_corners: bool = False, needs_input_grad: bool = True,
                         needs_grid_grad: bool = True) -> Tuple[Optional[Array], Optional[Array]]:
    """(grad_input, grad_grid) of grid_sample; either is None when not asked for.

    The grid gradient of nearest sampling is 0, as PyTorch's (the output is piecewise constant).
    """
    lib = kernels(grad_output, input, grid, op="grid_sample_backward")
    options = _options(mode, padding_mode)
    channels_last = is_channels_last(input)
    x, g = _input_and_grid(input, grid, channels_last)
    dy = image_input(grad_output, "grad_output", channels_last)
    same_dtype({"input": x, "grad_output": dy})
    dx = empty_image(x.shape, x.dtype, device_of(x), channels_last) if needs_input_grad else None
    dg = empty_like(g) if needs_grid_grad else None
    lib.grid_sample_backward(x, g, dy, dx, dg, *options, bool(align_corners))
    return dx, dg


def affine_grid(theta: Array, size: Shape4, align_corners: bool = False) -> Array:
    """theta (N, 2, 3), size (N, C, H, W) -> grid (N, H, W, 2) = theta @ (x, y, 1) per pixel."""
    lib = kernels(theta, op="affine_grid")
    t = contiguous(float_array(theta, "theta"))  # the kernel checks its shape against size
    n, c, h, w = shape4(size, "size")
    if min(n, c, h, w) <= 0:  # PyTorch's rule, even for an empty batch
        raise ValueError(f"size: expected non-zero, positive output size, got {list(size)}")
    check_size((n, h, w, 2), "size")
    grid = empty((n, h, w, 2), t.dtype, device_of(t))
    lib.affine_grid_forward(t, grid, bool(align_corners))
    return grid


def affine_grid_backward(grad_grid: Array, size: Shape4, align_corners: bool = False) -> Array:
    """Gradient of affine_grid with respect to theta: (N, 2, 3)."""
    lib = kernels(grad_grid, op="affine_grid_backward")
    n, _, h, w = shape4(size, "size")
    dg = contiguous(float_array(grad_grid, "grad_grid"))
    if dg.shape != (n, h, w, 2):
        raise ValueError(f"grad_grid: expected shape {(n, h, w, 2)}, got {dg.shape}")
    dtheta = empty((n, 2, 3), dg.dtype, device_of(dg))
    lib.affine_grid_backward(dg, dtheta, bool(align_corners))
    return dtheta


def _scale_pair(scale_factor):
    if isinstance(scale_factor, (tuple, list)):
        if len(scale_factor) != 2:
            raise ValueError(f"scale_factor: expected a number or a pair, got {scale_factor!r}")
        pair = tuple(float(s) for s in scale_factor)
    else:
        pair = (float(scale_factor),) * 2
    if not all(s > 0 and math.isfinite(s) for s in pair):
        raise ValueError(f"scale_factor: must be positive and finite, got {scale_factor!r}")
    return pair


def _interpolate_mode_index(mode, antialias):
    if mode not in INTERPOLATE_MODES and mode != AREA:
        raise ValueError(f"mode: expected 'nearest', 'nearest-exact', 'bilinear', 'bicubic' or 'area', got {mode!r}")
    if not antialias:
        return INTERPOLATE_MODES.get(mode)  # None for area
    if mode not in ANTIALIASED:
        raise ValueError(f"antialias: is restricted to the modes 'bilinear' and 'bicubic', got mode {mode!r}")
    return ANTIALIASED[mode]


def interpolate_arguments(input_hw, size, scale_factor, mode, align_corners, recompute_scale_factor,
                          antialias=False):
    """torch's argument rules -> (output (H, W), mode index, align_corners, (scale_h, scale_w)),
    where a scale of 0 means "use input size / output size"."""
    mode_index = _interpolate_mode_index(mode, antialias)
    if align_corners is not None and mode not in ANTIALIASED:  # the interpolating modes
        raise ValueError("align_corners: can only be set with the interpolating modes 'bilinear' and 'bicubic'")
    if (size is None) == (scale_factor is None):
        raise ValueError("either size or scale_factor should be defined, not both" if size is not None
                         else "either size or scale_factor should be defined")
    if size is not None:
        if recompute_scale_factor:
            raise ValueError("recompute_scale_factor: is not meaningful with an explicit size")
        out_hw, scales = int_pair(size, "size"), (0.0, 0.0)
    else:
        scales = _scale_pair(scale_factor)
        out_hw = tuple(math.floor(n * s) for n, s in zip(input_hw, scales))
        if max(out_hw) > ARGUMENT_LIMIT:
            raise ValueError(f"scale_factor: expected an output size of at most 2**63 - 1, got {out_hw} "
                             f"from input {tuple(input_hw)} and scale_factor {scale_factor!r}")
        if recompute_scale_factor:
            scales = (0.0, 0.0)
    if mode == "bilinear" and not antialias:
        # PyTorch's linear kernels copy a dimension whose size does not change, whatever the scale
        # factor says; nearest keeps using the scale there.
        scales = tuple(0.0 if n == m else s for n, m, s in zip(input_hw, out_hw, scales))
    if min(out_hw) < 1 or min(input_hw) < 1:
        raise ValueError(f"size: input and output sizes should be greater than 0, got input {tuple(input_hw)} "
                         f"and output {tuple(out_hw)}")
    return out_hw, mode_index, bool(align_corners), scales


def interpolate(input: Array, size: Optional[IntPair] = None, scale_factor: Union[float, Sequence[float], None] = None,
                mode: str = "nearest", align_corners: Optional[bool] = None,
                recompute_scale_factor: Optional[bool] = None, antialias: bool = False) -> Array:
    """input (N, C, H, W) resized to `size` or by `scale_factor` -> (N, C, H_out, W_out), in the
    input's layout: a channels_last input is read in place and gives a channels_last output."""
    lib = kernels(input, op="interpolate")
    channels_last = is_channels_last(input)
    x = image_input(input, "input", channels_last)
    out_hw, mode_index, align, scales = interpolate_arguments(
        x.shape[2:], size, scale_factor, mode, align_corners, recompute_scale_factor, antialias)
    check_size(x.shape[:2] + out_hw, "size" if size is not None else "scale_factor")
    if mode == AREA:
        return in_layout_of(adaptive_avg_pool2d(x, out_hw), x)
    out = empty_image(x.shape[:2] + out_hw, x.dtype, device_of(x), channels_last)
    lib.interpolate_forward(x, out, mode_index, align, *scales)
    return out


def interpolate_backward(grad_output: Array, input_shape: Shape4, size: Optional[IntPair] = None,
                         scale_factor: Union[float, Sequence[float], None] = None, mode: str = "nearest",
                         align_corners: Optional[bool] = None, recompute_scale_factor: Optional[bool] = None,
                         antialias: bool = False, channels_last: Optional[bool] = None) -> Array:
    """Gradient of interpolate with respect to its input, given the forward's arguments.

    channels_last: the layout of the gradient, the forward input's (True: channels_last, False:
    NCHW); None: grad_output's. A grad_output in the other layout is converted once.
    """
    lib = kernels(grad_output, op="interpolate_backward")
    if channels_last is None:
        channels_last = is_channels_last(grad_output)
    channels_last = bool(channels_last) and type(grad_output) is np.ndarray  # device arrays stay NCHW
    dy = image_input(grad_output, "grad_output", channels_last)
    input_shape = shape4(input_shape, "input_shape")
    out_hw, mode_index, align, scales = interpolate_arguments(
        input_shape[2:], size, scale_factor, mode, align_corners, recompute_scale_factor, antialias)
    if dy.shape != input_shape[:2] + out_hw:
        raise ValueError(f"grad_output: expected shape {input_shape[:2] + out_hw}, got {dy.shape}")
    if mode == AREA:
        dx = adaptive_avg_pool2d_backward(dy, input_shape)
        return to_channels_last(dx) if channels_last else dx
    dx = empty_image(input_shape, dy.dtype, device_of(dy), channels_last)
    lib.interpolate_backward(dy, dx, mode_index, align, *scales)
    return dx
