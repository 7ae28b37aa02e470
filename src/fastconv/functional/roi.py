"""roi_pool and roi_align over the compiled kernels of fastconv.ops, with torchvision.ops' names
and arguments."""
from typing import Sequence, Union

from fastconv._typing import IntPair
from fastconv import ops
from fastconv.autograd import Function, Tensor
from fastconv.autograd.tensor import array_of
from fastconv.ops.roi import roi_boxes


def _roi_array(boxes, dtype):
    """torchvision's boxes, a (K, 5) array/Tensor or a list of (Ki, 4) per image, as the (K, 5)
    array the kernels take. Boxes get no gradient (as in torchvision), so they leave the graph here."""
    if isinstance(boxes, (list, tuple)):
        return roi_boxes([array_of(b) for b in boxes], dtype)
    return roi_boxes(array_of(boxes), dtype)


class RoIPool(Function):
    @staticmethod
    def forward(ctx, x, rois, output_size, spatial_scale):
        y, argmax = ops.roi_pool(x, rois, output_size, spatial_scale)
        ctx.input_shape = x.shape
        ctx.save_for_backward(argmax)
        return y

    @staticmethod
    def backward(ctx, grad):
        (argmax,) = ctx.saved_arrays
        return ops.roi_pool_backward(grad, argmax, ctx.input_shape), None


def roi_pool(input: Tensor, boxes: Union[Tensor, Sequence[Tensor]], output_size: IntPair,
             spatial_scale: float = 1.0) -> Tensor:
    """torchvision.ops.roi_pool: input (N, C, H, W), boxes (K, 5) [batch_index, x1, y1, x2, y2] or a
    list of (Ki, 4) per image -> (K, C, PH, PW)."""
    return RoIPool.apply(input, _roi_array(boxes, input.dtype), output_size, spatial_scale)


class RoIAlign(Function):
    @staticmethod
    def forward(ctx, x, rois, output_size, spatial_scale, sampling_ratio, aligned):
        ctx.input_shape, ctx.args = x.shape, (spatial_scale, sampling_ratio, aligned)
        ctx.save_for_backward(rois)
        return ops.roi_align(x, rois, output_size, *ctx.args)

    @staticmethod
    def backward(ctx, grad):
        (rois,) = ctx.saved_arrays
        return ops.roi_align_backward(grad, rois, ctx.input_shape, *ctx.args), None


def roi_align(input: Tensor, boxes: Union[Tensor, Sequence[Tensor]], output_size: IntPair, spatial_scale: float = 1.0,
              sampling_ratio: int = -1, aligned: bool = False) -> Tensor:
    """torchvision.ops.roi_align: boxes as in roi_pool; sampling_ratio <= 0 adapts to the box size."""
    return RoIAlign.apply(input, _roi_array(boxes, input.dtype), output_size, spatial_scale, sampling_ratio,
                          aligned)
