// The sizes of a 2-d convolution along one spatial axis, as torch.nn.functional.conv2d and
// conv_transpose2d define them: shared by the host's argument checks (conv/conv.cpp,
// conv_transpose/conv_transpose.cpp) and the kernels of every device. Checks return what is
// wrong; the host turns that into an exception naming the argument.
#pragma once
#include "common/host_device.h"
#include "common/index.h"
#include "common/index_div.h"

namespace fastconv::conv {

// One spatial axis of a convolution: the input's size, the kernel's, and the parameters along
// it. pad_end may be negative: the last input rows are then never read, which is how a
// transposed convolution's output_padding appears in its equivalent convolution.
struct ConvAxis {
  index_t input, kernel, stride, pad_begin, pad_end, dilation;
};

// The input span the dilated kernel covers.
FASTCONV_HD inline index_t dilated_kernel(const ConvAxis& a) { return a.dilation * (a.kernel - 1) + 1; }
FASTCONV_HD inline index_t padded_input(const ConvAxis& a) { return a.input + a.pad_begin + a.pad_end; }

// What is wrong with an axis, first problem first; none: conv_output_size(a) is its output size.
enum class ConvAxisError { none, stride, dilation, padding, kernel_larger_than_input };

FASTCONV_HD inline ConvAxisError conv_axis_error(const ConvAxis& a) {
  if (a.stride < 1) return ConvAxisError::stride;
  if (a.dilation < 1) return ConvAxisError::dilation;
  if (a.pad_begin < 0) return ConvAxisError::padding;
  if (dilated_kernel(a) > padded_input(a)) return ConvAxisError::kernel_larger_than_input;
  return ConvAxisError::none;
}

FASTCONV_HD inline index_t conv_output_size(const ConvAxis& a) {
  return (padded_input(a) - dilated_kernel(a)) / a.stride + 1;
}

// A strided convolution runs as the stride-1 convolution of its stride phases; each phase's
// filter has ceil(kernel / stride) taps along the axis (conv/cpu/tiled_conv.h).
// (ceil without kernel + stride - 1, which overflows for a stride near 2^63)
FASTCONV_HD inline index_t phase_kernel_size(index_t kernel, index_t stride) {
  return kernel / stride + (kernel % stride != 0);
}

// One spatial axis of a transposed convolution (torch.nn.functional.conv_transpose2d).
struct ConvTransposeAxis {
  index_t input, kernel, stride, padding, output_padding, dilation;
};

FASTCONV_HD inline index_t conv_transpose_output_size(const ConvTransposeAxis& a) {
  return (a.input - 1) * a.stride - 2 * a.padding + a.dilation * (a.kernel - 1) + a.output_padding + 1;
}

// What is wrong with a transposed axis, first problem first. PyTorch's rule: "output padding
// must be smaller than either stride or dilation".
enum class ConvTransposeAxisError { none, stride, dilation, padding, output_padding, empty_output };

FASTCONV_HD inline ConvTransposeAxisError conv_transpose_axis_error(const ConvTransposeAxis& a) {
  if (a.stride < 1) return ConvTransposeAxisError::stride;
  if (a.dilation < 1) return ConvTransposeAxisError::dilation;
  if (a.padding < 0) return ConvTransposeAxisError::padding;
  if (a.output_padding < 0 || a.output_padding >= index_max(a.stride, a.dilation))
    return ConvTransposeAxisError::output_padding;
  if (conv_transpose_output_size(a) < 1) return ConvTransposeAxisError::empty_output;
  return ConvTransposeAxisError::none;
}

// The convolution whose input gradient the transposed one is pads its end by this much: the
// output_padding rows lie past every window, and its output size is then our input size.
FASTCONV_HD inline index_t equivalent_pad_end(const ConvTransposeAxis& a) { return a.padding - a.output_padding; }

// The i in [0, count) for which offset + i * stride lies in [0, limit): [lo, hi), maybe empty.
// Splits a row of outputs into its padded and in-image parts (conv and pool kernels).
struct Range {
  index_t lo, hi;
};

FASTCONV_HD inline Range valid_range(index_t offset, index_t stride, index_t limit, index_t count) {
  // ceil(-offset / stride) as (-offset - 1) / stride + 1: -offset + stride - 1 overflows for a stride near 2^63
  const index_t lo = index_min(count, offset >= 0 ? 0 : (-offset - 1) / stride + 1);
  const index_t hi = offset >= limit ? 0 : index_min(count, (limit - 1 - offset) / stride + 1);
  return {lo, index_max(hi, lo)};
}

// One output phase of a strided input gradient (a transposed convolution's output) along one
// axis, without dilation: positions a + i * stride, i < outputs, of an axis of `size` receive the
// gradient at i + offset - m through kernel tap first + m * stride, m < taps. The sub-pixel
// decomposition of conv_transpose's subpixel.cpp and conv's channels_last.cpp.
struct AxisPhase {
  index_t first, taps, outputs, offset;
};
FASTCONV_HD inline AxisPhase axis_phase(index_t a, index_t size, index_t kernel, index_t stride, index_t pad) {
  const index_t first = (a + pad) % stride;
  return {first, first < kernel ? (kernel - first + stride - 1) / stride : 0,
          a < size ? (size - a + stride - 1) / stride : 0, (a + pad - first) / stride};
}

// The output position o along `axis` whose tap t reads input position `at`, or -1 when none does:
// what a gather over the taps of a convolution's adjoint (col2im, an input gradient) visits.
FASTCONV_HD inline index_t tap_output(const ConvAxis& axis, index_t outputs, index_t at, index_t t) {
  const index_t offset = at + axis.pad_begin - t * axis.dilation;
  if (offset < 0 || index_mod(offset, axis.stride) != 0) return -1;
  const index_t o = index_div(offset, axis.stride);
  return o < outputs ? o : -1;
}

}  // namespace fastconv::conv
