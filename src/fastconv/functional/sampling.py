"""grid_sample, affine_grid and interpolate over the compiled kernels of fastconv.ops."""
from typing import Optional, Sequence, Union

from fastconv._typing import IntPair, Shape4
from fastconv import ops
from fastconv.autograd import Function, Tensor
from fastconv.ops._checks import is_channels_last


class GridSample(Function):
    @staticmethod
    def forward(ctx, x, grid, mode, padding_mode, align_corners):
        ctx.args = dict(mode=mode, padding_mode=padding_mode, align_corners=align_corners)
        ctx.save_for_backward(x, grid)
        return ops.grid_sample(x, grid, **ctx.args)

    @staticmethod
    def backward(ctx, grad):
        x, grid = ctx.saved_arrays
        need_x, need_grid = ctx.needs_input_grad[:2]
        return ops.grid_sample_backward(grad, x, grid, **ctx.args, needs_input_grad=need_x,
                                        needs_grid_grad=need_grid)


def grid_sample(input: Tensor, grid: Tensor, mode: str = "bilinear", padding_mode: str = "zeros",
                align_corners: Optional[bool] = None) -> Tensor:
    """torch.nn.functional.grid_sample (4-d): gradients for input and grid. align_corners=None
    means False, PyTorch's default."""
    return GridSample.apply(input, grid, mode, padding_mode, bool(align_corners))


class AffineGrid(Function):
    @staticmethod
    def forward(ctx, theta, size, align_corners):
        ctx.size, ctx.align_corners = size, align_corners
        return ops.affine_grid(theta, size, align_corners)

    @staticmethod
    def backward(ctx, grad):
        return ops.affine_grid_backward(grad, ctx.size, ctx.align_corners)


def affine_grid(theta: Tensor, size: Shape4, align_corners: Optional[bool] = None) -> Tensor:
    """torch.nn.functional.affine_grid (4-d): theta (N, 2, 3), size (N, C, H, W) -> (N, H, W, 2)."""
    return AffineGrid.apply(theta, tuple(size), bool(align_corners))


class Interpolate(Function):
    @staticmethod
    def forward(ctx, x, size, scale_factor, mode, align_corners, recompute_scale_factor, antialias):
        ctx.input_shape, ctx.channels_last = x.shape, is_channels_last(x)
        ctx.args = dict(size=size, scale_factor=scale_factor, mode=mode, align_corners=align_corners,
                        recompute_scale_factor=recompute_scale_factor, antialias=antialias)
        return ops.interpolate(x, **ctx.args)

    @staticmethod
    def backward(ctx, grad):
        return ops.interpolate_backward(grad, ctx.input_shape, **ctx.args, channels_last=ctx.channels_last)


def interpolate(input: Tensor, size: Optional[IntPair] = None, scale_factor: Union[float, Sequence[float], None] = None,
                mode: str = "nearest", align_corners: Optional[bool] = None,
                recompute_scale_factor: Optional[bool] = None, antialias: bool = False) -> Tensor:
    """torch.nn.functional.interpolate for 4-d input, modes "nearest", "nearest-exact", "bilinear",
    "bicubic" (these two also with antialias=True) and "area"."""
    return Interpolate.apply(input, size, scale_factor, mode, align_corners, recompute_scale_factor, antialias)


def upsample(input: Tensor, size: Optional[IntPair] = None, scale_factor: Union[float, Sequence[float], None] = None,
             mode: str = "nearest", align_corners: Optional[bool] = None) -> Tensor:
    """torch.nn.functional.upsample, PyTorch's deprecated alias of interpolate."""
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input: Tensor, size: Optional[IntPair] = None,
                     scale_factor: Union[float, Sequence[float], None] = None) -> Tensor:
    """torch.nn.functional.upsample_nearest: interpolate(mode="nearest")."""
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input: Tensor, size: Optional[IntPair] = None,
                      scale_factor: Union[float, Sequence[float], None] = None) -> Tensor:
    """torch.nn.functional.upsample_bilinear: interpolate(mode="bilinear", align_corners=True), as
    PyTorch's alias fixes it."""
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)
