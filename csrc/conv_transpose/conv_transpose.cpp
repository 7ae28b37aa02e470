// The checked dispatch of conv_transpose2d: the equivalent convolution's shape from the
// arguments (common/conv_geometry.h's transposed sizes), the algorithms checked against it,
// every array checked against it, then the kernels of their dtype.
#include "conv_transpose/conv_transpose.h"

#include "common/conv_geometry.h"
#include "core/checked_math.h"
#include "conv_transpose/cpu/conv_transpose.h"

namespace fastconv::conv_transpose {

namespace {

const char* kAxis[2] = {"height ", "width "};

// conv_transpose_output_size term by term in checked int64, before conv_transpose_axis_error
// computes it: a padding near 2^62 would otherwise wrap into a plausible size.
void check_output_size_fits(const conv::ConvTransposeAxis& a, int d) {
  if (a.stride < 1 || a.dilation < 1 || a.padding < 0) return;  // reported by check_axis
  const index_t strided = checked_mul(a.input - 1, a.stride, "stride: (input ", kAxis[d], "- 1) * stride");
  const index_t padding = checked_mul(2, a.padding, "padding: 2 * padding");
  const index_t span = checked_mul(a.dilation, a.kernel - 1, "dilation: dilation * (kernel ", kAxis[d], "- 1)");
  const char* what = "input: the output size (input - 1) * stride - 2 * padding + dilation * (kernel - 1) + "
                     "output_padding + 1";
  checked_add(checked_add(checked_add(checked_sub(strided, padding, what), span, what), a.output_padding, what), 1,
              what);
}

void check_axis(const conv::ConvTransposeAxis& a, int d) {
  using Error = conv::ConvTransposeAxisError;
  check_output_size_fits(a, d);
  switch (conv::conv_transpose_axis_error(a)) {
    case Error::stride: fail<ValueError>("stride: must be >= 1, got ", a.stride);
    case Error::dilation: fail<ValueError>("dilation: must be >= 1, got ", a.dilation);
    case Error::padding: fail<ValueError>("padding: must be >= 0, got ", a.padding);
    case Error::output_padding:
      fail<ValueError>("output_padding: must be >= 0 and smaller than either stride or dilation, got ",
                       a.output_padding, " (stride ", a.stride, ", dilation ", a.dilation, ")");
    case Error::empty_output:
      fail<ValueError>("input: output size ", kAxis[d], conv::conv_transpose_output_size(a), " is not positive (input ",
                       a.input, ", padding ", a.padding, ")");
    case Error::none: return;
  }
}

// This family's own algorithm; every other name is one of conv2d's.
constexpr const char* kSubpixel = "subpixel";

// ValueError naming the choices when `algo` is neither subpixel nor one of conv2d's.
void check_algo_name(const std::string& algo) {
  if (algo == kSubpixel) return;
  for (const std::string& name : conv::algorithm_names())
    if (algo == name) return;
  std::string choices = std::string("'") + kSubpixel + "'";
  for (const std::string& name : conv::algorithm_names()) choices += ", '" + name + "'";
  fail<ValueError>("algo: expected one of ", choices, ", got '", algo, "'");
}

const char* unsupported_reason(const std::string& algo, const conv::Conv2dShape& s) {
  return algo == kSubpixel ? cpu::subpixel_unsupported_reason(s) : conv::unsupported_reason(conv::parse_algo(algo), s);
}

void check_supported(const std::string& algo, const conv::Conv2dShape& s) {
  if (const char* why = unsupported_reason(algo, s))
    fail<ValueError>("algo='", algo, "' cannot run this transposed convolution: ", why);
}

// The conv2d algorithm that runs the input gradient for `algo`. Subpixel's input gradient is a
// strided conv2d: implicit GEMM runs it, splitting its input into the same stride phases
// (im2col where it cannot).
conv::Algo input_gradient_algo(const std::string& algo, const conv::Conv2dShape& s) {
  if (algo != kSubpixel) return conv::parse_algo(algo);
  const bool implicit = conv::unsupported_reason(conv::Algo::implicit_gemm, s) == nullptr;
  return implicit ? conv::Algo::implicit_gemm : conv::Algo::im2col;
}

// The equivalent convolution of one call, from its input (N, C_in, H, W) and weight arrays.
conv::Conv2dShape equivalent_conv2d_of(const TensorArg& x, const TensorArg& w, const ConvTranspose2dParams& params) {
  return equivalent_conv2d(shape4(x, "input", "(N, C_in, H, W)"), shape4(w, "weight", "(C_in, C_out/groups, R, S)"),
                           params);
}

}  // namespace

conv::Conv2dShape equivalent_conv2d(const std::array<index_t, 4>& input, const std::array<index_t, 4>& weight,
                                    const ConvTranspose2dParams& p) {
  // weight is (C_in, C_out / groups, R, S): as a conv2d weight, K = C_in, C = C_out.
  check(p.groups >= 1, "groups: must be >= 1, got ", p.groups);
  check(input[1] % p.groups == 0, "input: ", input[1], " channels are not divisible by groups=", p.groups);
  check(weight[0] == input[1], "weight: expected ", input[1], " input channels (dimension 0), got ", weight[0]);
  std::array<index_t, 2> out{}, pad_end{};
  for (int d = 0; d < 2; ++d) {
    const conv::ConvTransposeAxis axis{input[2 + d], weight[2 + d], p.stride[d], p.padding[d], p.output_padding[d],
                                       p.dilation[d]};
    check_axis(axis, d);
    out[d] = conv::conv_transpose_output_size(axis);
    pad_end[d] = conv::equivalent_pad_end(axis);
  }
  return conv::Conv2dShape({input[0], weight[1] * p.groups, out[0], out[1]}, weight,
                           {p.stride, p.padding, pad_end, p.dilation, p.groups});
}

std::array<index_t, 4> conv_transpose2d_output_shape(const std::array<index_t, 4>& input,
                                                     const std::array<index_t, 4>& weight,
                                                     const ConvTranspose2dParams& params) {
  return equivalent_conv2d(input, weight, params).input_shape();
}

const char* conv_transpose2d_unsupported_reason(const std::string& algo, const std::array<index_t, 4>& input,
                                               const std::array<index_t, 4>& weight,
                                               const ConvTranspose2dParams& params) {
  check_algo_name(algo);
  return unsupported_reason(algo, equivalent_conv2d(input, weight, params));
}

void conv_transpose2d_forward(const TensorArg& x, const TensorArg& w, const TensorArg& bias, const TensorArg& y,
                              const ConvTranspose2dParams& params, const std::string& algo) {
  check_algo_name(algo);
  dispatch_float(x, "input", [&](auto tag) {
    using T = decltype(tag);
    const conv::Conv2dShape s = equivalent_conv2d_of(x, w, params);
    check_supported(algo, s);
    const T* xp = nchw_arg<const T>(x, "input", s.output_shape());
    const T* wp = nchw_arg<const T>(w, "weight", s.weight_shape());
    const T* bp = vector_arg<const T>(bias, "bias", s.C);
    T* yp = nchw_arg<T>(y, "out", s.input_shape());
    if (algo == kSubpixel)
      cpu::conv_transpose2d_forward_subpixel<T>(s, xp, wp, bp, yp);
    else
      cpu::conv_transpose2d_forward<T>(conv::parse_algo(algo), s, xp, wp, bp, yp);
  });
}

void conv_transpose2d_backward(const TensorArg& x, const TensorArg& w, const TensorArg& grad_y,
                               const TensorArg& grad_x, const TensorArg& grad_w, const TensorArg& grad_b,
                               const ConvTranspose2dParams& params, const std::string& input_algo,
                               const std::string& weight_algo) {
  check_algo_name(input_algo);
  check_algo_name(weight_algo);
  dispatch_float(x, "input", [&](auto tag) {
    using T = decltype(tag);
    const conv::Conv2dShape s = equivalent_conv2d_of(x, w, params);
    check_supported(input_algo, s);
    check_supported(weight_algo, s);
    const conv::Algo ai = input_gradient_algo(input_algo, s);
    const bool subpixel_weight = weight_algo == kSubpixel;  // its own kernel; conv2d's otherwise
    const conv::Algo aw = subpixel_weight ? ai : conv::parse_algo(weight_algo);
    const T* xp = nchw_arg<const T>(x, "input", s.output_shape());
    const T* wp = nchw_arg<const T>(w, "weight", s.weight_shape());
    const T* dyp = nchw_arg<const T>(grad_y, "grad_output", s.input_shape());
    T* dxp = grad_x.present() ? nchw_arg<T>(grad_x, "grad_input", s.output_shape()) : nullptr;
    T* dwp = grad_w.present() ? nchw_arg<T>(grad_w, "grad_weight", s.weight_shape()) : nullptr;
    T* dbp = vector_arg<T>(grad_b, "grad_bias", s.C);
    cpu::conv_transpose2d_backward<T>(ai, aw, s, xp, wp, dyp, dxp, subpixel_weight ? nullptr : dwp, dbp);
    if (subpixel_weight && dwp) cpu::conv_transpose2d_backward_weight_subpixel<T>(s, xp, dyp, dwp);
  });
}

}  // namespace fastconv::conv_transpose
