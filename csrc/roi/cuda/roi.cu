// roi_align and roi_pool on CUDA, the CPU kernels' twins (roi/cpu/roi_align.cpp,
// roi/cpu/roi_pool.cpp): one thread per output element, running a body of roi_align_body.h or
// roi_pool_body.h, which the CPU tests run over the whole grid. Each backward comes as a
// scatter with atomicAdd (`_atomic`) and as a deterministic kernel without floating-point
// atomics (`_gather`, `_plane`); fastconv/cuda/roi.py chooses. The caller checked the geometry
// and every box (through fastconv._C's checks) before any launch.
#include "common/grid_stride.h"
#include "roi/cuda/roi_align_body.h"
#include "roi/cuda/roi_pool_body.h"

using fastconv::index_t;
namespace roi = fastconv::roi;

// The sizes travel as 7 int64 arguments, in RoiShape's order.
#define FASTCONV_ROI_PARAMS index_t N, index_t C, index_t H, index_t W, index_t K, index_t PH, index_t PW
#define FASTCONV_ROI_SHAPE roi::RoiShape{N, C, H, W, K, PH, PW}
#define FASTCONV_ALIGN_PARAMS double spatial_scale, index_t sampling_ratio, int aligned
#define FASTCONV_ALIGN roi::RoiAlignParams{spatial_scale, sampling_ratio, aligned != 0}

struct AtomicAdd {
  template <class T>
  __device__ void operator()(T* at, T value) const {
    atomicAdd(at, value);
  }
};

#define FASTCONV_ROI_KERNELS(T, SUFFIX)                                                                             \
  extern "C" __global__ void roi_align_forward_##SUFFIX(index_t count, FASTCONV_ROI_PARAMS, const T* input,        \
                                                        const T* boxes, T* out, FASTCONV_ALIGN_PARAMS) {           \
    const roi::RoiShape s = FASTCONV_ROI_SHAPE;                                                                     \
    FASTCONV_GRID_STRIDE(i, count) out[i] = roi::roi_align_forward_element(s, FASTCONV_ALIGN, input, boxes, i);     \
  }                                                                                                                 \
  /* grad_input must be zero: the shares are added into it */                                                      \
  extern "C" __global__ void roi_align_backward_atomic_##SUFFIX(index_t count, FASTCONV_ROI_PARAMS,                 \
                                                                const T* grad_output, const T* boxes,               \
                                                                T* grad_input, FASTCONV_ALIGN_PARAMS) {              \
    const roi::RoiShape s = FASTCONV_ROI_SHAPE;                                                                     \
    FASTCONV_GRID_STRIDE(i, count)                                                                                  \
    roi::roi_align_backward_scatter(s, FASTCONV_ALIGN, grad_output, boxes, i, grad_input, AtomicAdd{});             \
  }                                                                                                                 \
  extern "C" __global__ void roi_align_backward_gather_##SUFFIX(index_t count, FASTCONV_ROI_PARAMS,                 \
                                                                const T* grad_output, const T* boxes,               \
                                                                T* grad_input, FASTCONV_ALIGN_PARAMS) {              \
    const roi::RoiShape s = FASTCONV_ROI_SHAPE;                                                                     \
    FASTCONV_GRID_STRIDE(i, count)                                                                                  \
    grad_input[i] = roi::roi_align_backward_gather(s, FASTCONV_ALIGN, grad_output, boxes, i);                       \
  }                                                                                                                 \
  extern "C" __global__ void roi_pool_forward_##SUFFIX(index_t count, FASTCONV_ROI_PARAMS, const T* input,         \
                                                       const T* boxes, T* out, int64_t* argmax,                     \
                                                       double spatial_scale) {                                      \
    const roi::RoiShape s = FASTCONV_ROI_SHAPE;                                                                     \
    FASTCONV_GRID_STRIDE(i, count) roi::roi_pool_forward_element(s, spatial_scale, input, boxes, i, out, argmax);   \
  }                                                                                                                 \
  /* grad_input must be zero: the entries are added into it */                                                     \
  extern "C" __global__ void roi_pool_backward_atomic_##SUFFIX(index_t count, const T* grad_output,                 \
                                                               const int64_t* argmax, T* grad_input) {              \
    FASTCONV_GRID_STRIDE(i, count) roi::roi_pool_backward_scatter(grad_output, argmax, i, grad_input, AtomicAdd{}); \
  }                                                                                                                 \
  extern "C" __global__ void roi_pool_backward_plane_##SUFFIX(index_t count, FASTCONV_ROI_PARAMS,                   \
                                                              const T* grad_output, const int64_t* argmax,          \
                                                              T* grad_input) {                                      \
    const roi::RoiShape s = FASTCONV_ROI_SHAPE;                                                                     \
    FASTCONV_GRID_STRIDE(i, count) roi::roi_pool_backward_plane(s, grad_output, argmax, i, grad_input);             \
  }

FASTCONV_ROI_KERNELS(float, f32)
FASTCONV_ROI_KERNELS(double, f64)
