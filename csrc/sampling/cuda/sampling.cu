// grid_sample, affine_grid and interpolate on CUDA, the CPU kernels' twins
// (sampling/cpu/grid_sample.cpp, sampling/cpu/interpolate.cpp): one thread per element, running
// a body of grid_sample_body.h or interpolate_body.h, which the CPU tests run over the whole
// grid. grid_sample's input gradient comes as a scatter with atomicAdd (`_atomic`) and as a
// sorted gather without floating-point atomics (`grid_sample_corners` then `_gather`);
// fastconv/cuda/sampling.py chooses. The caller checked the arguments before any launch.
#include "common/grid_stride.h"
#include "sampling/cuda/grid_sample_body.h"
#include "sampling/cuda/interpolate_body.h"

using fastconv::index_t;
namespace sm = fastconv::sampling;

// grid_sample's sizes travel as 6 int64 arguments, its options after the arrays.
#define FASTCONV_GRID_PARAMS index_t N, index_t C, index_t H, index_t W, index_t OH, index_t OW
#define FASTCONV_GRID_OPTIONS int mode, int padding, int align_corners
#define FASTCONV_GRID \
  sm::GridGeometry{N, C, H, W, OH, OW, mode, static_cast<fastconv::bilinear::Padding>(padding), align_corners != 0}
#define FASTCONV_RESIZE_OPTIONS int mode, int align_corners, double scale_h, double scale_w
#define FASTCONV_RESIZE sm::ResizeGeometry{N, C, H, W, OH, OW, mode, align_corners != 0, scale_h, scale_w}

struct AtomicAdd {
  template <class T>
  __device__ void operator()(T* at, T value) const {
    atomicAdd(at, value);
  }
};

#define FASTCONV_SAMPLING_KERNELS(T, SUFFIX)                                                                         \
  extern "C" __global__ void grid_sample_forward_##SUFFIX(index_t count, FASTCONV_GRID_PARAMS, const T* input,      \
                                                          const T* grid, T* out, FASTCONV_GRID_OPTIONS) {            \
    const sm::GridGeometry g = FASTCONV_GRID;                                                                        \
    FASTCONV_GRID_STRIDE(i, count) out[i] = sm::grid_sample_forward_element(g, input, grid, i);                      \
  }                                                                                                                  \
  extern "C" __global__ void grid_sample_grid_gradient_##SUFFIX(index_t count, FASTCONV_GRID_PARAMS, const T* input, \
                                                                const T* grid, const T* grad_output, T* grad_grid,   \
                                                                FASTCONV_GRID_OPTIONS) {                             \
    const sm::GridGeometry g = FASTCONV_GRID;                                                                        \
    FASTCONV_GRID_STRIDE(i, count) sm::grid_sample_grid_gradient(g, input, grid, grad_output, i, grad_grid);         \
  }                                                                                                                  \
  /* grad_input must be zero: the shares are added into it */                                                       \
  extern "C" __global__ void grid_sample_input_gradient_atomic_##SUFFIX(                                             \
      index_t count, FASTCONV_GRID_PARAMS, const T* grid, const T* grad_output, T* grad_input,                      \
      FASTCONV_GRID_OPTIONS) {                                                                                       \
    const sm::GridGeometry g = FASTCONV_GRID;                                                                        \
    FASTCONV_GRID_STRIDE(i, count) sm::grid_sample_input_gradient_scatter(g, grid, grad_output, i, grad_input,       \
                                                                          AtomicAdd{});                              \
  }                                                                                                                  \
  extern "C" __global__ void grid_sample_corners_##SUFFIX(index_t count, FASTCONV_GRID_PARAMS, const T* grid,        \
                                                          int64_t* pixel, T* weight, FASTCONV_GRID_OPTIONS) {        \
    const sm::GridGeometry g = FASTCONV_GRID;                                                                        \
    FASTCONV_GRID_STRIDE(i, count) sm::grid_sample_corner(g, grid, i, pixel, weight);                                \
  }                                                                                                                  \
  extern "C" __global__ void grid_sample_input_gradient_gather_##SUFFIX(                                             \
      index_t count, FASTCONV_GRID_PARAMS, const T* grad_output, const int64_t* order, const int64_t* start,        \
      const T* weight, T* grad_input, FASTCONV_GRID_OPTIONS) {                                                       \
    const sm::GridGeometry g = FASTCONV_GRID;                                                                        \
    FASTCONV_GRID_STRIDE(i, count)                                                                                   \
    grad_input[i] = sm::grid_sample_input_gradient_gather(g, grad_output, order, start, weight, i);                  \
  }                                                                                                                  \
  extern "C" __global__ void affine_grid_forward_##SUFFIX(index_t count, index_t H, index_t W, const T* theta,       \
                                                          T* grid, int align_corners) {                              \
    FASTCONV_GRID_STRIDE(i, count) grid[i] = sm::affine_grid_element(H, W, align_corners != 0, theta, i);            \
  }                                                                                                                  \
  extern "C" __global__ void affine_grid_backward_##SUFFIX(index_t count, index_t H, index_t W, const T* grad_grid,  \
                                                           T* grad_theta, int align_corners) {                       \
    FASTCONV_GRID_STRIDE(i, count)                                                                                   \
    grad_theta[i] = sm::affine_grid_theta_gradient(H, W, align_corners != 0, grad_grid, i);                          \
  }                                                                                                                  \
  extern "C" __global__ void interpolate_forward_##SUFFIX(index_t count, FASTCONV_GRID_PARAMS, const T* input,      \
                                                          T* out, FASTCONV_RESIZE_OPTIONS) {                         \
    const sm::ResizeGeometry g = FASTCONV_RESIZE;                                                                    \
    FASTCONV_GRID_STRIDE(i, count) out[i] = sm::interpolate_forward_element(g, input, i);                            \
  }                                                                                                                  \
  extern "C" __global__ void interpolate_backward_##SUFFIX(index_t count, FASTCONV_GRID_PARAMS,                      \
                                                           const T* grad_output, T* grad_input,                      \
                                                           FASTCONV_RESIZE_OPTIONS) {                                \
    const sm::ResizeGeometry g = FASTCONV_RESIZE;                                                                    \
    FASTCONV_GRID_STRIDE(i, count) grad_input[i] = sm::interpolate_backward_element(g, grad_output, i);              \
  }

FASTCONV_SAMPLING_KERNELS(float, f32)
FASTCONV_SAMPLING_KERNELS(double, f64)
