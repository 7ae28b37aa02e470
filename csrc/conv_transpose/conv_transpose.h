// conv_transpose2d as torch.nn.functional.conv_transpose2d: the adjoint of a conv2d. Each of its
// three kernels can be one of conv2d's, run on the equivalent convolution (cpu/conv_transpose.h);
// its forward can also run "subpixel", its own (cpu/subpixel.cpp). The entry points check their
// arrays against that convolution's shape and that the algorithms can run it.
#pragma once
#include <array>
#include <string>

#include "conv/conv.h"
#include "core/tensor_arg.h"

namespace fastconv::conv_transpose {

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
conv::Conv2dShape equivalent_conv2d(const std::array<index_t, 4>& input, const std::array<index_t, 4>& weight,
                                    const ConvTranspose2dParams& params);

// (N, C_out, H_out, W_out) of input (N, C_in, H, W) and weight (C_in, C_out/groups, R, S).
std::array<index_t, 4> conv_transpose2d_output_shape(const std::array<index_t, 4>& input,
                                                     const std::array<index_t, 4>& weight,
                                                     const ConvTranspose2dParams& params);

// Why `algo` ("subpixel" or one of conv2d's) cannot run this transposed convolution, or nullptr.
// ValueError for an unknown name or a bad shape.
const char* conv_transpose2d_unsupported_reason(const std::string& algo, const std::array<index_t, 4>& input,
                                               const std::array<index_t, 4>& weight,
                                               const ConvTranspose2dParams& params);

// out = conv_transpose2d(input, weight) + bias (absent: none). `algo`: "subpixel", or the conv2d
// algorithm whose input gradient runs it (Python's algo="auto" times them as such).
void conv_transpose2d_forward(const TensorArg& input, const TensorArg& weight, const TensorArg& bias,
                              const TensorArg& out, const ConvTranspose2dParams& params, const std::string& algo);

// grad_input with input_algo (conv2d's forward), grad_weight and grad_bias with weight_algo
// (conv2d's weight gradient), each skipped when absent; overwrites them. "subpixel" runs
// implicit GEMM's forward for the input gradient (im2col where it cannot) and its own phase
// GEMMs for the weight gradient.
void conv_transpose2d_backward(const TensorArg& input, const TensorArg& weight, const TensorArg& grad_output,
                               const TensorArg& grad_input, const TensorArg& grad_weight, const TensorArg& grad_bias,
                               const ConvTranspose2dParams& params, const std::string& input_algo,
                               const std::string& weight_algo);

}  // namespace fastconv::conv_transpose
