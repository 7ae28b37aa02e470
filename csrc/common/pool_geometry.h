// The sizes and windows of 2-d pooling along one spatial axis, as torch.nn.functional's
// max_pool2d, avg_pool2d and adaptive_avg_pool2d define them: shared by the host's argument
// checks (pool/pool.cpp) and the kernels of every device.
#pragma once
#include "common/host_device.h"
#include "common/index.h"

namespace fastconv::pool {

// One spatial axis of a windowed pooling: the input's size and the window along it.
struct PoolAxis {
  index_t input, kernel, stride, padding, dilation;
};

// Division rounding towards negative infinity.
FASTCONV_HD inline index_t floor_div(index_t a, index_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

// PyTorch's pooling_output_shape: in ceil mode the last window must start inside the input or
// its left padding, else it is dropped.
FASTCONV_HD inline index_t pool_output_size(const PoolAxis& a, bool ceil_mode) {
  const index_t span = a.dilation * (a.kernel - 1) + 1;
  index_t out = floor_div(a.input + 2 * a.padding - span + (ceil_mode ? a.stride - 1 : 0), a.stride) + 1;
  if (ceil_mode && (out - 1) * a.stride >= a.input + a.padding) --out;
  return out;
}

// What is wrong with an axis (PyTorch's pool2d_shape_check), first problem first; none:
// pool_output_size is its output size.
enum class PoolAxisError { none, kernel, stride, dilation, padding, empty_output };

FASTCONV_HD inline PoolAxisError pool_axis_error(const PoolAxis& a, bool ceil_mode) {
  if (a.kernel < 1) return PoolAxisError::kernel;
  if (a.stride < 1) return PoolAxisError::stride;
  if (a.dilation < 1) return PoolAxisError::dilation;
  if (a.padding < 0 || a.padding > a.kernel / 2) return PoolAxisError::padding;
  if (pool_output_size(a, ceil_mode) < 1) return PoolAxisError::empty_output;
  return PoolAxisError::none;
}

// First in-bounds coordinate of a window starting at `start` (PyTorch's `while (ih0 < 0) ih0 += d`).
FASTCONV_HD inline index_t first_tap(index_t start, index_t dilation) {
  return start >= 0 ? start : start + (-start + dilation - 1) / dilation * dilation;
}

// Window [start, end) of output `o` of avg_pool2d along one axis, and its size counting padding.
struct AvgExtent {
  index_t start, end, padded_size;
};

FASTCONV_HD inline AvgExtent avg_extent(index_t o, index_t stride, index_t pad, index_t kernel, index_t in) {
  const index_t start = o * stride - pad, end = index_min(start + kernel, in + pad);
  return {index_max(start, 0), index_min(end, in), end - start};
}

// Adaptive windows: start = floor(i * in / out), end = ceil((i + 1) * in / out).
FASTCONV_HD inline index_t adaptive_start(index_t i, index_t in, index_t out) { return i * in / out; }
FASTCONV_HD inline index_t adaptive_end(index_t i, index_t in, index_t out) { return ((i + 1) * in + out - 1) / out; }

}  // namespace fastconv::pool
