// 2-d pooling on CUDA, the CPU kernels' twins (pool/cpu/pool.cpp): one thread per output
// (forward) or per input element (backward, gathering), each running a body of pool_body.h,
// which the CPU tests run over the whole grid. The geometry was checked by the caller
// (fastconv/cuda/pool.py, through fastconv._C's checks) before any launch.
#include "common/grid_stride.h"
#include "pool/cuda/pool_body.h"

using fastconv::index_t;
namespace pl = fastconv::pool;

// The window's geometry travels as 12 int64 arguments, in WindowGeometry's order.
#define FASTCONV_WINDOW_PARAMS index_t H, index_t W, index_t P, index_t Q, index_t kh, index_t kw, index_t sh, \
    index_t sw, index_t ph, index_t pw, index_t dh, index_t dw
#define FASTCONV_WINDOW pl::WindowGeometry{H, W, P, Q, kh, kw, sh, sw, ph, pw, dh, dw}

#define FASTCONV_POOL_KERNELS(T, SUFFIX)                                                                              \
  extern "C" __global__ void max_pool2d_forward_##SUFFIX(index_t count, FASTCONV_WINDOW_PARAMS, const T* x, T* y,    \
                                                         int64_t* indices) {                                          \
    const pl::WindowGeometry g = FASTCONV_WINDOW;                                                                     \
    FASTCONV_GRID_STRIDE(o, count) pl::max_pool2d_forward_body(o, g, x, y, indices);                                  \
  }                                                                                                                   \
  extern "C" __global__ void max_pool2d_backward_##SUFFIX(index_t count, index_t HW, index_t PQ, const T* grad_y,    \
                                                          const int64_t* indices, T* grad_x) {                        \
    FASTCONV_GRID_STRIDE(o, count) pl::max_pool2d_backward_body(o, HW, PQ, grad_y, indices, grad_x);                  \
  }                                                                                                                   \
  extern "C" __global__ void avg_pool2d_forward_##SUFFIX(index_t count, FASTCONV_WINDOW_PARAMS,                       \
                                                         int count_include_pad, index_t divisor, const T* x, T* y) {  \
    const pl::WindowGeometry g = FASTCONV_WINDOW;                                                                     \
    FASTCONV_GRID_STRIDE(o, count) pl::avg_pool2d_forward_body(o, g, count_include_pad != 0, divisor, x, y);          \
  }                                                                                                                   \
  extern "C" __global__ void avg_pool2d_backward_##SUFFIX(index_t count, FASTCONV_WINDOW_PARAMS,                      \
                                                          int count_include_pad, index_t divisor, const T* grad_y,    \
                                                          T* grad_x) {                                                \
    const pl::WindowGeometry g = FASTCONV_WINDOW;                                                                     \
    FASTCONV_GRID_STRIDE(i, count) pl::avg_pool2d_backward_body(i, g, count_include_pad != 0, divisor, grad_y, grad_x); \
  }                                                                                                                   \
  extern "C" __global__ void adaptive_avg_pool2d_forward_##SUFFIX(index_t count, index_t H, index_t W, index_t P,    \
                                                                  index_t Q, const T* x, T* y) {                      \
    FASTCONV_GRID_STRIDE(o, count) pl::adaptive_avg_pool2d_forward_body(o, H, W, P, Q, x, y);                         \
  }                                                                                                                   \
  extern "C" __global__ void adaptive_avg_pool2d_backward_##SUFFIX(index_t count, index_t H, index_t W, index_t P,   \
                                                                   index_t Q, const T* grad_y, T* grad_x) {           \
    FASTCONV_GRID_STRIDE(i, count) pl::adaptive_avg_pool2d_backward_body(i, H, W, P, Q, grad_y, grad_x);              \
  }

FASTCONV_POOL_KERNELS(float, f32)
FASTCONV_POOL_KERNELS(double, f64)
