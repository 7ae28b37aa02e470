// The roi_align kernels (roi/roi.h) on the CPU: each output bin averages bilinear samples of the
// input on a regular grid inside the bin, as torchvision's. Their arrays are checked by
// roi/roi.cpp.
#pragma once
#include "common/roi_boxes.h"

namespace fastconv::roi::cpu {

// input (N, C, H, W), boxes (K, 5) -> out (K, C, PH, PW)
template <class T>
void roi_align_forward(const RoiShape& s, const RoiAlignParams& p, const T* input, const T* boxes, T* out);

// grad_out (K, C, PH, PW) -> grad_input (N, C, H, W), overwritten.
template <class T>
void roi_align_backward(const RoiShape& s, const RoiAlignParams& p, const T* grad_out, const T* boxes,
                        T* grad_input);

}  // namespace fastconv::roi::cpu
