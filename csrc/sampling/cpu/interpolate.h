// The interpolate kernels (sampling/sampling.h) on the CPU, bilinear and nearest, with
// torch.nn.functional.interpolate's semantics. Their arrays are checked by sampling/sampling.cpp.
#pragma once
#include "core/view.h"
#include "sampling/sampling.h"

namespace fastconv::sampling::cpu {

// input (N, C, H, W) -> out (N, C, OH, OW)
template <class T>
void interpolate_forward(const InterpolateShape& s, const InterpolateParams& p, const T* input, T* out);

// grad_out (N, C, OH, OW) -> grad_input (N, C, H, W), overwritten.
template <class T>
void interpolate_backward(const InterpolateShape& s, const InterpolateParams& p, const T* grad_out, T* grad_input);

}  // namespace fastconv::sampling::cpu
