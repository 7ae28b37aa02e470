#include "conv/conv2d.h"

#include "core/errors.h"

#include <string>

namespace fastconv::conv {

namespace {
const char* kAxis[2] = {"height", "width"};
}

Conv2dShape::Conv2dShape(const std::array<index_t, 4>& input, const std::array<index_t, 4>& weight,
                         const Conv2dParams& params)
    : N(input[0]), C(input[1]), H(input[2]), W(input[3]),
      K(weight[0]), R(weight[2]), S(weight[3]), P(0), Q(0), p(params) {
  check(p.groups >= 1, "groups: must be >= 1, got ", p.groups);
  for (int d = 0; d < 2; ++d) {
    check(p.stride[d] >= 1, "stride: must be >= 1, got ", p.stride[d]);
    check(p.dilation[d] >= 1, "dilation: must be >= 1, got ", p.dilation[d]);
    // pad_end may be negative: the last rows are then never read. That is how a transposed
    // convolution's output_padding appears in its equivalent convolution (conv_transpose.cpp).
    check(p.pad_begin[d] >= 0, "padding: must be >= 0, got ", p.pad_begin[d]);
  }
  check(C % p.groups == 0, "input: ", C, " channels are not divisible by groups=", p.groups);
  check(K % p.groups == 0, "weight: ", K, " output channels are not divisible by groups=", p.groups);
  check(weight[1] * p.groups == C, "weight: expected ", C / p.groups,
        " input channels per group (input has ", C, " channels, groups=", p.groups, "), got ", weight[1]);
  check(K >= 1 && R >= 1 && S >= 1, "weight: every dimension must be >= 1");
  const index_t in[2] = {H, W}, kernel[2] = {R, S};
  index_t out[2];
  for (int d = 0; d < 2; ++d) {
    const index_t padded = in[d] + p.pad_begin[d] + p.pad_end[d];
    const index_t span = p.dilation[d] * (kernel[d] - 1) + 1;
    check(span <= padded, "weight: kernel ", kAxis[d], " ", kernel[d], " (dilated to ", span,
          ") is larger than the padded input ", kAxis[d], " ", padded);
    out[d] = (padded - span) / p.stride[d] + 1;
  }
  P = out[0];
  Q = out[1];
}

bool Conv2dShape::is_pointwise() const {
  return R == 1 && S == 1 && p.stride[0] == 1 && p.stride[1] == 1 && p.pad_begin[0] == 0 &&
         p.pad_begin[1] == 0 && p.pad_end[0] == 0 && p.pad_end[1] == 0;
}

namespace {

struct AlgoEntry {
  Algo algo;
  const char* name;
};
constexpr AlgoEntry kAlgos[] = {
    {Algo::im2col, "im2col"},
    {Algo::implicit_gemm, "implicit"},
    {Algo::direct, "direct"},
    {Algo::depthwise, "depthwise"},
    {Algo::winograd_2x3, "winograd_2x3"},
    {Algo::winograd_4x3, "winograd_4x3"},
    {Algo::winograd_2x5, "winograd_2x5"},
    {Algo::fft, "fft"},
};

bool unit_stride_and_dilation(const Conv2dShape& s) {
  return s.p.stride[0] == 1 && s.p.stride[1] == 1 && s.p.dilation[0] == 1 && s.p.dilation[1] == 1;
}

// Winograd F(m x m, r x r) runs an r x r kernel, or a strided one whose stride phases are r x r.
bool winograd_fits(const Conv2dShape& s, index_t r) {
  return s.phase_kernel() == std::array<index_t, 2>{r, r} && s.p.dilation[0] == 1 && s.p.dilation[1] == 1;
}

}  // namespace

Algo parse_algo(const std::string& name) {
  for (const auto& entry : kAlgos)
    if (name == entry.name) return entry.algo;
  std::string choices;
  for (const auto& entry : kAlgos) choices += std::string(choices.empty() ? "" : ", ") + "'" + entry.name + "'";
  fail<ValueError>("algo: expected one of ", choices, ", got '", name, "'");
}

const char* algo_name(Algo algo) {
  for (const auto& entry : kAlgos)
    if (entry.algo == algo) return entry.name;
  return "?";
}

std::vector<std::string> algorithm_names() {
  std::vector<std::string> names;
  for (const auto& entry : kAlgos) names.emplace_back(entry.name);
  return names;
}

const char* unsupported_reason(Algo algo, const Conv2dShape& s) {
  switch (algo) {
    case Algo::im2col:
    case Algo::implicit_gemm: return nullptr;
    case Algo::direct: return direct_unsupported_reason(s);
    case Algo::depthwise: return s.C_per_group() == 1 ? nullptr : "needs one input channel per group (groups == in_channels)";
    case Algo::winograd_2x3:
    case Algo::winograd_4x3:
      return winograd_fits(s, 3) ? nullptr
                                 : "Winograd F(m x m, 3 x 3) needs a 3x3 kernel, or a strided one whose stride phases "
                                   "are 3x3 (ceil(kernel / stride) = 3, as 11x11 at stride 4), and dilation 1";
    case Algo::winograd_2x5:
      return winograd_fits(s, 5) ? nullptr
                                 : "Winograd F(2 x 2, 5 x 5) needs a 5x5 kernel, or a strided one whose stride phases "
                                   "are 5x5 (ceil(kernel / stride) = 5), and dilation 1";
    case Algo::fft:
      if (std::max(s.R, s.S) > kFftMaxKernel) return "FFT needs a kernel of at most 63 x 63";
      return unit_stride_and_dilation(s) ? nullptr : "FFT needs stride 1 and dilation 1";
  }
  return "unknown algorithm";
}

void check_supported(Algo algo, const Conv2dShape& s) {
  if (const char* why = unsupported_reason(algo, s))
    fail<ValueError>("algo='", algo_name(algo), "' cannot run this convolution: ", why);
}

index_t weight_transform_tile(Algo algo, const Conv2dShape& s, WeightUse use) {
  return algo == Algo::fft ? fft_weight_tile(s, use) : 0;
}

bool weight_transform_reusable(Algo algo, const Conv2dShape& s) {
  return algo == Algo::fft || ((algo == Algo::winograd_2x3 || algo == Algo::winograd_4x3 ||
                                algo == Algo::winograd_2x5) && !s.is_strided());
}

// An input gradient that runs another algorithm's kernel has no transform of its own.
index_t transformed_weight_size(Algo algo, const Conv2dShape& s, WeightUse use, index_t tile) {
  if (use == WeightUse::input_gradient && input_gradient_kernel(algo, s) != algo) return 0;
  switch (algo) {
    case Algo::winograd_2x3: return winograd_transformed_size<2, 3>(s, use);
    case Algo::winograd_4x3: return winograd_transformed_size<4, 3>(s, use);
    case Algo::winograd_2x5: return winograd_transformed_size<2, 5>(s, use);
    case Algo::fft: return fft_transformed_size(s, use, tile ? tile : fft_weight_tile(s, use));
    default: return 0;
  }
}

template <class T>
void transform_weight(Algo algo, const Conv2dShape& s, WeightUse use, const T* w, T* out, index_t tile) {
  if (transformed_weight_size(algo, s, use, tile) == 0) return;
  switch (algo) {
    case Algo::winograd_2x3: return winograd_transform_weight<2, 3>(s, use, w, out);
    case Algo::winograd_4x3: return winograd_transform_weight<4, 3>(s, use, w, out);
    case Algo::winograd_2x5: return winograd_transform_weight<2, 5>(s, use, w, out);
    case Algo::fft: return fft_transform_weight(s, use, tile ? tile : fft_weight_tile(s, use), w, out);
    default: return;
  }
}

template <class T>
void conv2d_forward(Algo algo, const Conv2dShape& s, const T* x, const T* w, const T* bias, bool relu, T* y,
                    const T* transformed) {
  switch (algo) {
    case Algo::im2col: return conv2d_forward_im2col(s, x, w, bias, relu, y);
    case Algo::implicit_gemm: return conv2d_forward_implicit_gemm(s, x, w, bias, relu, y);
    case Algo::direct: return conv2d_forward_direct(s, x, w, bias, relu, y);
    case Algo::depthwise: return conv2d_forward_depthwise(s, x, w, bias, relu, y);
    case Algo::winograd_2x3: return conv2d_forward_winograd<2, 3>(s, x, w, transformed, bias, relu, y);
    case Algo::winograd_4x3: return conv2d_forward_winograd<4, 3>(s, x, w, transformed, bias, relu, y);
    case Algo::winograd_2x5: return conv2d_forward_winograd<2, 5>(s, x, w, transformed, bias, relu, y);
    case Algo::fft: return conv2d_forward_fft(s, x, w, transformed, bias, relu, y);
  }
}

// Gradients: implicit GEMM has no backward of its own (a scatter does not fit its packer), so
// its gradients run im2col. Direct, Winograd and FFT compute a stride-1 input gradient as their
// own forward convolution (rotated filters); a strided one runs im2col's, but for Winograd's,
// which is its stride phases' (tiled_conv.h). Every one but implicit GEMM has a weight gradient
// of its own, FFT's only for large kernels (fft_suits_weight_gradient).
Algo input_gradient_kernel(Algo algo, const Conv2dShape& s) {
  const bool rotation_at_stride_1 = algo == Algo::direct || algo == Algo::fft;  // their forward, rotated filters
  return algo == Algo::implicit_gemm || (rotation_at_stride_1 && s.is_strided()) ? Algo::im2col : algo;
}

Algo weight_gradient_kernel(Algo algo, const Conv2dShape& s) {
  if (algo == Algo::implicit_gemm || (algo == Algo::fft && !fft_suits_weight_gradient(s))) return Algo::im2col;
  return algo;
}

template <class T>
void conv2d_backward_input(Algo algo, const Conv2dShape& s, const T* grad_y, const T* w, T* grad_x,
                           const T* transformed) {
  switch (input_gradient_kernel(algo, s)) {
    case Algo::im2col:
    case Algo::implicit_gemm: return conv2d_backward_input_im2col(s, grad_y, w, grad_x);
    case Algo::direct: return conv2d_backward_input_direct(s, grad_y, w, grad_x);
    case Algo::depthwise: return conv2d_backward_input_depthwise(s, grad_y, w, grad_x);
    case Algo::winograd_2x3: return conv2d_backward_input_winograd<2, 3>(s, grad_y, w, transformed, grad_x);
    case Algo::winograd_4x3: return conv2d_backward_input_winograd<4, 3>(s, grad_y, w, transformed, grad_x);
    case Algo::winograd_2x5: return conv2d_backward_input_winograd<2, 5>(s, grad_y, w, transformed, grad_x);
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
    case Algo::fft: return conv2d_backward_weight_fft(s, x, grad_y, grad_w, grad_bias);
  }
}

#define FASTCONV_INSTANTIATE(T)                                                                          \
  template void transform_weight<T>(Algo, const Conv2dShape&, WeightUse, const T*, T*, index_t);         \
  template void conv2d_forward<T>(Algo, const Conv2dShape&, const T*, const T*, const T*, bool, T*, const T*); \
  template void conv2d_backward_input<T>(Algo, const Conv2dShape&, const T*, const T*, T*, const T*);    \
  template void conv2d_backward_weight<T>(Algo, const Conv2dShape&, const T*, const T*, T*, T*);
FASTCONV_INSTANTIATE(float)
FASTCONV_INSTANTIATE(double)
#undef FASTCONV_INSTANTIATE

}  // namespace fastconv::conv
