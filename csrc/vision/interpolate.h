// interpolate (torch.nn.functional.interpolate) for NCHW batches: bilinear and nearest.
#pragma once
#include "core/view.h"

namespace fastconv::vision {

enum class InterpolateMode { bilinear = 0, nearest = 1 };

struct InterpolateShape {
  index_t N, C, H, W, OH, OW;
};

struct InterpolateParams {
  InterpolateMode mode;
  bool align_corners;          // bilinear only
  double scale_h, scale_w;     // the caller's scale factors, used for the source index; <= 0: none
};

// input (N, C, H, W) -> out (N, C, OH, OW)
template <class T>
void interpolate_forward(const InterpolateShape& s, const InterpolateParams& p, const T* input, T* out);

// grad_out (N, C, OH, OW) -> grad_input (N, C, H, W), overwritten.
template <class T>
void interpolate_backward(const InterpolateShape& s, const InterpolateParams& p, const T* grad_out, T* grad_input);

}  // namespace fastconv::vision
