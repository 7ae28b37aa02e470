#include "conv/conv2d.h"

#include "core/errors.h"

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

}  // namespace fastconv::conv
