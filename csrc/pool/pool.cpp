// The checked dispatch of pooling: the pooling's shape from its arguments (PyTorch's rules, via
// common/pool_geometry.h), every array checked against it, then the kernel of their dtype and of
// the input's layout (NCHW, or channels_last: reads_channels_last).
#include "pool/pool.h"

#include <cstdint>

#include "common/pool_geometry.h"
#include "core/checked_math.h"
#include "pool/cpu/pool.h"

namespace fastconv::pool {

namespace {

const char* kAxis[2] = {"height", "width"};

// PyTorch takes kernel_size, stride, padding and dilation as C ints ("value cannot be converted
// to type int without overflow"); within that, pool_output_size cannot overflow int64.
void check_int32(index_t value, const char* name) {
  check(value <= INT32_MAX, name, ": must be at most 2^31 - 1 (PyTorch's int), got ", value);
}

void check_axis(const PoolAxis& a, bool ceil_mode, int d) {
  check_int32(a.kernel, "kernel_size");
  check_int32(a.stride, "stride");
  check_int32(a.padding, "padding");
  check_int32(a.dilation, "dilation");
  switch (pool_axis_error(a, ceil_mode)) {
    case PoolAxisError::kernel: fail<ValueError>("kernel_size: must be >= 1, got ", a.kernel);
    case PoolAxisError::stride: fail<ValueError>("stride: must be >= 1, got ", a.stride);
    case PoolAxisError::dilation: fail<ValueError>("dilation: must be >= 1, got ", a.dilation);
    case PoolAxisError::padding:
      fail<ValueError>("padding: must be >= 0 and at most half the kernel size (PyTorch's rule), got ", a.padding,
                       " for kernel_size ", a.kernel);
    case PoolAxisError::empty_output:
      fail<ValueError>("input: output ", kAxis[d], " ", pool_output_size(a, ceil_mode), " is too small (input ",
                       kAxis[d], " ", a.input, ", kernel_size ", a.kernel, ", padding ", a.padding, ", dilation ",
                       a.dilation, ")");
    case PoolAxisError::none: return;
  }
}

// A pooling kernel maps one (N, C, H, W) array onto another: a forward input -> out, a backward
// grad_output -> grad_input. Both are read in the layout of the input-shaped one (input,
// grad_input) and checked against `s`; then kernel(src, dst, channels_last) runs.
template <class T, class Kernel>
void run_pool(const Pool2dShape& s, const TensorArg& from, const TensorArg& to, bool backward, const Kernel& kernel) {
  const bool nhwc = is_channels_last(backward ? to : from);
  const T* src = image_arg<const T>(from, backward ? "grad_output" : "input",
                                    backward ? s.output_shape() : s.input_shape(), nhwc);
  T* dst = image_arg<T>(to, backward ? "grad_input" : "out", backward ? s.input_shape() : s.output_shape(), nhwc);
  kernel(src, dst, nhwc);
}

}  // namespace

Pool2dShape Pool2dShape::windowed(const std::array<index_t, 4>& input, const Pool2dWindow& win) {
  Pool2dShape s{input[0], input[1], input[2], input[3], 0, 0, win};
  const index_t in[2] = {s.H, s.W};
  index_t out[2];
  for (int d = 0; d < 2; ++d) {
    const PoolAxis axis{in[d], win.kernel[d], win.stride[d], win.padding[d], win.dilation[d]};
    check_axis(axis, win.ceil_mode, d);
    out[d] = pool_output_size(axis, win.ceil_mode);
  }
  s.P = out[0];
  s.Q = out[1];
  // Max pooling keeps a row's indices as int32 while it works (cpu/pool.cpp, max_pool_row).
  check(s.H * s.W <= INT32_MAX, "input: planes of more than 2^31 - 1 values are not supported");
  return s;
}

Pool2dShape Pool2dShape::adaptive(const std::array<index_t, 4>& input, const std::array<index_t, 2>& output) {
  for (int d = 0; d < 2; ++d) {
    check(output[d] >= 1, "output_size: must be >= 1, got ", output[d]);
    check(input[2 + d] >= 1, "input: ", kAxis[d], " must be >= 1 for adaptive pooling");
    // adaptive_end computes (i + 1) * input
    checked_mul(input[2 + d], output[d], "output_size: output ", kAxis[d], " * input ", kAxis[d]);
  }
  return {input[0], input[1], input[2], input[3], output[0], output[1], {}};
}

std::array<index_t, 4> pool2d_output_shape(const std::array<index_t, 4>& input, const Pool2dWindow& win) {
  return Pool2dShape::windowed(input, win).output_shape();
}

void max_pool2d_forward(const TensorArg& x, const TensorArg& y, const TensorArg& indices, const Pool2dWindow& win) {
  dispatch_float(x, "input", [&](auto tag) {
    using T = decltype(tag);
    const auto s = Pool2dShape::windowed(shape4(x, "input", "(N, C, H, W)"), win);
    const bool nhwc = is_channels_last(x);
    const T* xp = image_arg<const T>(x, "input", s.input_shape(), nhwc);
    T* yp = image_arg<T>(y, "out", s.output_shape(), nhwc);
    std::int64_t* ip = indices.present() ? image_arg<std::int64_t>(indices, "indices", s.output_shape(), nhwc) : nullptr;
    (nhwc ? cpu::max_pool2d_forward_channels_last<T> : cpu::max_pool2d_forward<T>)(s, xp, yp, ip);
  });
}

void max_pool2d_backward(const TensorArg& grad_y, const TensorArg& indices, const TensorArg& grad_x) {
  dispatch_float(grad_y, "grad_output", [&](auto tag) {
    using T = decltype(tag);
    const auto out = shape4(grad_y, "grad_output", "(N, C, P, Q)");
    const auto in = shape4(grad_x, "grad_input", "(N, C, H, W)");
    check(in[0] == out[0] && in[1] == out[1], "input_shape: batch and channels must match grad_output's");
    const Pool2dShape s{in[0], in[1], in[2], in[3], out[2], out[3], {}};
    const bool nhwc = is_channels_last(grad_x);
    const T* dyp = image_arg<const T>(grad_y, "grad_output", s.output_shape(), nhwc);
    const std::int64_t* ip = image_arg<const std::int64_t>(indices, "indices", s.output_shape(), nhwc);
    T* dxp = image_arg<T>(grad_x, "grad_input", s.input_shape(), nhwc);
    (nhwc ? cpu::max_pool2d_backward_channels_last<T> : cpu::max_pool2d_backward<T>)(s, dyp, ip, dxp);
  });
}

void avg_pool2d_forward(const TensorArg& x, const TensorArg& y, const Pool2dWindow& win, bool count_include_pad,
                        index_t divisor) {
  dispatch_float(x, "input", [&](auto tag) {
    using T = decltype(tag);
    const auto s = Pool2dShape::windowed(shape4(x, "input", "(N, C, H, W)"), win);
    run_pool<T>(s, x, y, false, [&](const T* src, T* dst, bool nhwc) {
      (nhwc ? cpu::avg_pool2d_forward_channels_last<T> : cpu::avg_pool2d_forward<T>)(s, count_include_pad, divisor,
                                                                                       src, dst);
    });
  });
}

void avg_pool2d_backward(const TensorArg& grad_y, const TensorArg& grad_x, const Pool2dWindow& win,
                         bool count_include_pad, index_t divisor) {
  dispatch_float(grad_y, "grad_output", [&](auto tag) {
    using T = decltype(tag);
    const auto s = Pool2dShape::windowed(shape4(grad_x, "grad_input", "(N, C, H, W)"), win);
    run_pool<T>(s, grad_y, grad_x, true, [&](const T* src, T* dst, bool nhwc) {
      (nhwc ? cpu::avg_pool2d_backward_channels_last<T> : cpu::avg_pool2d_backward<T>)(s, count_include_pad, divisor,
                                                                                         src, dst);
    });
  });
}

void adaptive_avg_pool2d_forward(const TensorArg& x, const TensorArg& y) {
  dispatch_float(x, "input", [&](auto tag) {
    using T = decltype(tag);
    const auto out = shape4(y, "out", "(N, C, P, Q)");
    const auto s = Pool2dShape::adaptive(shape4(x, "input", "(N, C, H, W)"), {out[2], out[3]});
    run_pool<T>(s, x, y, false, [&](const T* src, T* dst, bool nhwc) {
      (nhwc ? cpu::adaptive_avg_pool2d_forward_channels_last<T> : cpu::adaptive_avg_pool2d_forward<T>)(s, src, dst);
    });
  });
}

void adaptive_avg_pool2d_backward(const TensorArg& grad_y, const TensorArg& grad_x) {
  dispatch_float(grad_y, "grad_output", [&](auto tag) {
    using T = decltype(tag);
    const auto out = shape4(grad_y, "grad_output", "(N, C, P, Q)");
    const auto s = Pool2dShape::adaptive(shape4(grad_x, "grad_input", "(N, C, H, W)"), {out[2], out[3]});
    run_pool<T>(s, grad_y, grad_x, true, [&](const T* src, T* dst, bool nhwc) {
      (nhwc ? cpu::adaptive_avg_pool2d_backward_channels_last<T> : cpu::adaptive_avg_pool2d_backward<T>)(s, src, dst);
    });
  });
}

}  // namespace fastconv::pool
