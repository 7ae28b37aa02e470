"""grid_sample, affine_grid and interpolate on CUDA (csrc/sampling/cuda/sampling.cu), with
fastconv._C's names and arguments: outputs are preallocated by fastconv.ops.sampling on the
input's device. The arguments are checked here by fastconv._C's rules, with its messages, before
any launch (no check reads an array's values).

grid_sample's input gradient comes in two formulations, chosen by `deterministic` (default: the
module's DETERMINISTIC, True):
  - deterministic: no floating-point atomics. Every (point, corner) is listed with the pixel it
    lands on, the list is sorted by pixel (a stable sort, so each pixel's run stays in point and
    corner order), and each input-gradient element sums its run: the same bits every run, the
    CPU kernel's terms in its order (its bits but where the GPU fuses multiply-adds in the source
    coordinates).
  - atomic (deterministic=False): PyTorch's CUDA formulation, a thread per output element adding
    its corners' shares with atomicAdd. No sort and no corner list (16 to 24 bytes a point), but
    the order of the adds, and so the last bits, change from run to run.
The deterministic one is the default for the reason fastconv.cuda.roi gives: fastconv's
backwards are reproducible. The grid gradient (a sum over channels per point, one thread each),
affine_grid's and interpolate's backwards (gathers: each element sums its own terms) have no
atomics at all.
"""
import math

import numpy as np

from fastconv.backend import array_module
from fastconv.cuda import _kernel_args as args
from fastconv.ops._checks import check_ndim

DETERMINISTIC = True


def _deterministic(flag):
    return DETERMINISTIC if flag is None else bool(flag)


def _grid_options(mode, padding_mode, align_corners):
    if mode not in (0, 1):
        raise ValueError(f"mode: expected 0 (bilinear) or 1 (nearest), got {mode}")
    if padding_mode not in (0, 1, 2):
        raise ValueError(f"padding_mode: expected 0 (zeros), 1 (border) or 2 (reflection), got {padding_mode}")
    return np.int32(mode), np.int32(padding_mode), args.flag(align_corners)


def _grid_sizes(x, x_name, grid):
    """(N, C, H, W, OH, OW) of a grid_sample call."""
    n, c, h, w = args.nchw_shape(x, x_name)
    if grid.ndim != 4 or grid.shape[0] != n or grid.shape[3] != 2:
        raise ValueError(f"grid: expected shape ({n}, H_out, W_out, 2), got {tuple(grid.shape)}")
    if h == 0 or w == 0:
        raise ValueError(f"{x_name}: expected non-empty spatial dimensions, got shape {tuple(x.shape)}")
    return n, c, h, w, int(grid.shape[1]), int(grid.shape[2])


def grid_sample_forward(input, grid, out, mode, padding_mode, align_corners):
    options = _grid_options(mode, padding_mode, align_corners)
    x = args.float_input(input, "input")
    g = args.float_input(grid, "grid", x.dtype)
    sizes = _grid_sizes(x, "input", g)
    args.output(out, "out", (*sizes[:2], *sizes[4:]), x.dtype)
    args.launch("sampling", "grid_sample_forward", out.size, sizes, (x, g, out, *options))


def grid_sample_backward(input, grid, grad_output, grad_input, grad_grid, mode, padding_mode, align_corners,
                         deterministic=None):
    options = _grid_options(mode, padding_mode, align_corners)
    x = args.float_input(input, "input")
    g = args.float_input(grid, "grid", x.dtype)
    sizes = _grid_sizes(x, "input", g)
    n, c, h, w, oh, ow = sizes
    dy = args.float_input(grad_output, "grad_output", x.dtype)
    args.output(dy, "grad_output", (n, c, oh, ow), x.dtype)
    if grad_input is not None:
        args.output(grad_input, "grad_input", x.shape, x.dtype)
    if grad_grid is not None:
        args.output(grad_grid, "grad_grid", g.shape, x.dtype)
        args.launch("sampling", "grid_sample_grid_gradient", n * oh * ow, sizes, (x, g, dy, grad_grid, *options))
    if grad_input is None:
        return
    if _deterministic(deterministic):
        _input_gradient_by_sorted_corners(sizes, options, g, dy, grad_input)
    else:
        grad_input.fill(0)
        args.launch("sampling", "grid_sample_input_gradient_atomic", dy.size, sizes, (g, dy, grad_input, *options))


def _input_gradient_by_sorted_corners(sizes, options, grid, grad_output, grad_input):
    """The deterministic input gradient (the module's docstring): the corner list, its stable
    sort by pixel, each pixel's run found by bisection, then the gather."""
    xp = array_module(grid)
    n, _, h, w, oh, ow = sizes
    corners = n * oh * ow * 4
    pixel, weight = xp.empty(corners, np.int64), xp.empty(corners, grid.dtype)
    args.launch("sampling", "grid_sample_corners", n * oh * ow, sizes, (grid, pixel, weight, *options))
    order = xp.argsort(pixel, kind="stable")
    start = xp.searchsorted(pixel[order], xp.arange(n * h * w + 1, dtype=np.int64)).astype(np.int64)
    args.launch("sampling", "grid_sample_input_gradient_gather", grad_input.size, sizes,
                (grad_output, order, start, weight, grad_input, *options))


def affine_grid_forward(theta, grid, align_corners):
    t = args.float_input(theta, "theta")
    check_ndim(grid, 4, "grid", "(N, H, W, 2)")
    n, h, w = (int(d) for d in grid.shape[:3])
    if tuple(t.shape) != (n, 2, 3):
        raise ValueError(f"theta: expected shape ({n}, 2, 3), got {tuple(t.shape)}")
    args.output(grid, "grid", (n, h, w, 2), t.dtype)
    args.launch("sampling", "affine_grid_forward", grid.size, (h, w), (t, grid, args.flag(align_corners)))


def affine_grid_backward(grad_grid, grad_theta, align_corners):
    g = args.float_input(grad_grid, "grad_grid")
    check_ndim(g, 4, "grad_grid", "(N, H, W, 2)")
    n, h, w, two = (int(d) for d in g.shape)
    if two != 2:
        raise ValueError(f"grad_grid: expected shape ({n}, {h}, {w}, 2), got {tuple(g.shape)}")
    args.output(grad_theta, "grad_theta", (n, 2, 3), g.dtype)
    args.launch("sampling", "affine_grid_backward", grad_theta.size, (h, w), (g, grad_theta, args.flag(align_corners)))


def _check_scale(scale, out, name):
    """0 (input size / output size), or a positive finite scale whose last output's source index
    fits in int64 (fastconv._C's rule)."""
    if not (scale == 0 or (math.isfinite(scale) and scale > 0 and out / scale < 2.0**62)):
        raise ValueError(f"{name}: expected 0 (input size / output size) or a positive finite scale whose source "
                         f"indices fit in 64 bits, got {scale}")


def _resize_sizes(image, image_name, resized, resized_name, mode, scale_h, scale_w):
    """(N, C, H, W, OH, OW) of an interpolate call, after fastconv._C's checks."""
    n, c, h, w = args.nchw_shape(image, image_name)
    if resized.ndim != 4 or tuple(resized.shape[:2]) != (n, c):
        raise ValueError(f"{resized_name}: expected shape ({n}, {c}, H_out, W_out), got {tuple(resized.shape)}")
    if mode not in range(6):
        raise ValueError(f"mode: expected 0 (bilinear), 1 (nearest), 2 (bicubic), 3 (antialiased bilinear), 4 "
                         f"(antialiased bicubic) or 5 (nearest-exact), got {mode}")
    oh, ow = int(resized.shape[2]), int(resized.shape[3])
    _check_scale(scale_h, oh, "scale_h")
    _check_scale(scale_w, ow, "scale_w")
    return n, c, h, w, oh, ow


def _resize_options(mode, align_corners, scale_h, scale_w):
    return np.int32(mode), args.flag(align_corners), np.float64(scale_h), np.float64(scale_w)


def interpolate_forward(input, out, mode, align_corners, scale_h, scale_w):
    x = args.float_input(input, "input")
    sizes = _resize_sizes(x, "input", out, "out", mode, scale_h, scale_w)
    args.output(out, "out", out.shape, x.dtype)
    args.launch("sampling", "interpolate_forward", out.size, sizes,
                (x, out, *_resize_options(mode, align_corners, scale_h, scale_w)))


def interpolate_backward(grad_output, grad_input, mode, align_corners, scale_h, scale_w):
    dy = args.float_input(grad_output, "grad_output")
    sizes = _resize_sizes(grad_input, "grad_input", dy, "grad_output", mode, scale_h, scale_w)
    args.output(grad_input, "grad_input", grad_input.shape, dy.dtype)
    args.launch("sampling", "interpolate_backward", grad_input.size, sizes,
                (dy, grad_input, *_resize_options(mode, align_corners, scale_h, scale_w)))
