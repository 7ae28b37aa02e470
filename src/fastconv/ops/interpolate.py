"""interpolate and its gradient for NCHW batches, as torch.nn.functional.interpolate's
"bilinear" and "nearest" modes.

Output size: `size`, or floor(input size * scale_factor). Source index of output pixel d: with a
scale_factor (and recompute_scale_factor not set) the rules use 1 / scale_factor, otherwise
input size / output size; bilinear maps pixel centres, (d + 0.5) * scale - 0.5 clamped at 0, or
corner centres with align_corners=True, d * (in - 1) / (out - 1); nearest takes
floor(d * scale) in float32, PyTorch's legacy "nearest".
"""
import math

import numpy as np

from fastconv import _C
from fastconv.ops._alloc import empty
from fastconv.ops._checks import int_pair, nchw_input, shape4

MODES = {"bilinear": 0, "nearest": 1}


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


def interpolate_arguments(input_hw, size, scale_factor, mode, align_corners, recompute_scale_factor):
    """torch's argument rules -> (output (H, W), mode index, align_corners, (scale_h, scale_w)),
    where a scale of 0 means "use input size / output size"."""
    if mode not in MODES:
        raise ValueError(f"mode: expected 'bilinear' or 'nearest', got {mode!r}")
    if align_corners is not None and mode != "bilinear":
        raise ValueError("align_corners: can only be set with the interpolating mode 'bilinear'")
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
        if recompute_scale_factor:
            scales = (0.0, 0.0)
    if min(out_hw) < 1 or min(input_hw) < 1:
        raise ValueError(f"size: input and output sizes should be greater than 0, got input {tuple(input_hw)} "
                         f"and output {tuple(out_hw)}")
    return out_hw, MODES[mode], bool(align_corners), scales


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None):
    """input (N, C, H, W) resized to `size` or by `scale_factor` -> (N, C, H_out, W_out)."""
    x = nchw_input(input)
    out_hw, mode_index, align, scales = interpolate_arguments(
        x.shape[2:], size, scale_factor, mode, align_corners, recompute_scale_factor)
    out = empty(x.shape[:2] + out_hw, x.dtype)
    _C.interpolate_forward(x, out, mode_index, align, *scales)
    return out


def interpolate_backward(grad_output, input_shape, size=None, scale_factor=None, mode="nearest",
                         align_corners=None, recompute_scale_factor=None):
    """Gradient of interpolate with respect to its input, given the forward's arguments."""
    dy = nchw_input(grad_output, "grad_output")
    input_shape = shape4(input_shape, "input_shape")
    out_hw, mode_index, align, scales = interpolate_arguments(
        input_shape[2:], size, scale_factor, mode, align_corners, recompute_scale_factor)
    if dy.shape != input_shape[:2] + out_hw:
        raise ValueError(f"grad_output: expected shape {input_shape[:2] + out_hw}, got {dy.shape}")
    dx = empty(input_shape, dy.dtype)
    _C.interpolate_backward(dy, dx, mode_index, align, *scales)
    return dx
