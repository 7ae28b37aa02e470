"""Boxes for roi_pool and roi_align, in torchvision's two accepted forms."""
import numpy as np

from fastconv.ops._checks import float_array


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
        rows = [np.concatenate([np.full((len(b), 1), i, dtype), b], axis=1) for i, b in enumerate(parts)]
        return np.ascontiguousarray(np.concatenate(rows) if rows else np.zeros((0, 5), dtype))
    boxes = float_array(boxes, "boxes")
    if boxes.ndim != 2 or boxes.shape[1] != 5:
        raise ValueError("boxes: expected a (K, 5) array [batch_index, x1, y1, x2, y2] or a list of (Ki, 4) "
                         f"arrays, got shape {boxes.shape}")
    _same_dtype(boxes, dtype, "boxes")
    return np.ascontiguousarray(boxes)


def _same_dtype(array, dtype, name):
    if array.dtype != dtype:
        raise TypeError(f"{name}: dtype {array.dtype} does not match input's {np.dtype(dtype)}")
