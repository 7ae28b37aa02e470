// roi_align (Mask R-CNN, He et al. 2017) with torchvision's semantics: each output bin averages
// bilinear samples of the input on a regular grid inside the bin.
#pragma once
#include "vision/roi_boxes.h"

namespace fastconv::vision {

struct RoiAlignParams {
  double spatial_scale;    // box coordinates * spatial_scale = input coordinates
  index_t sampling_ratio;  // samples per bin and axis; <= 0: ceil(roi size / output size)
  bool aligned;            // shift boxes by -0.5 pixel so that pixel centres are at +0.5
};

// input (N, C, H, W), boxes (K, 5) -> out (K, C, PH, PW)
template <class T>
void roi_align_forward(const RoiShape& s, const RoiAlignParams& p, const T* input, const T* boxes, T* out);

// grad_out (K, C, PH, PW) -> grad_input (N, C, H, W), overwritten.
template <class T>
void roi_align_backward(const RoiShape& s, const RoiAlignParams& p, const T* grad_out, const T* boxes,
                        T* grad_input);

}  // namespace fastconv::vision
