// conv_transpose2d as torch.nn.functional.conv_transpose2d: the adjoint of a conv2d. Each of
// its three kernels is one of conv2d's, run on the equivalent convolution (conv_transpose.cpp).
#pragma once
#include <array>

#include "conv/conv2d.h"

namespace fastconv::conv {

struct ConvTranspose2dParams {
  std::array<index_t, 2> stride{1, 1};
  std::array<index_t, 2> padding{0, 0};
  std::array<index_t, 2> output_padding{0, 0};
  std::array<index_t, 2> dilation{1, 1};
  index_t groups = 1;
};

// The conv2d whose input gradient is this transposed convolution: its input is our output
// (N, C_out, H_out, W_out), its output our input (N, C_in, H, W), and the weight is shared.
// Throws ValueError naming the argument (bad output_padding, a non-positive output size,
// mismatched channels).
Conv2dShape equivalent_conv2d(const std::array<index_t, 4>& input, const std::array<index_t, 4>& weight,
                              const ConvTranspose2dParams& params);

// With s = equivalent_conv2d(...): x has s.output_shape(), y s.input_shape(), w s.weight_shape().
// `algo` runs the conv2d kernel each one is: the input gradient for the forward, the forward
// for the input gradient, the weight gradient for the weight gradient (Python's algo="auto"
// times them as such, sharing conv2d's choices).
template <class T>
void conv_transpose2d_forward(Algo algo, const Conv2dShape& s, const T* x, const T* w, const T* bias, T* y);

// grad_x with input_algo, grad_w (and grad_bias) with weight_algo, each skipped when null;
// overwrites them. When both run im2col they share one column matrix of grad_y.
template <class T>
void conv_transpose2d_backward(Algo input_algo, Algo weight_algo, const Conv2dShape& s, const T* x, const T* w,
                               const T* grad_y, T* grad_x, T* grad_w, T* grad_bias);

}  // namespace fastconv::conv
