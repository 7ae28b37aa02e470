// conv_transpose2d through the equivalent convolution: a transposed convolution of x with w is
// conv2d's input gradient for grad_output = x. So its forward is conv2d_backward_input, its
// input gradient conv2d_forward, and its weight gradient conv2d_backward_weight with the roles
// of input and output gradient swapped, each with the algorithm the caller picked. No loop of
// its own except the bias.
#include "conv/conv_transpose.h"

#include <algorithm>

#include "core/errors.h"
#include "core/parallel.h"

namespace fastconv::conv {

Conv2dShape equivalent_conv2d(const std::array<index_t, 4>& input, const std::array<index_t, 4>& weight,
                              const ConvTranspose2dParams& p) {
  // weight is (C_in, C_out / groups, R, S): as a conv2d weight, K = C_in, C = C_out.
  check(p.groups >= 1, "groups: must be >= 1, got ", p.groups);
  check(input[1] % p.groups == 0, "input: ", input[1], " channels are not divisible by groups=", p.groups);
  check(weight[0] == input[1], "weight: expected ", input[1], " input channels (dimension 0), got ", weight[0]);
  std::array<index_t, 2> out{}, pad_end{};
  for (int d = 0; d < 2; ++d) {
    check(p.stride[d] >= 1, "stride: must be >= 1, got ", p.stride[d]);
    check(p.dilation[d] >= 1, "dilation: must be >= 1, got ", p.dilation[d]);
    check(p.padding[d] >= 0, "padding: must be >= 0, got ", p.padding[d]);
    // PyTorch: "output padding must be smaller than either stride or dilation".
    check(p.output_padding[d] >= 0 && p.output_padding[d] < std::max(p.stride[d], p.dilation[d]),
          "output_padding: must be >= 0 and smaller than either stride or dilation, got ",
          p.output_padding[d], " (stride ", p.stride[d], ", dilation ", p.dilation[d], ")");
    out[d] = (input[2 + d] - 1) * p.stride[d] - 2 * p.padding[d] + p.dilation[d] * (weight[2 + d] - 1) +
             p.output_padding[d] + 1;
    check(out[d] >= 1, "input: output size ", d ? "width " : "height ", out[d],
          " is not positive (input ", input[2 + d], ", padding ", p.padding[d], ")");
    // output_padding rows are appended at the end and lie past every window of the equivalent
    // convolution: a padding of `padding - output_padding` there keeps its output size = our input.
    pad_end[d] = p.padding[d] - p.output_padding[d];
  }
  return Conv2dShape({input[0], weight[1] * p.groups, out[0], out[1]}, weight,
                     {p.stride, p.padding, pad_end, p.dilation, p.groups});
}

namespace {
// Per-channel sums of grad_y: the bias gradient of the 1x1 convolution whose output it is.
template <class T>
void conv_transpose2d_bias_grad(const Conv2dShape& s, const T* grad_y, T* grad_bias) {
  conv2d_bias_grad(Conv2dShape({s.N, s.C, s.H, s.W}, {s.C, s.C, 1, 1}, {}), grad_y, grad_bias);
}
}  // namespace

template <class T>
void conv_transpose2d_forward(Algo algo, const Conv2dShape& s, const T* x, const T* w, const T* bias, T* y) {
  conv2d_backward_input(algo, s, x, w, y);
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
    conv2d_forward_and_backward_weight_im2col<T>(s, grad_y, w, grad_x, x, grad_w);
  } else {
    if (grad_x) conv2d_forward<T>(input_algo, s, grad_y, w, nullptr, false, grad_x);
    if (grad_w) conv2d_backward_weight<T>(weight_algo, s, grad_y, x, grad_w, nullptr);
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

}  // namespace fastconv::conv
