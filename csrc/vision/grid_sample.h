// grid_sample and affine_grid (spatial transformer networks, Jaderberg et al. 2015) with
// torch.nn.functional's semantics, NCHW input and (N, OH, OW, 2) grids of (x, y) in [-1, 1].
#pragma once
#include "common/bilinear.h"
#include "core/view.h"

namespace fastconv::vision {

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

// input (N, C, H, W), grid (N, OH, OW, 2) -> out (N, C, OH, OW)
template <class T>
void grid_sample_forward(const GridSampleShape& s, const GridSampleParams& p, const T* input, const T* grid, T* out);

// grad_out (N, C, OH, OW) -> grad_input (N, C, H, W) and grad_grid (N, OH, OW, 2), each
// overwritten when not null.
template <class T>
void grid_sample_backward(const GridSampleShape& s, const GridSampleParams& p, const T* input, const T* grid,
                          const T* grad_out, T* grad_input, T* grad_grid);

// theta (N, 2, 3) -> grid (N, H, W, 2): grid[n, h, w] = theta[n] @ (x_w, y_h, 1).
template <class T>
void affine_grid_forward(index_t N, index_t H, index_t W, bool align_corners, const T* theta, T* grid);

// grad_grid (N, H, W, 2) -> grad_theta (N, 2, 3), overwritten.
template <class T>
void affine_grid_backward(index_t N, index_t H, index_t W, bool align_corners, const T* grad_grid, T* grad_theta);

}  // namespace fastconv::vision
