"""roi_pool and its gradient, with torchvision.ops.roi_pool's arguments and semantics.

Box corners are rounded to pixels (half away from zero) after scaling, boxes are at least one
pixel, each bin is the floor/ceil window of its fractional edges clipped to the input, and an
empty bin gives 0.
"""
import numpy as np

from fastconv import _C
from fastconv.ops._alloc import empty
from fastconv.ops._checks import nchw_input, positive_pair, shape4
from fastconv.ops._roi import roi_boxes


def roi_pool(input, boxes, output_size, spatial_scale=1.0):
    """input (N, C, H, W), boxes (K, 5) or a list of (Ki, 4) -> (out, argmax), both (K, C, PH, PW).

    argmax holds the flat index into `input` of each bin's maximum (-1 for an empty bin), so
    that the backward needs nothing else.
    """
    x = nchw_input(input)
    rois = roi_boxes(boxes, x.dtype)
    ph, pw = positive_pair(output_size, "output_size")
    out = empty((rois.shape[0], x.shape[1], ph, pw), x.dtype)
    argmax = empty(out.shape, np.int64)
    _C.roi_pool_forward(x, rois, out, argmax, float(spatial_scale))
    return out, argmax


def roi_pool_backward(grad_output, argmax, input_shape):
    """Gradient of roi_pool with respect to its input: grad_output added at argmax."""
    dy = nchw_input(grad_output, "grad_output")
    argmax = np.ascontiguousarray(argmax)  # dtype, shape and values are checked by the kernel
    dx = empty(shape4(input_shape, "input_shape"), dy.dtype)
    _C.roi_pool_backward(dy, argmax, dx)
    return dx
