// The roi_pool kernels (roi/roi.h) on the CPU: each output bin is the maximum of the input
// pixels in its rounded sub-window of the box, as torchvision's. Their arrays are checked by
// roi/roi.cpp.
#pragma once
#include <cstdint>

#include "common/roi_boxes.h"

namespace fastconv::roi::cpu {

// input (N, C, H, W), boxes (K, 5) -> out (K, C, PH, PW) and argmax (K, C, PH, PW): the flat
// index into input of each maximum, -1 for an empty bin (whose output is 0).
template <class T>
void roi_pool_forward(const RoiShape& s, double spatial_scale, const T* input, const T* boxes, T* out,
                      std::int64_t* argmax);

// grad_out (K, C, PH, PW) routed through argmax -> grad_input (N, C, H, W), overwritten.
// Every argmax entry must be -1 or an index into the plane of its own channel (the backward
// gives each channel to one thread); the scatter checks each entry before it writes and raises
// ValueError naming the first bad one (grad_input is then partly written).
template <class T>
void roi_pool_backward(const RoiShape& s, const T* grad_out, const std::int64_t* argmax, T* grad_input);

}  // namespace fastconv::roi::cpu
