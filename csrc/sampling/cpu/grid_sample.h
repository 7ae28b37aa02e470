// The grid_sample and affine_grid kernels (sampling/sampling.h) on the CPU, with
// torch.nn.functional's semantics, grid_sample for NCHW and for channels_last (NHWC memory)
// inputs. Their arrays are checked by sampling/sampling.cpp.
#pragma once
#include "core/view.h"
#include "sampling/sampling.h"

namespace fastconv::sampling::cpu {

// input (N, C, H, W), grid (N, OH, OW, 2) -> out (N, C, OH, OW)
template <class T>
void grid_sample_forward(const GridSampleShape& s, const GridSampleParams& p, const T* input, const T* grid, T* out);

// grad_out (N, C, OH, OW) -> grad_input (N, C, H, W) and grad_grid (N, OH, OW, 2), each
// overwritten when not null.
template <class T>
void grid_sample_backward(const GridSampleShape& s, const GridSampleParams& p, const T* input, const T* grid,
                          const T* grad_out, T* grad_input, T* grad_grid);

// The same over channels_last memory: input (N, H, W, C) -> out (N, OH, OW, C), grad_out
// (N, OH, OW, C) -> grad_input (N, H, W, C); grids as above. The same values, bit for bit.
template <class T>
void grid_sample_forward_channels_last(const GridSampleShape& s, const GridSampleParams& p, const T* input,
                                       const T* grid, T* out);
template <class T>
void grid_sample_backward_channels_last(const GridSampleShape& s, const GridSampleParams& p, const T* input,
                                        const T* grid, const T* grad_out, T* grad_input, T* grad_grid);

// theta (N, 2, 3) -> grid (N, H, W, 2): grid[n, h, w] = theta[n] @ (x_w, y_h, 1).
template <class T>
void affine_grid_forward(index_t N, index_t H, index_t W, bool align_corners, const T* theta, T* grid);

// grad_grid (N, H, W, 2) -> grad_theta (N, 2, 3), overwritten.
template <class T>
void affine_grid_backward(index_t N, index_t H, index_t W, bool align_corners, const T* grad_grid, T* grad_theta);

}  // namespace fastconv::sampling::cpu
