// The interpolate kernels (sampling/sampling.h) on the CPU, every mode, with
// torch.nn.functional.interpolate's semantics, for NCHW and for channels_last (NHWC memory)
// arrays. Their arrays are checked by sampling/sampling.cpp.
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

// The same over channels_last memory: input (N, H, W, C) -> out (N, OH, OW, C), and
// grad_out (N, OH, OW, C) -> grad_input (N, H, W, C); the same values, bit for bit.
template <class T>
void interpolate_forward_channels_last(const InterpolateShape& s, const InterpolateParams& p, const T* input, T* out);
template <class T>
void interpolate_backward_channels_last(const InterpolateShape& s, const InterpolateParams& p, const T* grad_out,
                                        T* grad_input);

}  // namespace fastconv::sampling::cpu
