// conv_transpose2d through the equivalent convolution: a transposed convolution of x with w is
// conv2d's input gradient for grad_output = x. So its forward is conv2d_backward_input, its
// input gradient conv2d_forward, and its weight gradient conv2d_backward_weight with the roles
// of input and output gradient swapped, each with the algorithm the caller picked. No loop of
// its own except the bias.
#include "conv_transpose/cpu/conv_transpose.h"

#include "conv/cpu/kernels.h"
#include "core/parallel.h"

namespace fastconv::conv_transpose::cpu {

using conv::Algo;
using conv::Conv2dShape;

namespace {
// Per-channel sums of grad_y: the bias gradient of the 1x1 convolution whose output it is.
template <class T>
void conv_transpose2d_bias_grad(const Conv2dShape& s, const T* grad_y, T* grad_bias) {
  conv::cpu::conv2d_bias_grad(Conv2dShape({s.N, s.C, s.H, s.W}, {s.C, s.C, 1, 1}, {}), grad_y, grad_bias);
}
}  // namespace

template <class T>
void conv_transpose2d_forward(Algo algo, const Conv2dShape& s, const T* x, const T* w, const T* bias, T* y) {
  conv::cpu::conv2d_backward_input(algo, s, x, w, y);
  if (!bias) return;
  const index_t plane = s.H * s.W;
  parallel_for(0, s.N * s.C, 1, [&](index_t lo, index_t hi) {
    for (index_t i = lo; i < hi; ++i) {
      const T b = bias[i % s.C];
      T* out = y + i * plane;
      for (index_t j = 0; j < plane; ++j) out[j] += b;
    }
  });
}

template <class T>
void conv_transpose2d_backward(Algo input_algo, Algo weight_algo, const Conv2dShape& s, const T* x, const T* w,
                               const T* grad_y, T* grad_x, T* grad_w, T* grad_bias) {
  if (grad_x && grad_w && input_algo == Algo::im2col && weight_algo == Algo::im2col) {
    conv::cpu::conv2d_forward_and_backward_weight_im2col<T>(s, grad_y, w, grad_x, x, grad_w);
  } else {
    if (grad_x) conv::cpu::conv2d_forward<T>(input_algo, s, grad_y, w, nullptr, false, grad_x);
    if (grad_w) conv::cpu::conv2d_backward_weight<T>(weight_algo, s, grad_y, x, grad_w, nullptr);
  }
  if (grad_bias) conv_transpose2d_bias_grad(s, grad_y, grad_bias);
}

#define FASTCONV_INSTANTIATE(T)                                                                        \
  template void conv_transpose2d_forward<T>(Algo, const Conv2dShape&, const T*, const T*, const T*, T*);   \
  template void conv_transpose2d_backward<T>(Algo, Algo, const Conv2dShape&, const T*, const T*, const T*, T*, \
                                             T*, T*);
FASTCONV_INSTANTIATE(float)
FASTCONV_INSTANTIATE(double)
#undef FASTCONV_INSTANTIATE

}  // namespace fastconv::conv_transpose::cpu
