// Whole-array operations the autograd engine and the models run between kernels, threaded where
// numpy runs on one core: a copy between two strided views, a fill, and the in-place sum of a
// tensor's gradients. Small beside a convolution, on one core they kept the other cores
// waiting: in a ResNet-20 training step, the gradient sums of the tensors with two users and the
// option-A shortcut's subsampling copies took about a twentieth of the step.
#pragma once
#include "core/tensor_arg.h"

namespace fastconv {

// dst = src for two float arrays of one shape (at most 4-d) and dtype, each of any strides (a
// subsampled x[:, :, ::2, ::2], a channel slice); they must not share memory. ValueError or
// TypeError naming the argument otherwise.
void copy_view(const TensorArg& src, const TensorArg& dst);

// dst[...] = value (rounded to dst's dtype) for a float array of at most 4 dims, any strides.
void fill(const TensorArg& dst, double value);

// dst += src for two float arrays of one shape, dtype and strides, dense (their elements fill
// their memory without gaps, in some axis order: C-contiguous, channels_last, a transposed
// contiguous array), either the same memory or none of it shared.
void add_into(const TensorArg& dst, const TensorArg& src);

}  // namespace fastconv
