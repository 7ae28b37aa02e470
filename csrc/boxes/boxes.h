// Box utilities of detection models with torchvision's semantics: boxes are rows
// [x1, y1, x2, y2] in pixels. They are compiled rather than numpy because they sit in the hot
// loop of every training step of a region proposal network (thousands of anchors matched to the
// ground truth, encoded, decoded and filtered by NMS per image and step), and NMS is a
// sequential greedy scan that vectorised array code cannot express without an O(N^2) matrix
// per step. Each entry point checks its arrays (shapes, dtypes, finite scores) before any
// kernel touches memory, then runs the kernel of their dtype (cpu/box_ops.h).
#pragma once
#include <cstdint>

#include "core/tensor_arg.h"

namespace fastconv::boxes {

// boxes1 (N, 4), boxes2 (M, 4) -> out (N, M): intersection over union; 0 where the union is
// empty (torchvision gives 0/0 = NaN there).
void box_iou(const TensorArg& boxes1, const TensorArg& boxes2, const TensorArg& out);

// Greedy non-maximum suppression over boxes (N, 4) and scores (N,): writes the kept indices,
// by decreasing score (ties in index order), to the front of keep (N,) int64 and returns how
// many. With idxs (N,) int64 given, boxes suppress only boxes of the same idx (batched_nms).
std::int64_t nms(const TensorArg& boxes, const TensorArg& scores, const TensorArg& idxs, const TensorArg& keep,
                 double iou_threshold);

// Faster R-CNN box deltas (Girshick 2015, eq. in section 3.1.2 of Ren et al. 2015), scaled by
// weights (wx, wy, ww, wh): reference (N, 4) relative to proposals (N, 4) -> out (N, 4).
void encode_boxes(const TensorArg& reference, const TensorArg& proposals, const TensorArg& out,
                  const double weights[4]);
// The inverse: deltas (N, 4k) applied to boxes (N, 4) -> out (N, 4k), with dw and dh clamped at
// bbox_xform_clip (torchvision's log(1000/16)).
void decode_boxes(const TensorArg& deltas, const TensorArg& boxes, const TensorArg& out, const double weights[4],
                  double bbox_xform_clip);

// torchvision's AnchorGenerator for one feature map of H x W cells at stride (sy, sx): for each
// cell (row-major) the A = len(aspect_ratios) * len(sizes) anchors (ratio-major), centred on
// the cell's corner (x * sx, y * sy), rounded to whole pixels -> out (H * W * A, 4).
void grid_anchors(const TensorArg& sizes, const TensorArg& aspect_ratios, const TensorArg& out, std::int64_t H,
                  std::int64_t W, double stride_y, double stride_x);

// torchvision's Matcher: quality (G, N), ground truths by predictions (IoU) -> matches (N,)
// int64: the best ground truth of each prediction, -1 below low_threshold, -2 between the
// thresholds; with allow_low_quality_matches, every prediction that is some ground truth's best
// keeps that match. No ground truth (G = 0): every prediction is -1.
void match_boxes(const TensorArg& quality, const TensorArg& matches, double high_threshold, double low_threshold,
                 bool allow_low_quality_matches);

}  // namespace fastconv::boxes
