// 2-d pooling over NCHW as torch.nn.functional: max_pool2d (with PyTorch's flat h*W+w indices
// per plane), avg_pool2d and adaptive_avg_pool2d, forward and backward.
#pragma once
#include <array>
#include <cstdint>

#include "core/view.h"

namespace fastconv::vision {

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

// indices may be null (inference): only the maxima are written.
template <class T>
void max_pool2d_forward(const Pool2dShape& s, const T* x, T* y, std::int64_t* indices);
template <class T>
void max_pool2d_backward(const Pool2dShape& s, const T* grad_y, const std::int64_t* indices, T* grad_x);

// divisor_override 0: none.
template <class T>
void avg_pool2d_forward(const Pool2dShape& s, bool count_include_pad, index_t divisor_override, const T* x, T* y);
template <class T>
void avg_pool2d_backward(const Pool2dShape& s, bool count_include_pad, index_t divisor_override,
                         const T* grad_y, T* grad_x);

template <class T>
void adaptive_avg_pool2d_forward(const Pool2dShape& s, const T* x, T* y);
template <class T>
void adaptive_avg_pool2d_backward(const Pool2dShape& s, const T* grad_y, T* grad_x);

}  // namespace fastconv::vision
