// 2-d pooling over NCHW as torch.nn.functional: max_pool2d (with PyTorch's flat h*W+w indices
// per plane), avg_pool2d and adaptive_avg_pool2d, forward and backward. Each entry point checks
// its arrays against the pooling's shape and runs the kernel of their dtype (cpu/pool.h).
#pragma once
#include <array>

#include "core/tensor_arg.h"

namespace fastconv::pool {

struct Pool2dWindow {
  std::array<index_t, 2> kernel{1, 1}, stride{1, 1}, padding{0, 0}, dilation{1, 1};
  bool ceil_mode = false;
};

struct Pool2dShape {
  index_t N, C, H, W;  // input
  index_t P, Q;        // output
  Pool2dWindow win;    // unused by adaptive pooling

  // PyTorch's pooling_output_shape and pool2d_shape_check; ValueError naming the argument.
  static Pool2dShape windowed(const std::array<index_t, 4>& input, const Pool2dWindow& win);
  static Pool2dShape adaptive(const std::array<index_t, 4>& input, const std::array<index_t, 2>& output);

  std::array<index_t, 4> input_shape() const { return {N, C, H, W}; }
  std::array<index_t, 4> output_shape() const { return {N, C, P, Q}; }
};

std::array<index_t, 4> pool2d_output_shape(const std::array<index_t, 4>& input, const Pool2dWindow& win);

// indices may be absent (inference): only the maxima are written.
void max_pool2d_forward(const TensorArg& input, const TensorArg& out, const TensorArg& indices,
                        const Pool2dWindow& win);
// The shapes come from the arrays: grad_input's is the input's, grad_output's the output's.
void max_pool2d_backward(const TensorArg& grad_output, const TensorArg& indices, const TensorArg& grad_input);

// A window of dilation 1; divisor_override 0: none.
void avg_pool2d_forward(const TensorArg& input, const TensorArg& out, const Pool2dWindow& win,
                        bool count_include_pad, index_t divisor_override);
void avg_pool2d_backward(const TensorArg& grad_output, const TensorArg& grad_input, const Pool2dWindow& win,
                         bool count_include_pad, index_t divisor_override);

// The output size is the smaller array's: out's, grad_output's.
void adaptive_avg_pool2d_forward(const TensorArg& input, const TensorArg& out);
void adaptive_avg_pool2d_backward(const TensorArg& grad_output, const TensorArg& grad_input);

}  // namespace fastconv::pool
