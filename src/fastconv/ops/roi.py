"""roi_align and its gradient, with torchvision.ops.roi_align's arguments and semantics.

Each output bin of a box averages bilinear samples on a regular grid inside the bin
(sampling_ratio per axis, or ceil(box size / output size) when sampling_ratio <= 0). Samples
more than a pixel outside the input read 0; those within it are clamped onto the border pixels.
aligned=True shifts boxes by half a pixel (pixel centres at +0.5); aligned=False keeps the
legacy behaviour of boxes at least one pixel wide.
"""
import numpy as np

from fastconv import _C
from fastconv.ops._alloc import empty
from fastconv.ops._checks import nchw_input, positive_pair, shape4
from fastconv.ops._roi import roi_boxes


def roi_align(input, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    """input (N, C, H, W), boxes (K, 5) or a list of (Ki, 4) -> (K, C, PH, PW)."""
    x = nchw_input(input)
    rois = roi_boxes(boxes, x.dtype)
    ph, pw = positive_pair(output_size, "output_size")
    out = empty((rois.shape[0], x.shape[1], ph, pw), x.dtype)
    _C.roi_align_forward(x, rois, out, float(spatial_scale), int(sampling_ratio), bool(aligned))
    return out


def roi_align_backward(grad_output, boxes, input_shape, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    """Gradient of roi_align with respect to its input, of shape input_shape.

    Deterministic: the kernel gives each thread whole channels, so every gradient plane has one
    writer adding in box order (csrc/vision/roi_align.cpp).
    """
    dy = nchw_input(grad_output, "grad_output")
    rois = roi_boxes(boxes, dy.dtype)
    dx = empty(shape4(input_shape, "input_shape"), dy.dtype)
    _C.roi_align_backward(dy, rois, dx, float(spatial_scale), int(sampling_ratio), bool(aligned))
    return dx
