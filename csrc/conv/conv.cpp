// The checked dispatch of conv2d: the convolution's shape from its arguments (sizes from
// common/conv_geometry.h), what each algorithm can run and which kernel computes its gradients,
// every array checked against the shape, then the algorithm's kernel for their dtype
// (cpu/conv2d.cpp).
#include "conv/conv.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "conv/cpu/kernels.h"
#include "core/checked_math.h"
#include "core/layout.h"

namespace fastconv::conv {

namespace {
const char* kAxis[2] = {"height", "width"};
}

Conv2dShape::Conv2dShape(const std::array<index_t, 4>& input, const std::array<index_t, 4>& weight,
                         const Conv2dParams& params)
    : N(input[0]), C(input[1]), H(input[2]), W(input[3]),
      K(weight[0]), R(weight[2]), S(weight[3]), P(0), Q(0), p(params) {
  check(p.groups >= 1, "groups: must be >= 1, got ", p.groups);
  const ConvAxis axes[2] = {{H, R, p.stride[0], p.pad_begin[0], p.pad_end[0], p.dilation[0]},
                            {W, S, p.stride[1], p.pad_begin[1], p.pad_end[1], p.dilation[1]}};
  for (int d = 0; d < 2; ++d) {
    // The sizes conv_axis_error compares must exist in int64 before it computes them.
    const ConvAxis& a = axes[d];
    if (a.dilation >= 1 && a.kernel >= 1)
      checked_add(checked_mul(a.dilation, a.kernel - 1, "dilation: the dilated kernel ", kAxis[d]), 1,
                  "dilation: the dilated kernel ", kAxis[d]);
    checked_add(checked_add(a.input, a.pad_begin, "padding: the padded input ", kAxis[d]), a.pad_end,
                "padding: the padded input ", kAxis[d]);
  }
  for (const ConvAxis& a : axes) {
    // pad_end may be negative (common/conv_geometry.h): only pad_begin is checked.
    switch (conv_axis_error(a)) {
      case ConvAxisError::stride: fail<ValueError>("stride: must be >= 1, got ", a.stride);
      case ConvAxisError::dilation: fail<ValueError>("dilation: must be >= 1, got ", a.dilation);
      case ConvAxisError::padding: fail<ValueError>("padding: must be >= 0, got ", a.pad_begin);
      default: break;  // a kernel too large is reported after the channels
    }
  }
  check(C % p.groups == 0, "input: ", C, " channels are not divisible by groups=", p.groups);
  check(K % p.groups == 0, "weight: ", K, " output channels are not divisible by groups=", p.groups);
  check(weight[1] * p.groups == C, "weight: expected ", C / p.groups,
        " input channels per group (input has ", C, " channels, groups=", p.groups, "), got ", weight[1]);
  check(K >= 1 && R >= 1 && S >= 1, "weight: every dimension must be >= 1");
  index_t out[2];
  for (int d = 0; d < 2; ++d) {
    check(conv_axis_error(axes[d]) != ConvAxisError::kernel_larger_than_input, "weight: kernel ", kAxis[d], " ",
          axes[d].kernel, " (dilated to ", dilated_kernel(axes[d]), ") is larger than the padded input ", kAxis[d],
          " ", padded_input(axes[d]));
    out[d] = conv_output_size(axes[d]);
  }
  P = out[0];
  Q = out[1];
  // Every count a kernel multiplies out: arrays, the im2col matrix (C*R*S by P*Q).
  checked_numel(input, "input");
  checked_numel(weight, "weight");
  checked_numel(output_shape(), "output");
  checked_numel(std::array<index_t, 5>{C, R, S, P, Q}, "output: the im2col matrix (C*R*S by P*Q)");
}

bool Conv2dShape::is_pointwise() const {
  return R == 1 && S == 1 && p.stride[0] == 1 && p.stride[1] == 1 && p.pad_begin[0] == 0 &&
         p.pad_begin[1] == 0 && p.pad_end[0] == 0 && p.pad_end[1] == 0;
}

// ---- the algorithms and what each can run ----

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
    {Algo::winograd_4x5, "winograd_4x5"},
    {Algo::winograd_2x7, "winograd_2x7"},
    {Algo::winograd_4x2, "winograd_4x2"},
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
    case Algo::im2col: return nullptr;
    case Algo::implicit_gemm: return cpu::implicit_gemm_unsupported_reason(s);
    case Algo::direct: return cpu::direct_unsupported_reason(s);
    case Algo::depthwise: return s.C_per_group() == 1 ? nullptr : "needs one input channel per group (groups == in_channels)";
    case Algo::winograd_2x3:
    case Algo::winograd_4x3:
      return winograd_fits(s, 3) ? nullptr
                                 : "Winograd F(m x m, 3 x 3) needs a 3x3 kernel, or a strided one whose stride phases "
                                   "are 3x3 (ceil(kernel / stride) = 3, as 11x11 at stride 4), and dilation 1";
    case Algo::winograd_2x5:
    case Algo::winograd_4x5:
      return winograd_fits(s, 5) ? nullptr
                                 : "Winograd F(m x m, 5 x 5) needs a 5x5 kernel, or a strided one whose stride phases "
                                   "are 5x5 (ceil(kernel / stride) = 5), and dilation 1";
    case Algo::winograd_2x7:
      return winograd_fits(s, 7) ? nullptr
                                 : "Winograd F(2 x 2, 7 x 7) needs a 7x7 kernel, or a strided one whose stride phases "
                                   "are 7x7 (ceil(kernel / stride) = 7), and dilation 1";
    case Algo::winograd_4x2:
      return winograd_fits(s, 2) ? nullptr
                                 : "Winograd F(4 x 4, 2 x 2) needs a 2x2 kernel, or a strided one whose stride phases "
                                   "are 2x2 (ceil(kernel / stride) = 2, as 4x4 or 3x3 at stride 2), and dilation 1";
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

// Gradients: implicit GEMM has no backward of its own (a scatter does not fit its packer), so
// its gradients run im2col. Direct, Winograd and FFT compute a stride-1 input gradient as their
// own forward convolution (rotated filters); a strided one runs im2col's, but for Winograd's,
// which is its stride phases' (cpu/tiled_conv.h). Every one but implicit GEMM has a weight
// gradient of its own, FFT's only for large kernels (fft_suits_weight_gradient).
Algo input_gradient_kernel(Algo algo, const Conv2dShape& s) {
  const bool rotation_at_stride_1 = algo == Algo::direct || algo == Algo::fft;  // their forward, rotated filters
  if (algo == Algo::implicit_gemm) return cpu::implicit_input_gradient_fits(s) ? algo : Algo::im2col;
  return rotation_at_stride_1 && s.is_strided() ? Algo::im2col : algo;
}

Algo weight_gradient_kernel(Algo algo, const Conv2dShape& s) {
  if (algo == Algo::implicit_gemm || (algo == Algo::fft && !cpu::fft_suits_weight_gradient(s))) return Algo::im2col;
  return algo;
}

WeightUse parse_weight_use(const std::string& use) {
  if (use == "forward") return WeightUse::forward;
  if (use == "input_gradient") return WeightUse::input_gradient;
  fail<ValueError>("use: expected 'forward' or 'input_gradient', got '", use, "'");
}

index_t weight_transform_tile(Algo algo, const Conv2dShape& s, WeightUse use) {
  return algo == Algo::fft ? cpu::fft_weight_tile(s, use) : 0;
}

namespace {

bool is_winograd(Algo algo) {
  return algo == Algo::winograd_2x3 || algo == Algo::winograd_4x3 || algo == Algo::winograd_2x5 ||
         algo == Algo::winograd_4x5 || algo == Algo::winograd_2x7 || algo == Algo::winograd_4x2;
}

}  // namespace

bool weight_transform_reusable(Algo algo, const Conv2dShape& s) {
  return algo == Algo::fft || (is_winograd(algo) && !s.is_strided());
}

// An input gradient that runs another algorithm's kernel has no transform of its own.
index_t transformed_weight_size(Algo algo, const Conv2dShape& s, WeightUse use, index_t tile) {
  if (use == WeightUse::input_gradient && input_gradient_kernel(algo, s) != algo) return 0;
  switch (algo) {
    case Algo::winograd_2x3: return cpu::winograd_transformed_size<2, 3>(s, use);
    case Algo::winograd_4x3: return cpu::winograd_transformed_size<4, 3>(s, use);
    case Algo::winograd_2x5: return cpu::winograd_transformed_size<2, 5>(s, use);
    case Algo::winograd_4x5: return cpu::winograd_transformed_size<4, 5>(s, use);
    case Algo::winograd_2x7: return cpu::winograd_transformed_size<2, 7>(s, use);
    case Algo::winograd_4x2: return cpu::winograd_transformed_size<4, 2>(s, use);
    case Algo::fft: return cpu::fft_transformed_size(s, use, tile ? tile : cpu::fft_weight_tile(s, use));
    default: return 0;
  }
}

// ---- the entry points ----

namespace {

// Builds the checked geometry of one conv2d call from its input-side and weight arrays.
Conv2dShape conv_shape(const TensorArg& input, const TensorArg& weight, const char* input_name,
                       const char* weight_name, const Conv2dParams& params) {
  return Conv2dShape(shape4(input, input_name, "(N, C, H, W)"), shape4(weight, weight_name, "(K, C/groups, R, S)"),
                     params);
}

// The smallest convolution a weight (K, C/groups, R, S) runs: what a transform needs of a shape.
Conv2dShape weight_only_shape(const std::array<index_t, 4>& weight, index_t g) {
  return Conv2dShape({1, weight[1] * g, weight[2], weight[3]}, weight, {{1, 1}, {0, 0}, {0, 0}, {1, 1}, g});
}

// FFT's transform is made at a given tile size: a power of two from the kernel's size to 64.
// The others take none (0).
void check_transform_tile(Algo algo, const Conv2dShape& s, index_t tile) {
  if (algo != Algo::fft) {
    if (tile != 0) fail<ValueError>("tile: algo='", algo_name(algo), "' takes no tile size, got ", tile);
    return;
  }
  const bool power_of_two = tile > 0 && (tile & (tile - 1)) == 0;
  if (!power_of_two || tile < std::max(s.R, s.S) || tile > kFftMaxKernel + 1)
    fail<ValueError>("tile: FFT needs a power of two from ", std::max(s.R, s.S), " to ", kFftMaxKernel + 1,
                     " (conv2d_weight_transform_tile), got ", tile);
}

// A weight transformed by conv2d_transform_weight for (algo, use), or nullptr when absent.
template <class T>
const T* transformed_arg(const TensorArg& a, Algo algo, const Conv2dShape& s, WeightUse use) {
  if (!a.present()) return nullptr;
  const index_t n = transformed_weight_size(algo, s, use);
  if (n == 0) fail<ValueError>("transformed: algo='", algo_name(algo), "' has no transformed weights");
  auto t = contiguous_arg<const T, 1>(a, "transformed", "(values,)");
  if (t.shape[0] != n) fail<ValueError>("transformed: expected ", n, " values, got ", t.shape[0]);
  return t.data;
}

}  // namespace

std::array<index_t, 4> conv2d_output_shape(const std::array<index_t, 4>& input, const std::array<index_t, 4>& weight,
                                           const Conv2dParams& params) {
  return Conv2dShape(input, weight, params).output_shape();
}

const char* conv2d_unsupported_reason(const std::string& algo, const std::array<index_t, 4>& input,
                                      const std::array<index_t, 4>& weight, const Conv2dParams& params) {
  const Conv2dShape s(input, weight, params);
  return unsupported_reason(parse_algo(algo), s);
}

const char* conv2d_gradient_kernel(const std::string& algo, const std::string& direction,
                                   const std::array<index_t, 4>& input, const std::array<index_t, 4>& weight,
                                   const Conv2dParams& params) {
  const Conv2dShape s(input, weight, params);
  const Algo a = parse_algo(algo);
  if (direction == "input") return algo_name(input_gradient_kernel(a, s));
  if (direction == "weight") return algo_name(weight_gradient_kernel(a, s));
  fail<ValueError>("direction: expected 'input' or 'weight', got '", direction, "'");
}

std::optional<index_t> conv2d_weight_transform_tile(const std::string& algo, const std::array<index_t, 4>& input,
                                                    const std::array<index_t, 4>& weight, const Conv2dParams& params,
                                                    const std::string& use) {
  const Conv2dShape s(input, weight, params);
  const Algo a = parse_algo(algo);
  if (!weight_transform_reusable(a, s)) return std::nullopt;
  return weight_transform_tile(a, s, parse_weight_use(use));
}

index_t conv2d_transformed_weight_size(const std::string& algo, const std::array<index_t, 4>& weight, index_t groups,
                                       const std::string& use, index_t tile) {
  const Conv2dShape s = weight_only_shape(weight, groups);
  const Algo a = parse_algo(algo);
  check_transform_tile(a, s, tile);
  return transformed_weight_size(a, s, parse_weight_use(use), tile);
}

void conv2d_transform_weight(const TensorArg& w, const TensorArg& out, index_t groups, const std::string& algo_name,
                             const std::string& use_name, index_t tile) {
  const Algo algo = parse_algo(algo_name);
  const WeightUse use = parse_weight_use(use_name);
  dispatch_float(w, "weight", [&](auto tag) {
    using T = decltype(tag);
    const Conv2dShape s = weight_only_shape(shape4(w, "weight", "(K, C/groups, R, S)"), groups);
    check_supported(algo, s);
    check_transform_tile(algo, s, tile);
    const index_t n = transformed_weight_size(algo, s, use, tile);
    if (n == 0) fail<ValueError>("algo='", algo_name, "' has no transformed weights");
    const T* wp = nchw_arg<const T>(w, "weight", s.weight_shape());
    auto o = contiguous_arg<T, 1>(out, "out", "(values,)");
    if (o.shape[0] != n) fail<ValueError>("out: expected ", n, " values, got ", o.shape[0]);
    cpu::transform_weight<T>(algo, s, use, wp, o.data, tile);
  });
}

namespace {

// channels_last arrays have one kernel, im2col over NHWC memory (cpu/channels_last.cpp).
void check_layout_supported(Algo algo, bool channels_last, const char* name) {
  if (channels_last && algo != Algo::im2col)
    fail<ValueError>(name, ": a channels_last array runs algo='im2col' only, not '", algo_name(algo), "'");
}

// Two arrays of n values each that a kernel reads (a) while writing (b) must not share memory.
template <class T>
void check_disjoint(const T* a, const T* b, index_t n, const char* a_name, const char* b_name) {
  const auto begin = [](const T* p) { return reinterpret_cast<std::uintptr_t>(p); };
  const std::uintptr_t bytes = static_cast<std::uintptr_t>(n) * sizeof(T);
  if (n > 0 && begin(a) < begin(b) + bytes && begin(b) < begin(a) + bytes)
    fail<ValueError>(a_name, ": must not share memory with ", b_name, " (the kernel writes ", b_name,
                     " while it reads ", a_name, ")");
}

// The pixel-shuffled output's shape, (N, K / f^2, P f, Q f), for a factor f above 1, checked before
// anything is read: Winograd writes it (its output transform interleaves the phases), on NCHW
// arrays; the input gradient reads it at stride 1 only (`strided_ok`: the forward), and the
// forward adds no residual.
std::array<index_t, 4> shuffled_shape(index_t f, Algo algo, const Conv2dShape& s, bool strided_ok, bool residual,
                                      const char* wide_name) {
  if (!is_winograd(algo))
    fail<ValueError>("pixel_shuffle: ", f, " runs with a Winograd algo only, not '", algo_name(algo), "'");
  if (!strided_ok && s.is_strided()) fail<ValueError>("pixel_shuffle: ", f, " needs stride 1 for the input gradient");
  if (residual) fail<ValueError>("residual: not supported with pixel_shuffle ", f);
  const index_t f2 = checked_mul(f, f, "pixel_shuffle^2");
  if (s.K % f2 != 0)
    fail<ValueError>("weight: expected output channels divisible by pixel_shuffle^2 = ", f2, ", got ", s.K);
  return wide_shape(s.output_shape(), f, wide_name);
}

void check_factor(index_t f) {
  if (f < 1) fail<ValueError>("pixel_shuffle: expected an integer >= 1, got ", f);
}

}  // namespace

void conv2d_forward(const TensorArg& x, const TensorArg& w, const TensorArg& bias, const TensorArg& y,
                    const Conv2dParams& params, const std::string& algo_name, bool relu, const TensorArg& transformed,
                    const TensorArg& residual, index_t pixel_shuffle) {
  const Algo algo = parse_algo(algo_name);
  check_factor(pixel_shuffle);
  dispatch_float(x, "input", [&](auto tag) {
    using T = decltype(tag);
    const Conv2dShape s = conv_shape(x, w, "input", "weight", params);
    check_supported(algo, s);
    if (pixel_shuffle > 1) {
      const auto wide = shuffled_shape(pixel_shuffle, algo, s, true, residual.present(), "out");
      const T* xp = nchw_arg<const T>(x, "input", s.input_shape());
      const T* wp = nchw_arg<const T>(w, "weight", s.weight_shape());
      const T* bp = vector_arg<const T>(bias, "bias", s.K);
      T* yp = nchw_arg<T>(y, "out", wide);
      const T* up = transformed_arg<T>(transformed, algo, s, WeightUse::forward);
      return cpu::conv2d_forward<T>(algo, s, xp, wp, bp, relu, yp, up, nullptr, pixel_shuffle);
    }
    const bool cl = channels_last_call(x, y);
    check_layout_supported(algo, cl, "input");
    const T* xp = image_arg<const T>(x, "input", s.input_shape(), cl);
    const T* wp = nchw_arg<const T>(w, "weight", s.weight_shape());
    const T* bp = vector_arg<const T>(bias, "bias", s.K);
    T* yp = image_arg<T>(y, "out", s.output_shape(), cl);
    const T* rp = residual.present() ? image_arg<const T>(residual, "residual", s.output_shape(), cl) : nullptr;
    if (rp) check_disjoint(rp, yp, s.N * s.K * s.pixels(), "residual", "out");
    if (cl) {  // its GEMM writes rows of channels: the residual follows in a pass
      cpu::conv2d_forward_channels_last<T>(s, xp, wp, bp, relu && !rp, yp);
      if (rp) cpu::add_residual_pass(yp, rp, s.N * s.K * s.pixels(), relu);
      return;
    }
    const T* up = transformed_arg<T>(transformed, algo, s, WeightUse::forward);
    cpu::conv2d_forward<T>(algo, s, xp, wp, bp, relu, yp, up, rp);
  });
}

void conv2d_backward_input(const TensorArg& grad_y, const TensorArg& w, const TensorArg& grad_x,
                           const Conv2dParams& params, const std::string& algo_name, const TensorArg& transformed,
                           index_t pixel_shuffle) {
  const Algo algo = parse_algo(algo_name);
  check_factor(pixel_shuffle);
  dispatch_float(grad_y, "grad_output", [&](auto tag) {
    using T = decltype(tag);
    const Conv2dShape s = conv_shape(grad_x, w, "grad_input", "weight", params);
    check_supported(algo, s);
    if (pixel_shuffle > 1) {
      const auto wide = shuffled_shape(pixel_shuffle, algo, s, false, false, "grad_output");
      const T* dyp = nchw_arg<const T>(grad_y, "grad_output", wide);
      const T* wp = nchw_arg<const T>(w, "weight", s.weight_shape());
      T* dxp = nchw_arg<T>(grad_x, "grad_input", s.input_shape());
      const T* up = transformed_arg<T>(transformed, algo, s, WeightUse::input_gradient);
      return cpu::conv2d_backward_input<T>(algo, s, dyp, wp, dxp, up, pixel_shuffle);
    }
    const bool cl = channels_last_call(grad_y, grad_x);
    check_layout_supported(algo, cl, "grad_output");
    const T* dyp = image_arg<const T>(grad_y, "grad_output", s.output_shape(), cl);
    const T* wp = nchw_arg<const T>(w, "weight", s.weight_shape());
    T* dxp = image_arg<T>(grad_x, "grad_input", s.input_shape(), cl);
    if (cl) return cpu::conv2d_backward_input_channels_last<T>(s, dyp, wp, dxp);
    const T* up = transformed_arg<T>(transformed, algo, s, WeightUse::input_gradient);
    cpu::conv2d_backward_input<T>(algo, s, dyp, wp, dxp, up);
  });
}

void conv2d_backward_weight(const TensorArg& x, const TensorArg& grad_y, const TensorArg& grad_w,
                            const TensorArg& grad_b, const Conv2dParams& params, const std::string& algo_name) {
  const Algo algo = parse_algo(algo_name);
  dispatch_float(x, "input", [&](auto tag) {
    using T = decltype(tag);
    const Conv2dShape s = conv_shape(x, grad_w, "input", "grad_weight", params);
    check_supported(algo, s);
    const bool cl = channels_last_call(x, grad_y);
    check_layout_supported(algo, cl, "input");
    const T* xp = image_arg<const T>(x, "input", s.input_shape(), cl);
    const T* dyp = image_arg<const T>(grad_y, "grad_output", s.output_shape(), cl);
    T* dwp = nchw_arg<T>(grad_w, "grad_weight", s.weight_shape());
    T* dbp = vector_arg<T>(grad_b, "grad_bias", s.K);
    if (cl) return cpu::conv2d_backward_weight_channels_last<T>(s, xp, dyp, dwp, dbp);
    cpu::conv2d_backward_weight<T>(algo, s, xp, dyp, dwp, dbp);
  });
}

void conv2d_backward(const TensorArg& x, const TensorArg& w, const TensorArg& grad_y, const TensorArg& grad_x,
                     const TensorArg& grad_w, const TensorArg& grad_b, const Conv2dParams& params,
                     const std::string& algo_name) {
  const Algo algo = parse_algo(algo_name);
  dispatch_float(x, "input", [&](auto tag) {
    using T = decltype(tag);
    const Conv2dShape s = conv_shape(x, w, "input", "weight", params);
    check_supported(algo, s);
    const T* xp = nchw_arg<const T>(x, "input", s.input_shape());  // NCHW arrays only
    const T* wp = nchw_arg<const T>(w, "weight", s.weight_shape());
    const T* dyp = nchw_arg<const T>(grad_y, "grad_output", s.output_shape());
    T* dxp = nchw_arg<T>(grad_x, "grad_input", s.input_shape());
    T* dwp = nchw_arg<T>(grad_w, "grad_weight", s.weight_shape());
    T* dbp = vector_arg<T>(grad_b, "grad_bias", s.K);
    cpu::conv2d_backward<T>(algo, s, xp, wp, dyp, dxp, dwp, dbp);
  });
}

bool same_bytes(const TensorArg& a, const TensorArg& b) {
  if (!a.c_contiguous || !b.c_contiguous) fail<ValueError>("same_bytes: arrays must be C-contiguous");
  if (a.nbytes() != b.nbytes()) return false;
  return std::memcmp(a.data, b.data, static_cast<std::size_t>(a.nbytes())) == 0;
}

// ---- the Winograd codelets, for tests ----

namespace {

cpu::WinogradCodelet parse_codelet(const std::string& which) {
  if (which == "input") return cpu::WinogradCodelet::input;
  if (which == "filter") return cpu::WinogradCodelet::filter;
  if (which == "output") return cpu::WinogradCodelet::output;
  fail<ValueError>("which: expected 'input', 'filter' or 'output', got '", which, "'");
}

}  // namespace

std::array<index_t, 3> winograd_codelet_shape(const std::string& which, int tile, const TensorArg& tiles) {
  const cpu::WinogradCodelet kind = parse_codelet(which);
  if (tile != 2 && tile != 4) fail<ValueError>("tile: expected 2 or 4, got ", tile);
  const index_t alpha = tile + 2, n_in = kind == cpu::WinogradCodelet::filter ? 3 : alpha;
  const index_t n_out = kind == cpu::WinogradCodelet::output ? tile : alpha;
  return dispatch_float(tiles, "tiles", [&](auto tag) {
    using T = decltype(tag);
    const auto t = contiguous_arg<const T, 3>(tiles, "tiles", "(count, n, n)");
    if (t.shape[1] != n_in || t.shape[2] != n_in)
      fail<ValueError>("tiles: expected shape (count, ", n_in, ", ", n_in, "), got ", shape_str(tiles));
    return std::array<index_t, 3>{t.shape[0], n_out, n_out};
  });
}

void winograd_codelet(const std::string& which, int tile, const TensorArg& tiles, const TensorArg& out) {
  const std::array<index_t, 3> shape = winograd_codelet_shape(which, tile, tiles);
  const cpu::WinogradCodelet kind = parse_codelet(which);
  dispatch_float(tiles, "tiles", [&](auto tag) {
    using T = decltype(tag);
    T* o = shaped_arg<T>(out, "out", "(count, n, n)", shape);
    const T* in = static_cast<const T*>(tiles.data);
    (tile == 2 ? cpu::winograd_codelet<2, T> : cpu::winograd_codelet<4, T>)(kind, in, shape[0], o);
  });
}

}  // namespace fastconv::conv
