// conv2d on the CPU: the one switch from an algorithm to its kernels (kernels.h), used by
// conv/conv.cpp and conv_transpose. A gradient runs the kernel that conv.h's
// input_gradient_kernel or weight_gradient_kernel names for the algorithm.
#include "conv/cpu/kernels.h"

#include <stdexcept>

#include "core/parallel.h"

namespace fastconv::conv::cpu {

template <class T>
void transform_weight(Algo algo, const Conv2dShape& s, WeightUse use, const T* w, T* out, index_t tile) {
  if (transformed_weight_size(algo, s, use, tile) == 0) return;
  switch (algo) {
    case Algo::winograd_2x3: return winograd_transform_weight<2, 3>(s, use, w, out);
    case Algo::winograd_4x3: return winograd_transform_weight<4, 3>(s, use, w, out);
    case Algo::winograd_2x5: return winograd_transform_weight<2, 5>(s, use, w, out);
    case Algo::winograd_4x5: return winograd_transform_weight<4, 5>(s, use, w, out);
    case Algo::winograd_2x7: return winograd_transform_weight<2, 7>(s, use, w, out);
    case Algo::winograd_4x2: return winograd_transform_weight<4, 2>(s, use, w, out);
    case Algo::fft: return fft_transform_weight(s, use, tile ? tile : fft_weight_tile(s, use), w, out);
    default: return;
  }
}

template <class T>
void add_residual(const T* src, const T* residual, index_t n, bool relu, T* dst) {
  if (relu)
    for (index_t i = 0; i < n; ++i) {
      const T v = src[i] + residual[i];
      dst[i] = v < T(0) ? T(0) : v;
    }
  else
    for (index_t i = 0; i < n; ++i) dst[i] = src[i] + residual[i];
}

template <class T>
void add_residual_pass(T* y, const T* residual, index_t n, bool relu) {
  parallel_for(0, n, 1 << 15, [&](index_t lo, index_t hi) { add_residual(y + lo, residual + lo, hi - lo, relu, y + lo); });
}

namespace {

template <class T>
void conv2d_forward_shuffled(Algo algo, const Conv2dShape& s, const T* x, const T* w, const T* bias, bool relu, T* y,
                             const T* u, index_t f) {
  const T* none = nullptr;
  switch (algo) {
    case Algo::winograd_2x3: return conv2d_forward_winograd<2, 3>(s, x, w, u, bias, none, relu, y, f);
    case Algo::winograd_4x3: return conv2d_forward_winograd<4, 3>(s, x, w, u, bias, none, relu, y, f);
    case Algo::winograd_2x5: return conv2d_forward_winograd<2, 5>(s, x, w, u, bias, none, relu, y, f);
    case Algo::winograd_4x5: return conv2d_forward_winograd<4, 5>(s, x, w, u, bias, none, relu, y, f);
    case Algo::winograd_2x7: return conv2d_forward_winograd<2, 7>(s, x, w, u, bias, none, relu, y, f);
    case Algo::winograd_4x2: return conv2d_forward_winograd<4, 2>(s, x, w, u, bias, none, relu, y, f);
    default: throw std::logic_error("conv2d_forward: pixel_shuffle runs Winograd only (conv.cpp checks)");
  }
}

template <class T>
void conv2d_backward_input_unshuffled(Algo algo, const Conv2dShape& s, const T* grad_y, const T* w, T* grad_x,
                                      const T* u, index_t f) {
  switch (algo) {
    case Algo::winograd_2x3: return conv2d_backward_input_winograd<2, 3>(s, grad_y, w, u, grad_x, f);
    case Algo::winograd_4x3: return conv2d_backward_input_winograd<4, 3>(s, grad_y, w, u, grad_x, f);
    case Algo::winograd_2x5: return conv2d_backward_input_winograd<2, 5>(s, grad_y, w, u, grad_x, f);
    case Algo::winograd_4x5: return conv2d_backward_input_winograd<4, 5>(s, grad_y, w, u, grad_x, f);
    case Algo::winograd_2x7: return conv2d_backward_input_winograd<2, 7>(s, grad_y, w, u, grad_x, f);
    case Algo::winograd_4x2: return conv2d_backward_input_winograd<4, 2>(s, grad_y, w, u, grad_x, f);
    default: throw std::logic_error("conv2d_backward_input: pixel_shuffle runs Winograd only (conv.cpp checks)");
  }
}

}  // namespace

template <class T>
void conv2d_forward(Algo algo, const Conv2dShape& s, const T* x, const T* w, const T* bias, bool relu, T* y,
                    const T* transformed, const T* residual, index_t shuffle) {
  if (shuffle > 1) return conv2d_forward_shuffled(algo, s, x, w, bias, relu, y, transformed, shuffle);
  switch (algo) {
    case Algo::im2col: return conv2d_forward_im2col(s, x, w, bias, residual, relu, y);
    case Algo::implicit_gemm: return conv2d_forward_implicit_gemm(s, x, w, bias, residual, relu, y);
    case Algo::direct:
      conv2d_forward_direct(s, x, w, bias, relu && !residual, y);
      break;
    case Algo::depthwise:
      conv2d_forward_depthwise(s, x, w, bias, relu && !residual, y);
      break;
    case Algo::winograd_2x3: return conv2d_forward_winograd<2, 3>(s, x, w, transformed, bias, residual, relu, y);
    case Algo::winograd_4x3: return conv2d_forward_winograd<4, 3>(s, x, w, transformed, bias, residual, relu, y);
    case Algo::winograd_2x5: return conv2d_forward_winograd<2, 5>(s, x, w, transformed, bias, residual, relu, y);
    case Algo::winograd_4x5: return conv2d_forward_winograd<4, 5>(s, x, w, transformed, bias, residual, relu, y);
    case Algo::winograd_2x7: return conv2d_forward_winograd<2, 7>(s, x, w, transformed, bias, residual, relu, y);
    case Algo::winograd_4x2: return conv2d_forward_winograd<4, 2>(s, x, w, transformed, bias, residual, relu, y);
    case Algo::fft: return conv2d_forward_fft(s, x, w, transformed, bias, residual, relu, y);
  }
  // direct and depthwise stored y without the residual (and so without the ReLU): a pass adds both
  if (residual) add_residual_pass(y, residual, s.N * s.K * s.pixels(), relu);
}

template <class T>
void conv2d_backward_input(Algo algo, const Conv2dShape& s, const T* grad_y, const T* w, T* grad_x,
                           const T* transformed, index_t shuffle) {
  if (shuffle > 1) return conv2d_backward_input_unshuffled(algo, s, grad_y, w, grad_x, transformed, shuffle);
  switch (input_gradient_kernel(algo, s)) {
    case Algo::im2col: return conv2d_backward_input_im2col(s, grad_y, w, grad_x);
    case Algo::implicit_gemm: return conv2d_backward_input_implicit_gemm(s, grad_y, w, grad_x);
    case Algo::direct: return conv2d_backward_input_direct(s, grad_y, w, grad_x);
    case Algo::depthwise: return conv2d_backward_input_depthwise(s, grad_y, w, grad_x);
    case Algo::winograd_2x3: return conv2d_backward_input_winograd<2, 3>(s, grad_y, w, transformed, grad_x);
    case Algo::winograd_4x3: return conv2d_backward_input_winograd<4, 3>(s, grad_y, w, transformed, grad_x);
    case Algo::winograd_2x5: return conv2d_backward_input_winograd<2, 5>(s, grad_y, w, transformed, grad_x);
    case Algo::winograd_4x5: return conv2d_backward_input_winograd<4, 5>(s, grad_y, w, transformed, grad_x);
    case Algo::winograd_2x7: return conv2d_backward_input_winograd<2, 7>(s, grad_y, w, transformed, grad_x);
    case Algo::winograd_4x2: return conv2d_backward_input_winograd<4, 2>(s, grad_y, w, transformed, grad_x);
    case Algo::fft: return conv2d_backward_input_fft(s, grad_y, w, transformed, grad_x);
  }
}

template <class T>
void conv2d_backward_weight(Algo algo, const Conv2dShape& s, const T* x, const T* grad_y, T* grad_w, T* grad_bias) {
  switch (weight_gradient_kernel(algo, s)) {
    case Algo::im2col:
    case Algo::implicit_gemm: return conv2d_backward_weight_im2col(s, x, grad_y, grad_w, grad_bias);
    case Algo::direct: return conv2d_backward_weight_direct(s, x, grad_y, grad_w, grad_bias);
    case Algo::depthwise: return conv2d_backward_weight_depthwise(s, x, grad_y, grad_w, grad_bias);
    case Algo::winograd_2x3: return conv2d_backward_weight_winograd<2, 3>(s, x, grad_y, grad_w, grad_bias);
    case Algo::winograd_4x3: return conv2d_backward_weight_winograd<4, 3>(s, x, grad_y, grad_w, grad_bias);
    case Algo::winograd_2x5: return conv2d_backward_weight_winograd<2, 5>(s, x, grad_y, grad_w, grad_bias);
    case Algo::winograd_4x5: return conv2d_backward_weight_winograd<4, 5>(s, x, grad_y, grad_w, grad_bias);
    case Algo::winograd_2x7: return conv2d_backward_weight_winograd<2, 7>(s, x, grad_y, grad_w, grad_bias);
    case Algo::winograd_4x2: return conv2d_backward_weight_winograd<4, 2>(s, x, grad_y, grad_w, grad_bias);
    case Algo::fft: return conv2d_backward_weight_fft(s, x, grad_y, grad_w, grad_bias);
  }
}

template <class T>
void conv2d_backward(Algo algo, const Conv2dShape& s, const T* x, const T* w, const T* grad_y, T* grad_x, T* grad_w,
                     T* grad_bias) {
  if (input_gradient_kernel(algo, s) == Algo::depthwise && weight_gradient_kernel(algo, s) == Algo::depthwise)
    return conv2d_backward_depthwise(s, x, w, grad_y, grad_x, grad_w, grad_bias);
  conv2d_backward_input(algo, s, grad_y, w, grad_x);
  conv2d_backward_weight(algo, s, x, grad_y, grad_w, grad_bias);
}

#define FASTCONV_INSTANTIATE(T)                                                                          \
  template void transform_weight<T>(Algo, const Conv2dShape&, WeightUse, const T*, T*, index_t);         \
  template void add_residual<T>(const T*, const T*, index_t, bool, T*);                                 \
  template void add_residual_pass<T>(T*, const T*, index_t, bool);                                       \
  template void conv2d_forward<T>(Algo, const Conv2dShape&, const T*, const T*, const T*, bool, T*, const T*,  \
                                  const T*, index_t);                                                   \
  template void conv2d_backward_input<T>(Algo, const Conv2dShape&, const T*, const T*, T*, const T*, index_t); \
  template void conv2d_backward_weight<T>(Algo, const Conv2dShape&, const T*, const T*, T*, T*);        \
  template void conv2d_backward<T>(Algo, const Conv2dShape&, const T*, const T*, const T*, T*, T*, T*);
FASTCONV_INSTANTIATE(float)
FASTCONV_INSTANTIATE(double)
#undef FASTCONV_INSTANTIATE

}  // namespace fastconv::conv::cpu
