// The checked dispatch of grid_sample, affine_grid and interpolate: the sizes from the arrays,
// the modes checked, every array checked against them, then the kernel of their dtype.
#include "sampling/sampling.h"

#include <cmath>
#include <cstdint>

#include "sampling/cpu/grid_sample.h"
#include "sampling/cpu/interpolate.h"

namespace fastconv::sampling {

namespace {

GridSampleParams grid_params(int mode, int padding, bool align_corners) {
  check(mode == 0 || mode == 1, "mode: expected 0 (bilinear) or 1 (nearest), got ", mode);
  check(padding >= 0 && padding <= 2, "padding_mode: expected 0 (zeros), 1 (border) or 2 (reflection), got ", padding);
  return {static_cast<GridMode>(mode), static_cast<bilinear::Padding>(padding), align_corners};
}

// The sizes of a grid_sample call from the input (N, C, H, W) and the grid (N, OH, OW, 2).
GridSampleShape grid_shape(const TensorArg& x, const char* x_name, const TensorArg& grid) {
  const auto in = shape4(x, x_name, "(N, C, H, W)");
  if (grid.ndim != 4 || grid.shape[0] != in[0] || grid.shape[3] != 2)
    fail<ValueError>("grid: expected shape (", in[0], ", H_out, W_out, 2), got ", shape_str(grid));
  // Zero padding reads corner 0 with weight 0; an empty plane has no such element.
  check(in[2] > 0 && in[3] > 0, x_name, ": expected non-empty spatial dimensions, got shape ", shape_str(x));
  check(in[2] * in[3] <= INT32_MAX, x_name, ": planes of more than 2^31 - 1 pixels are not supported, got shape ",
        shape_str(x));  // the kernel's point tables hold 32-bit offsets
  return {in[0], in[1], in[2], in[3], grid.shape[1], grid.shape[2]};
}

// The sizes of an interpolate call: the input-side and output-side arrays share N and C.
InterpolateShape interpolate_shape(const TensorArg& x, const char* x_name, const TensorArg& y, const char* y_name) {
  const auto in = shape4(x, x_name, "(N, C, H, W)"), out = shape4(y, y_name, "(N, C, H_out, W_out)");
  check(in[0] == out[0] && in[1] == out[1], y_name, ": expected shape (", in[0], ", ", in[1],
        ", H_out, W_out), got ", shape_str(y));
  return {in[0], in[1], in[2], in[3], out[2], out[3]};
}

// A scale factor is 0 (the kernels use input size / output size) or positive, and the kernels
// take source index = output index / scale to an int64: NaN, a negative scale, or one so small
// that the last output's source index leaves int64 would be a silent fallback or a wild index.
void check_scale(double scale, index_t out, const char* name) {
  const bool valid = scale == 0 || (std::isfinite(scale) && scale > 0 && double(out) / scale < 0x1p62);
  check(valid, name, ": expected 0 (input size / output size) or a positive finite scale whose source indices "
        "fit in 64 bits, got ", scale);
}

InterpolateParams interpolate_params(const InterpolateShape& s, int mode, bool align_corners, double scale_h,
                                     double scale_w) {
  check(mode >= 0 && mode < kInterpolateModes, "mode: expected 0 (bilinear), 1 (nearest), 2 (bicubic), "
        "3 (antialiased bilinear), 4 (antialiased bicubic) or 5 (nearest-exact), got ", mode);
  check_scale(scale_h, s.OH, "scale_h");
  check_scale(scale_w, s.OW, "scale_w");
  return {static_cast<InterpolateMode>(mode), align_corners, scale_h, scale_w};
}

}  // namespace

void grid_sample_forward(const TensorArg& x, const TensorArg& grid, const TensorArg& out, int mode, int padding,
                         bool align) {
  dispatch_float(x, "input", [&](auto tag) {
    using T = decltype(tag);
    const GridSampleShape s = grid_shape(x, "input", grid);
    const GridSampleParams p = grid_params(mode, padding, align);
    const bool channels_last = channels_last_call(x, out);
    const T* xp = image_arg<const T>(x, "input", {s.N, s.C, s.H, s.W}, channels_last);
    const T* gp = shaped_arg<const T>(grid, "grid", "(N, H_out, W_out, 2)", std::array<index_t, 4>{s.N, s.OH, s.OW, 2});
    T* op = image_arg<T>(out, "out", {s.N, s.C, s.OH, s.OW}, channels_last);
    (channels_last ? cpu::grid_sample_forward_channels_last<T> : cpu::grid_sample_forward<T>)(s, p, xp, gp, op);
  });
}

void grid_sample_backward(const TensorArg& x, const TensorArg& grid, const TensorArg& grad_y,
                          const TensorArg& grad_x, const TensorArg& grad_grid, int mode, int padding, bool align) {
  dispatch_float(x, "input", [&](auto tag) {
    using T = decltype(tag);
    const GridSampleShape s = grid_shape(x, "input", grid);
    const GridSampleParams p = grid_params(mode, padding, align);
    const std::array<index_t, 4> grid_dims{s.N, s.OH, s.OW, 2};
    const bool channels_last = channels_last_call(x, grad_y, grad_x);
    const T* xp = image_arg<const T>(x, "input", {s.N, s.C, s.H, s.W}, channels_last);
    const T* gp = shaped_arg<const T>(grid, "grid", "(N, H_out, W_out, 2)", grid_dims);
    const T* dyp = image_arg<const T>(grad_y, "grad_output", {s.N, s.C, s.OH, s.OW}, channels_last);
    T* dxp = grad_x.present() ? image_arg<T>(grad_x, "grad_input", {s.N, s.C, s.H, s.W}, channels_last) : nullptr;
    T* dgp = grad_grid.present() ? shaped_arg<T>(grad_grid, "grad_grid", "(N, H_out, W_out, 2)", grid_dims) : nullptr;
    (channels_last ? cpu::grid_sample_backward_channels_last<T> : cpu::grid_sample_backward<T>)(s, p, xp, gp, dyp,
                                                                                                 dxp, dgp);
  });
}

void affine_grid_forward(const TensorArg& theta, const TensorArg& grid, bool align) {
  dispatch_float(theta, "theta", [&](auto tag) {
    using T = decltype(tag);
    const auto g = shape4(grid, "grid", "(N, H, W, 2)");
    const T* tp = shaped_arg<const T>(theta, "theta", "(N, 2, 3)", std::array<index_t, 3>{g[0], 2, 3});
    T* gp = shaped_arg<T>(grid, "grid", "(N, H, W, 2)", std::array<index_t, 4>{g[0], g[1], g[2], 2});
    cpu::affine_grid_forward<T>(g[0], g[1], g[2], align, tp, gp);
  });
}

void affine_grid_backward(const TensorArg& grad_grid, const TensorArg& grad_theta, bool align) {
  dispatch_float(grad_grid, "grad_grid", [&](auto tag) {
    using T = decltype(tag);
    const auto g = shape4(grad_grid, "grad_grid", "(N, H, W, 2)");
    const T* gp = shaped_arg<const T>(grad_grid, "grad_grid", "(N, H, W, 2)", std::array<index_t, 4>{g[0], g[1], g[2], 2});
    T* tp = shaped_arg<T>(grad_theta, "grad_theta", "(N, 2, 3)", std::array<index_t, 3>{g[0], 2, 3});
    cpu::affine_grid_backward<T>(g[0], g[1], g[2], align, gp, tp);
  });
}

void interpolate_forward(const TensorArg& x, const TensorArg& out, int mode, bool align, double sh, double sw) {
  dispatch_float(x, "input", [&](auto tag) {
    using T = decltype(tag);
    const InterpolateShape s = interpolate_shape(x, "input", out, "out");
    const InterpolateParams p = interpolate_params(s, mode, align, sh, sw);
    const bool channels_last = channels_last_call(x, out);
    const T* xp = image_arg<const T>(x, "input", {s.N, s.C, s.H, s.W}, channels_last);
    T* op = image_arg<T>(out, "out", {s.N, s.C, s.OH, s.OW}, channels_last);
    (channels_last ? cpu::interpolate_forward_channels_last<T> : cpu::interpolate_forward<T>)(s, p, xp, op);
  });
}

void interpolate_backward(const TensorArg& grad_y, const TensorArg& grad_x, int mode, bool align, double sh,
                          double sw) {
  dispatch_float(grad_y, "grad_output", [&](auto tag) {
    using T = decltype(tag);
    const InterpolateShape s = interpolate_shape(grad_x, "grad_input", grad_y, "grad_output");
    const InterpolateParams p = interpolate_params(s, mode, align, sh, sw);
    const bool channels_last = channels_last_call(grad_y, grad_x);
    const T* dyp = image_arg<const T>(grad_y, "grad_output", {s.N, s.C, s.OH, s.OW}, channels_last);
    T* dxp = image_arg<T>(grad_x, "grad_input", {s.N, s.C, s.H, s.W}, channels_last);
    (channels_last ? cpu::interpolate_backward_channels_last<T> : cpu::interpolate_backward<T>)(s, p, dyp, dxp);
  });
}

}  // namespace fastconv::sampling
