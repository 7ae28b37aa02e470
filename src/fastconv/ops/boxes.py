"""Box utilities of detection models, with torchvision's semantics: boxes are (N, 4) rows
[x1, y1, x2, y2] in pixels, float32 or float64.

box_iou, nms and batched_nms are torchvision.ops'; encode_boxes/decode_boxes are the Faster
R-CNN box deltas of torchvision's BoxCoder (Ren et al. 2015, eq. 2, scaled by `weights`, dw and
dh clamped at log(1000/16) when decoding); grid_anchors is torchvision's AnchorGenerator for one
feature map; match_boxes is its Matcher. They run as compiled kernels (csrc/boxes/): they sit in
the hot loop of every training step of a region proposal network, and NMS is a sequential scan.

Where torchvision gives NaN or leaves the result to the sort's whims, these give an answer or a
clear error: the IoU of two boxes whose union is empty (zero-area boxes) is 0, not 0/0; NaN or
infinite scores or box coordinates are refused by nms (torchvision sorts NaN first and keeps it);
match_boxes with no ground truth marks every prediction as background (-1) instead of raising.
"""
import math

import numpy as np

from fastconv.backend import array_module, device_of, empty, kernels
from fastconv.ops._checks import contiguous, float_array, same_dtype

# torchvision.models.detection._utils: the largest dw, dh a decoded box may grow by.
BBOX_XFORM_CLIP = math.log(1000.0 / 16)
# Matcher's marks for predictions that match no ground truth.
BELOW_LOW_THRESHOLD, BETWEEN_THRESHOLDS = -1, -2


def _boxes(x, name):
    x = contiguous(float_array(x, name))
    if x.ndim != 2 or x.shape[1] != 4:
        raise ValueError(f"{name}: expected an (N, 4) array [x1, y1, x2, y2], got shape {x.shape}")
    return x


def _weights(weights):
    weights = tuple(float(w) for w in weights)
    if len(weights) != 4 or not all(math.isfinite(w) and w > 0 for w in weights):
        raise ValueError(f"weights: expected four positive numbers (wx, wy, ww, wh), got {weights}")
    return weights


def box_area(boxes):
    """(N, 4) -> (N,): (x2 - x1) * (y2 - y1)."""
    boxes = _boxes(boxes, "boxes")
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def box_iou(boxes1, boxes2):
    """(N, 4), (M, 4) -> (N, M) intersection over union (0 where the union is empty)."""
    lib = kernels(boxes1, boxes2, op="box_iou")
    boxes1, boxes2 = _boxes(boxes1, "boxes1"), _boxes(boxes2, "boxes2")
    same_dtype({"boxes1": boxes1, "boxes2": boxes2})
    out = empty((len(boxes1), len(boxes2)), boxes1.dtype, device_of(boxes1))
    lib.box_iou(boxes1, boxes2, out)
    return out


def _nms(boxes, scores, idxs, iou_threshold, op):
    lib = kernels(boxes, scores, *(() if idxs is None else (idxs,)), op=op)
    boxes = _boxes(boxes, "boxes")
    scores = contiguous(float_array(scores, "scores"))
    same_dtype({"boxes": boxes, "scores": scores})
    if scores.shape != (len(boxes),):
        raise ValueError(f"scores: expected shape ({len(boxes)},) to match boxes, got {scores.shape}")
    if idxs is not None:
        idxs = contiguous(array_module(idxs).asarray(idxs))
        if idxs.dtype.kind not in "iu":
            raise TypeError(f"idxs: expected an integer array of categories, got dtype {idxs.dtype}")
        idxs = idxs.astype(np.int64, copy=False)
    keep = empty((len(boxes),), np.int64, device_of(boxes))
    kept = lib.nms(boxes, scores, idxs, keep, float(iou_threshold))
    return keep[:kept]


def nms(boxes, scores, iou_threshold):
    """torchvision.ops.nms: the indices (int64) of the boxes greedy non-maximum suppression
    keeps, by decreasing score (equal scores in index order). A box is dropped when it overlaps a
    kept, higher-scoring box by IoU > iou_threshold."""
    return _nms(boxes, scores, None, iou_threshold, "nms")


def batched_nms(boxes, scores, idxs, iou_threshold):
    """torchvision.ops.batched_nms: nms within each category of `idxs` (N,) separately; the
    kept indices of all categories together, by decreasing score."""
    if idxs is None:
        raise TypeError("idxs: expected an (N,) integer array of categories, got None")
    return _nms(boxes, scores, idxs, iou_threshold, "batched_nms")


def encode_boxes(reference_boxes, proposals, weights=(1.0, 1.0, 1.0, 1.0)):
    """The deltas (dx, dy, dw, dh) that move each proposal onto its reference box:
    dx = wx (x_ref - x_prop) / w_prop, dw = ww log(w_ref / w_prop), on box centres and sizes."""
    lib = kernels(reference_boxes, proposals, op="encode_boxes")
    reference, proposals = _boxes(reference_boxes, "reference_boxes"), _boxes(proposals, "proposals")
    same_dtype({"reference_boxes": reference, "proposals": proposals})
    if reference.shape != proposals.shape:
        raise ValueError(f"proposals: expected shape {reference.shape} to match reference_boxes, got {proposals.shape}")
    out = empty(reference.shape, reference.dtype, device_of(reference))
    lib.encode_boxes(reference, proposals, out, _weights(weights))
    return out


def decode_boxes(rel_codes, boxes, weights=(1.0, 1.0, 1.0, 1.0), bbox_xform_clip=BBOX_XFORM_CLIP):
    """The inverse of encode_boxes: rel_codes (N, 4k), k sets of deltas per box, applied to
    boxes (N, 4) -> (N, 4k) boxes. dw, dh (after dividing by ww, wh) are clamped at bbox_xform_clip
    so that exp() cannot overflow."""
    lib = kernels(rel_codes, boxes, op="decode_boxes")
    rel_codes, boxes = contiguous(float_array(rel_codes, "rel_codes")), _boxes(boxes, "boxes")
    same_dtype({"rel_codes": rel_codes, "boxes": boxes})
    if rel_codes.ndim != 2 or rel_codes.shape[1] % 4 or len(rel_codes) != len(boxes):
        raise ValueError(f"rel_codes: expected an ({len(boxes)}, 4k) array to match boxes, got shape {rel_codes.shape}")
    out = empty(rel_codes.shape, rel_codes.dtype, device_of(rel_codes))
    lib.decode_boxes(rel_codes, boxes, out, _weights(weights), float(bbox_xform_clip))
    return out


def grid_anchors(feature_size, stride, sizes, aspect_ratios, dtype=np.float32):
    """torchvision's AnchorGenerator on one (H, W) feature map whose cells are stride (sy, sx)
    pixels apart: (H * W * A, 4) anchors, cell by cell (row-major), A = len(aspect_ratios) *
    len(sizes) per cell (aspect ratio h / w outer, size inner), each centred on its cell's
    top-left corner and rounded to whole pixels."""
    height, width = (int(v) for v in feature_size)
    stride_y, stride_x = (float(v) for v in stride)
    if height < 0 or width < 0:
        raise ValueError(f"feature_size: expected non-negative (H, W), got {feature_size}")
    if np.dtype(dtype) not in (np.float32, np.float64):
        raise TypeError(f"dtype: expected float32 or float64, got {np.dtype(dtype)}")
    sizes = np.ascontiguousarray(sizes, dtype=dtype).reshape(-1)
    ratios = np.ascontiguousarray(aspect_ratios, dtype=dtype).reshape(-1)
    out = empty((height * width * len(sizes) * len(ratios), 4), dtype)
    kernels(op="grid_anchors").grid_anchors(sizes, ratios, out, height, width, stride_y, stride_x)
    return out


def match_boxes(match_quality_matrix, high_threshold, low_threshold, allow_low_quality_matches=False):
    """torchvision's Matcher: quality (G, N) of G ground truths against N predictions (their
    IoU) -> (N,) int64, each prediction's best ground truth where its quality is at least
    high_threshold, BELOW_LOW_THRESHOLD (-1) under low_threshold, BETWEEN_THRESHOLDS (-2)
    between. allow_low_quality_matches keeps the match of every prediction that some ground
    truth rates highest (Ren et al. 2015, 3.1.2), so that every ground truth gets an anchor."""
    lib = kernels(match_quality_matrix, op="match_boxes")
    quality = contiguous(float_array(match_quality_matrix, "match_quality_matrix"))
    if quality.ndim != 2:
        raise ValueError(f"match_quality_matrix: expected a (G, N) array, got shape {quality.shape}")
    matches = empty((quality.shape[1],), np.int64, device_of(quality))
    lib.match_boxes(quality, matches, float(high_threshold), float(low_threshold), bool(allow_low_quality_matches))
    return matches


def clip_boxes_to_image(boxes, size):
    """Boxes (N, 4) clipped to an image of size (H, W), as torchvision.ops.clip_boxes_to_image."""
    boxes = _boxes(boxes, "boxes")
    height, width = size
    xp = array_module(boxes)
    return xp.stack([boxes[:, 0].clip(0, width), boxes[:, 1].clip(0, height),
                     boxes[:, 2].clip(0, width), boxes[:, 3].clip(0, height)], axis=1)


def remove_small_boxes(boxes, min_size):
    """torchvision.ops.remove_small_boxes: indices of the boxes at least min_size on both sides."""
    boxes = _boxes(boxes, "boxes")
    xp = array_module(boxes)
    return xp.nonzero(((boxes[:, 2] - boxes[:, 0]) >= min_size) & ((boxes[:, 3] - boxes[:, 1]) >= min_size))[0]
