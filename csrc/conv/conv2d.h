// Convolution geometry shared by every conv2d algorithm, and the im2col + GEMM kernels.
// Semantics follow torch.nn.functional.conv2d (cross-correlation, NCHW, groups).
#pragma once
#include <array>

#include "core/view.h"

namespace fastconv::conv {

// Arguments after Python has normalised them (padding may be asymmetric: 'same' with an even
// kernel puts the extra row/column at the end, as PyTorch does).
struct Conv2dParams {
  std::array<index_t, 2> stride{1, 1};
  std::array<index_t, 2> pad_begin{0, 0};  // top, left
  std::array<index_t, 2> pad_end{0, 0};    // bottom, right; negative crops the input's end
  std::array<index_t, 2> dilation{1, 1};
  index_t groups = 1;
};

// Every size of one convolution, checked for consistency on construction.
struct Conv2dShape {
  index_t N, C, H, W;  // input
  index_t K, R, S;     // weight: K x (C / groups) x R x S
  index_t P, Q;        // output
  Conv2dParams p;

  // input (N, C, H, W), weight (K, C/groups, R, S); throws ValueError naming the problem.
  Conv2dShape(const std::array<index_t, 4>& input, const std::array<index_t, 4>& weight,
              const Conv2dParams& params);

  index_t groups() const { return p.groups; }
  index_t C_per_group() const { return C / p.groups; }
  index_t K_per_group() const { return K / p.groups; }
  index_t column_rows() const { return C * R * S; }  // rows of the im2col matrix
  index_t pixels() const { return P * Q; }
  std::array<index_t, 4> output_shape() const { return {N, K, P, Q}; }
  std::array<index_t, 4> input_shape() const { return {N, C, H, W}; }
  std::array<index_t, 4> weight_shape() const { return {K, C / p.groups, R, S}; }
  // A 1x1, stride-1, unpadded convolution reads its input as the column matrix itself.
  bool is_pointwise() const;
};

// Largest column buffer im2col builds at once; the batch is processed in chunks of images
// that fit, and one image's columns are the floor (a single image is never split).
constexpr std::size_t kColumnBudgetBytes = 8u << 20;

template <class T>
void conv2d_forward(const Conv2dShape& s, const T* x, const T* w, const T* bias, T* y);

// grad_x = conv2d's input gradient (GEMM + col2im). Overwrites grad_x.
template <class T>
void conv2d_backward_input(const Conv2dShape& s, const T* grad_y, const T* w, T* grad_x);

// grad_w (and grad_bias if not null) of conv2d. Overwrites both.
template <class T>
void conv2d_backward_weight(const Conv2dShape& s, const T* x, const T* grad_y, T* grad_w,
                            T* grad_bias);

// grad_bias[k] = sum of grad_y[n, k, :] over images and pixels (accumulated in double).
template <class T>
void channel_sums(const T* grad_y, index_t N, index_t K, index_t pixels, T* grad_bias);

}  // namespace fastconv::conv
