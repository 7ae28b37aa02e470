// Resampling an NCHW input at other points, with torch.nn.functional's semantics: grid_sample
// and affine_grid (spatial transformer networks, Jaderberg et al. 2015; grids (N, OH, OW, 2) of
// (x, y) in [-1, 1]) and interpolate (bilinear, nearest, bicubic, antialiased). The per-point math is
// common/bilinear.h's. Each entry point checks its arguments and runs the kernel of their dtype
// (cpu/grid_sample.h, cpu/interpolate.h).
#pragma once
#include "common/bilinear.h"
#include "core/tensor_arg.h"

namespace fastconv::sampling {

enum class GridMode { bilinear = 0, nearest = 1 };

struct GridSampleShape {
  index_t N, C, H, W, OH, OW;
  index_t points() const { return OH * OW; }
};

struct GridSampleParams {
  GridMode mode;
  bilinear::Padding padding;
  bool align_corners;
};

// The antialiased modes are torch's antialias=True (bilinear and bicubic only).
enum class InterpolateMode {
  bilinear = 0,
  nearest = 1,
  bicubic = 2,
  bilinear_antialias = 3,
  bicubic_antialias = 4,
  nearest_exact = 5,  // torch's "nearest-exact": the pixel under the output pixel's centre
};
constexpr int kInterpolateModes = 6;

struct InterpolateShape {
  index_t N, C, H, W, OH, OW;
};

struct InterpolateParams {
  InterpolateMode mode;
  bool align_corners;          // not nearest
  double scale_h, scale_w;     // the caller's scale factors, used for the source index; <= 0: none
};

// mode: 0 bilinear, 1 nearest; padding_mode: 0 zeros, 1 border, 2 reflection.
// input (N, C, H, W), grid (N, OH, OW, 2) -> out (N, C, OH, OW)
void grid_sample_forward(const TensorArg& input, const TensorArg& grid, const TensorArg& out, int mode,
                         int padding_mode, bool align_corners);
// grad_output (N, C, OH, OW) -> grad_input (N, C, H, W) and grad_grid (N, OH, OW, 2), each
// overwritten when given.
void grid_sample_backward(const TensorArg& input, const TensorArg& grid, const TensorArg& grad_output,
                          const TensorArg& grad_input, const TensorArg& grad_grid, int mode, int padding_mode,
                          bool align_corners);

// theta (N, 2, 3) -> grid (N, H, W, 2): grid[n, h, w] = theta[n] @ (x_w, y_h, 1).
void affine_grid_forward(const TensorArg& theta, const TensorArg& grid, bool align_corners);
// grad_grid (N, H, W, 2) -> grad_theta (N, 2, 3), overwritten.
void affine_grid_backward(const TensorArg& grad_grid, const TensorArg& grad_theta, bool align_corners);

// mode: an InterpolateMode (0 bilinear, 1 nearest, 2 bicubic, 3 and 4 bilinear and bicubic
// antialiased, 5 nearest-exact). input (N, C, H, W) -> out (N, C, OH, OW); both NCHW, or both
// channels_last (NHWC memory: torch's channels_last), read and written in place.
void interpolate_forward(const TensorArg& input, const TensorArg& out, int mode, bool align_corners, double scale_h,
                         double scale_w);
// grad_output (N, C, OH, OW) -> grad_input (N, C, H, W), overwritten; both NCHW or both
// channels_last.
void interpolate_backward(const TensorArg& grad_output, const TensorArg& grad_input, int mode, bool align_corners,
                          double scale_h, double scale_w);

}  // namespace fastconv::sampling
