"""roi_align and roi_pool with their gradients, as torchvision.ops', and the boxes both take.

roi_align: each output bin of a box averages bilinear samples on a regular grid inside the bin
(sampling_ratio per axis, or ceil(box size / output size) when sampling_ratio <= 0). Samples
more than a pixel outside the input read 0; those within it are clamped onto the border pixels.
aligned=True shifts boxes by half a pixel (pixel centres at +0.5); aligned=False keeps the
legacy behaviour of boxes at least one pixel wide.

roi_pool: box corners are rounded to pixels (half away from zero) after scaling, boxes are at
least one pixel, each bin is the floor/ceil window of its fractional edges clipped to the input,
and an empty bin gives 0.
"""
from typing import Sequence, Tuple, Union

import numpy as np

from fastconv._typing import Array, IntPair, Shape4
from fastconv.backend import array_module, device_of, empty, kernels
from fastconv.ops._checks import an_int, check_size, contiguous, float_array, nchw_input, positive_pair, shape4


def roi_boxes(boxes, dtype):
    """A C-contiguous (K, 5) array of rows [batch_index, x1, y1, x2, y2] of `dtype`.

    `boxes` is either that array, or a list with one (Ki, 4) array of [x1, y1, x2, y2] per
    image, whose position in the list is the batch index (torchvision's
    convert_boxes_to_roi_format). Batch indices are range-checked by the kernel.
    """
    if isinstance(boxes, (list, tuple)):
        parts = [float_array(b, f"boxes[{i}]") for i, b in enumerate(boxes)]
        for i, b in enumerate(parts):
            if b.ndim != 2 or b.shape[1] != 4:
                raise ValueError(f"boxes[{i}]: expected a (Ki, 4) array [x1, y1, x2, y2], got shape {b.shape}")
            _same_dtype(b, dtype, f"boxes[{i}]")
        xp = array_module(*parts)
        rows = [xp.concatenate([xp.full((len(b), 1), i, dtype), b], axis=1) for i, b in enumerate(parts)]
        return contiguous(xp.concatenate(rows) if rows else xp.zeros((0, 5), dtype))
    boxes = float_array(boxes, "boxes")
    if boxes.ndim != 2 or boxes.shape[1] != 5:
        raise ValueError("boxes: expected a (K, 5) array [batch_index, x1, y1, x2, y2] or a list of (Ki, 4) "
                         f"arrays, got shape {boxes.shape}")
    _same_dtype(boxes, dtype, "boxes")
    return contiguous(boxes)


def _same_dtype(array, dtype, name):
    if array.dtype != dtype:
        raise TypeError(f"{name}: dtype {array.dtype} does not match input's {np.dtype(dtype)}")


def _box_arrays(boxes):
    """The arrays `boxes` holds (one, or one per image), for backend.kernels to see."""
    return tuple(boxes) if isinstance(boxes, (list, tuple)) else (boxes,)


def roi_align(input: Array, boxes: Union[Array, Sequence[Array]], output_size: IntPair, spatial_scale: float = 1.0,
              sampling_ratio: int = -1, aligned: bool = False) -> Array:
    """input (N, C, H, W), boxes (K, 5) or a list of (Ki, 4) -> (K, C, PH, PW)."""
    lib = kernels(input, *_box_arrays(boxes), op="roi_align")
    x = nchw_input(input)
    rois = roi_boxes(boxes, x.dtype)
    ph, pw = positive_pair(output_size, "output_size")
    check_size((rois.shape[0], x.shape[1], ph, pw), "output_size")
    out = empty((rois.shape[0], x.shape[1], ph, pw), x.dtype, device_of(x))
    lib.roi_align_forward(x, rois, out, float(spatial_scale), an_int(sampling_ratio, "sampling_ratio"), bool(aligned))
    return out


def roi_align_backward(grad_output: Array, boxes: Union[Array, Sequence[Array]], input_shape: Shape4,
                       spatial_scale: float = 1.0, sampling_ratio: int = -1, aligned: bool = False) -> Array:
    """Gradient of roi_align with respect to its input, of shape input_shape.

    Deterministic: the kernel gives each thread whole channels, so every gradient plane has one
    writer adding in box order (csrc/roi/cpu/roi_align.cpp).
    """
    lib = kernels(grad_output, *_box_arrays(boxes), op="roi_align_backward")
    dy = nchw_input(grad_output, "grad_output")
    rois = roi_boxes(boxes, dy.dtype)
    dx = empty(shape4(input_shape, "input_shape"), dy.dtype, device_of(dy))
    lib.roi_align_backward(dy, rois, dx, float(spatial_scale), an_int(sampling_ratio, "sampling_ratio"), bool(aligned))
    return dx


def roi_pool(input: Array, boxes: Union[Array, Sequence[Array]], output_size: IntPair,
             spatial_scale: float = 1.0) -> Tuple[Array, Array]:
    """input (N, C, H, W), boxes (K, 5) or a list of (Ki, 4) -> (out, argmax), both (K, C, PH, PW).

    argmax holds the flat index into `input` of each bin's maximum (-1 for an empty bin), so
    that the backward needs nothing else.
    """
    lib = kernels(input, *_box_arrays(boxes), op="roi_pool")
    x = nchw_input(input)
    rois = roi_boxes(boxes, x.dtype)
    ph, pw = positive_pair(output_size, "output_size")
    check_size((rois.shape[0], x.shape[1], ph, pw), "output_size")
    out = empty((rois.shape[0], x.shape[1], ph, pw), x.dtype, device_of(x))
    argmax = empty(out.shape, np.int64, device_of(x))
    lib.roi_pool_forward(x, rois, out, argmax, float(spatial_scale))
    return out, argmax


def roi_pool_backward(grad_output: Array, argmax: Array, input_shape: Shape4) -> Array:
    """Gradient of roi_pool with respect to its input: grad_output added at argmax."""
    lib = kernels(grad_output, argmax, op="roi_pool_backward")
    dy = nchw_input(grad_output, "grad_output")
    argmax = contiguous(argmax)  # dtype, shape and values are checked by the kernel
    dx = empty(shape4(input_shape, "input_shape"), dy.dtype, device_of(dy))
    lib.roi_pool_backward(dy, argmax, dx)
    return dx
