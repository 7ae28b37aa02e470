// roi_align (Mask R-CNN, He et al. 2017) and roi_pool (Fast R-CNN, Girshick 2015) with
// torchvision's semantics, over an NCHW input and (K, 5) boxes [batch_index, x1, y1, x2, y2]
// (common/roi_boxes.h). Each entry point checks its arrays, and that every box names an image of
// the input, then runs the kernel of their dtype (cpu/roi_align.h, cpu/roi_pool.h).
#pragma once
#include "common/roi_boxes.h"
#include "core/tensor_arg.h"

namespace fastconv::roi {

// input (N, C, H, W), boxes (K, 5) -> out (K, C, PH, PW)
void roi_align_forward(const TensorArg& input, const TensorArg& boxes, const TensorArg& out, const RoiAlignParams& p);
// grad_output (K, C, PH, PW) -> grad_input (N, C, H, W), overwritten.
void roi_align_backward(const TensorArg& grad_output, const TensorArg& boxes, const TensorArg& grad_input,
                        const RoiAlignParams& p);

// input (N, C, H, W), boxes (K, 5) -> out and argmax (K, C, PH, PW): the flat index into input of
// each maximum, -1 for an empty bin (whose output is 0).
void roi_pool_forward(const TensorArg& input, const TensorArg& boxes, const TensorArg& out, const TensorArg& argmax,
                      double spatial_scale);
// grad_output (K, C, PH, PW) routed through argmax -> grad_input (N, C, H, W), overwritten;
// ValueError naming the first argmax entry that is neither -1 nor an index into its channel.
void roi_pool_backward(const TensorArg& grad_output, const TensorArg& argmax, const TensorArg& grad_input);

}  // namespace fastconv::roi
