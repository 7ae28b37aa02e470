"""grid_sample and affine_grid with their gradients, as torch.nn.functional's (4-d, NCHW).

grid (N, H_out, W_out, 2) holds (x, y) in [-1, 1]: -1 and 1 are the centres of the corner
pixels with align_corners=True, and the outer edges of the corner pixels without. Points
outside read 0 (padding_mode="zeros"), the nearest border pixel ("border"), or the image
mirrored at its borders ("reflection").
"""
import numpy as np

from fastconv import _C
from fastconv.ops._alloc import empty, empty_like
from fastconv.ops._checks import check_ndim, float_array, nchw_input, same_dtype, shape4

MODES = {"bilinear": 0, "nearest": 1}
PADDING_MODES = {"zeros": 0, "border": 1, "reflection": 2}


def _options(mode, padding_mode):
    if mode not in MODES:
        raise ValueError(f"mode: expected 'bilinear' or 'nearest', got {mode!r}")
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"padding_mode: expected 'zeros', 'border' or 'reflection', got {padding_mode!r}")
    return MODES[mode], PADDING_MODES[padding_mode]


def _input_and_grid(input, grid):
    x = nchw_input(input)
    g = float_array(grid, "grid")
    same_dtype({"input": x, "grid": g})
    check_ndim(g, 4, "grid", "(N, H_out, W_out, 2)")  # the kernel checks the sizes
    return x, np.ascontiguousarray(g)


def grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=False):
    """input (N, C, H, W) sampled at grid (N, H_out, W_out, 2) -> (N, C, H_out, W_out)."""
    options = _options(mode, padding_mode)
    x, g = _input_and_grid(input, grid)
    out = empty((x.shape[0], x.shape[1], g.shape[1], g.shape[2]), x.dtype)
    _C.grid_sample_forward(x, g, out, *options, bool(align_corners))
    return out


def grid_sample_backward(grad_output, input, grid, mode="bilinear", padding_mode="zeros", align_corners=False,
                         needs_input_grad=True, needs_grid_grad=True):
    """(grad_input, grad_grid) of grid_sample; either is None when not asked for.

    The grid gradient of nearest sampling is 0, as PyTorch's (the output is piecewise constant).
    """
    options = _options(mode, padding_mode)
    x, g = _input_and_grid(input, grid)
    dy = nchw_input(grad_output, "grad_output")
    same_dtype({"input": x, "grad_output": dy})
    dx = empty_like(x) if needs_input_grad else None
    dg = empty_like(g) if needs_grid_grad else None
    _C.grid_sample_backward(x, g, dy, dx, dg, *options, bool(align_corners))
    return dx, dg


def affine_grid(theta, size, align_corners=False):
    """theta (N, 2, 3), size (N, C, H, W) -> grid (N, H, W, 2) = theta @ (x, y, 1) per pixel."""
    t = np.ascontiguousarray(float_array(theta, "theta"))  # the kernel checks its shape against size
    n, _, h, w = shape4(size, "size")
    grid = empty((n, h, w, 2), t.dtype)
    _C.affine_grid_forward(t, grid, bool(align_corners))
    return grid


def affine_grid_backward(grad_grid, size, align_corners=False):
    """Gradient of affine_grid with respect to theta: (N, 2, 3)."""
    n, _, h, w = shape4(size, "size")
    dg = np.ascontiguousarray(float_array(grad_grid, "grad_grid"))
    if dg.shape != (n, h, w, 2):
        raise ValueError(f"grad_grid: expected shape {(n, h, w, 2)}, got {dg.shape}")
    dtheta = empty((n, 2, 3), dg.dtype)
    _C.affine_grid_backward(dg, dtheta, bool(align_corners))
    return dtheta
