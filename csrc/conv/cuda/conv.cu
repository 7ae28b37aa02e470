// The element-wise kernels of conv2d on CUDA: im2col and its adjoint col2im (the CPU's are in
// conv/cpu/im2col.cpp), so that a convolution is im2col and a GEMM, its input gradient a GEMM
// and col2im; Winograd F(2x2, 3x3)'s and F(4x4, 3x3)'s transforms around their GEMMs; and
// depthwise convolution's three directions; FFT convolution's per-bin products between cuFFT's
// transforms. One thread per output element (per tile for Winograd, per partial sum for the
// depthwise weight gradient, per complex bin for FFT), each running a body of im2col_body.h,
// winograd_body.h, depthwise_body.h or spectral_body.h; the geometry was checked by the caller
// (fastconv/cuda/im2col.py, fastconv/cuda/conv.py, through fastconv._C's checks) before any
// launch. The implicit GEMM convolution, whose threads share tiles, is in gemm/cuda/gemm.cu.
#include "common/grid_stride.h"
#include "conv/cuda/depthwise_body.h"
#include "conv/cuda/im2col_body.h"
#include "conv/cuda/spectral_body.h"
#include "conv/cuda/winograd_body.h"

using fastconv::index_t;
namespace cv = fastconv::conv;

// The geometry travels as 14 int64 arguments, in ColumnsGeometry's order (pad_end unused).
#define FASTCONV_COLUMNS_PARAMS index_t N, index_t C, index_t H, index_t W, index_t R, index_t S, index_t sh, \
    index_t sw, index_t ph, index_t pw, index_t dh, index_t dw, index_t P, index_t Q
#define FASTCONV_COLUMNS cv::ColumnsGeometry{N, C, {H, R, sh, ph, 0, dh}, {W, S, sw, pw, 0, dw}, P, Q}

#define FASTCONV_COLUMN_KERNELS(T, SUFFIX)                                                                  \
  extern "C" __global__ void im2col_##SUFFIX(index_t count, FASTCONV_COLUMNS_PARAMS, const T* x, T* cols) { \
    const cv::ColumnsGeometry g = FASTCONV_COLUMNS;                                                         \
    FASTCONV_GRID_STRIDE(i, count) cols[i] = cv::im2col_element(g, x, i);                                   \
  }                                                                                                         \
  extern "C" __global__ void col2im_##SUFFIX(index_t count, FASTCONV_COLUMNS_PARAMS, const T* cols, T* x) { \
    const cv::ColumnsGeometry g = FASTCONV_COLUMNS;                                                         \
    FASTCONV_GRID_STRIDE(i, count) x[i] = cv::col2im_element(g, cols, i);                                   \
  }

FASTCONV_COLUMN_KERNELS(float, f32)
FASTCONV_COLUMN_KERNELS(double, f64)
// float16's and bfloat16's column matrix (the GEMM widens them), moved as their 16 bits: im2col
// only copies and zero-fills, and +0 is all zero bits in both.
extern "C" __global__ void im2col_b16(index_t count, FASTCONV_COLUMNS_PARAMS, const unsigned short* x,
                                      unsigned short* cols) {
  const cv::ColumnsGeometry g = FASTCONV_COLUMNS;
  FASTCONV_GRID_STRIDE(i, count) cols[i] = cv::im2col_element(g, x, i);
}

// Winograd F(2x2, 3x3)'s and F(4x4, 3x3)'s transforms (winograd_body.h), one thread per filter,
// per input tile and channel, per output tile and channel; conv.py runs the 16 or 36 GEMMs
// between them. The geometry travels as 10 int64 arguments, in winograd_tiles::Geometry's order.
#define FASTCONV_WINOGRAD_PARAMS index_t N, index_t C, index_t H, index_t W, index_t P, index_t Q, index_t pad_top, \
    index_t pad_left, index_t row_end, index_t col_end
#define FASTCONV_WINOGRAD(TILING) \
  fastconv::conv::winograd_##TILING::Geometry { N, C, H, W, P, Q, pad_top, pad_left, row_end, col_end }
namespace wt = fastconv::conv::winograd_tiles;

// winograd_<TILING>_{filter,input,output}_<SUFFIX> for TILING 2x3 or 4x3.
#define FASTCONV_WINOGRAD_KERNELS(TILING, T, SUFFIX)                                                               \
  extern "C" __global__ void winograd_##TILING##_filter_##SUFFIX(index_t count, const T* w, T* u) {                \
    using F = fastconv::conv::winograd_##TILING::Transforms;                                                       \
    FASTCONV_GRID_STRIDE(i, count) wt::filter_element<F>(count, w, u, i);                                          \
  }                                                                                                                \
  extern "C" __global__ void winograd_##TILING##_input_##SUFFIX(index_t count, FASTCONV_WINOGRAD_PARAMS,           \
                                                                const T* x, T* v) {                                \
    using F = fastconv::conv::winograd_##TILING::Transforms;                                                       \
    const auto g = FASTCONV_WINOGRAD(TILING);                                                                      \
    FASTCONV_GRID_STRIDE(i, count) wt::input_element<F>(g, x, v, i);                                              \
  }                                                                                                                \
  extern "C" __global__ void winograd_##TILING##_output_##SUFFIX(index_t count, FASTCONV_WINOGRAD_PARAMS,          \
                                                                 index_t K, const T* m, const T* bias, T* y,       \
                                                                 int relu) {                                       \
    using F = fastconv::conv::winograd_##TILING::Transforms;                                                       \
    const auto g = FASTCONV_WINOGRAD(TILING);                                                                      \
    FASTCONV_GRID_STRIDE(i, count) wt::output_element<F>(g, K, m, bias, relu, y, i);                               \
  }

FASTCONV_WINOGRAD_KERNELS(2x3, float, f32)
FASTCONV_WINOGRAD_KERNELS(2x3, double, f64)
FASTCONV_WINOGRAD_KERNELS(4x3, float, f32)
FASTCONV_WINOGRAD_KERNELS(4x3, double, f64)

// Depthwise convolution (depthwise_body.h): one thread per output element, per input element,
// per partial sum of a weight-gradient tap, per tap. The geometry travels as 15 int64
// arguments, in depthwise::Geometry's order (pad_end unused).
#define FASTCONV_DEPTHWISE_PARAMS index_t N, index_t C, index_t K, index_t H, index_t W, index_t R, index_t S, \
    index_t sh, index_t sw, index_t ph, index_t pw, index_t dh, index_t dw, index_t P, index_t Q
#define FASTCONV_DEPTHWISE dwc::Geometry{N, C, K, {H, R, sh, ph, 0, dh}, {W, S, sw, pw, 0, dw}, P, Q}
namespace dwc = fastconv::conv::depthwise;

#define FASTCONV_DEPTHWISE_KERNELS(T, SUFFIX)                                                                         \
  extern "C" __global__ void depthwise_forward_##SUFFIX(index_t count, FASTCONV_DEPTHWISE_PARAMS, const T* x,         \
                                                        const T* w, const T* bias, T* y, int relu) {                  \
    const dwc::Geometry g = FASTCONV_DEPTHWISE;                                                                       \
    FASTCONV_GRID_STRIDE(i, count) y[i] = dwc::forward_element(g, x, w, bias, relu != 0, i);                          \
  }                                                                                                                   \
  extern "C" __global__ void depthwise_input_gradient_##SUFFIX(index_t count, FASTCONV_DEPTHWISE_PARAMS,              \
                                                               const T* grad_y, const T* w, T* grad_x) {              \
    const dwc::Geometry g = FASTCONV_DEPTHWISE;                                                                       \
    FASTCONV_GRID_STRIDE(i, count) grad_x[i] = dwc::input_gradient_element(g, grad_y, w, i);                          \
  }                                                                                                                   \
  /* partials[t * parts + j] = part j of tap t's sum: the parts of a tap are neighbouring threads */                  \
  extern "C" __global__ void depthwise_weight_parts_##SUFFIX(index_t count, FASTCONV_DEPTHWISE_PARAMS, index_t parts, \
                                                             const T* x, const T* grad_y, double* partials) {         \
    const dwc::Geometry g = FASTCONV_DEPTHWISE;                                                                       \
    FASTCONV_GRID_STRIDE(i, count)                                                                                    \
    partials[i] = dwc::weight_gradient_part(g, x, grad_y, fastconv::index_div(i, parts),                              \
                                            fastconv::index_mod(i, parts), parts);                                    \
  }                                                                                                                   \
  extern "C" __global__ void depthwise_weight_sum_##SUFFIX(index_t count, index_t parts, const double* partials,      \
                                                           T* grad_w) {                                               \
    FASTCONV_GRID_STRIDE(t, count) grad_w[t] = static_cast<T>(dwc::sum_parts(partials, t, parts));                    \
  }

FASTCONV_DEPTHWISE_KERNELS(float, f32)
FASTCONV_DEPTHWISE_KERNELS(double, f64)

// FFT convolution's per-bin products (spectral_body.h), one thread per complex output value;
// conv.py runs cuFFT's real transforms around them. T is the real type: the spectra are
// complex<T> arrays, (re, im) interleaved. The geometry travels as 5 int64 arguments, in
// spectral::Geometry's order.
#define FASTCONV_SPECTRAL_PARAMS index_t N, index_t C, index_t K, index_t groups, index_t bins
namespace sp = fastconv::conv::spectral;

#define FASTCONV_SPECTRAL_KERNELS(T, SUFFIX)                                                                     \
  extern "C" __global__ void spectral_forward_##SUFFIX(index_t count, FASTCONV_SPECTRAL_PARAMS, const T* x,     \
                                                       const T* w, T* y) {                                     \
    const sp::Geometry g{N, C, K, groups, bins};                                                               \
    FASTCONV_GRID_STRIDE(i, count) sp::forward_element(g, x, w, y, i);                                         \
  }                                                                                                            \
  extern "C" __global__ void spectral_input_gradient_##SUFFIX(index_t count, FASTCONV_SPECTRAL_PARAMS,          \
                                                              const T* grad_y, const T* w, T* grad_x) {        \
    const sp::Geometry g{N, C, K, groups, bins};                                                               \
    FASTCONV_GRID_STRIDE(i, count) sp::input_gradient_element(g, grad_y, w, grad_x, i);                        \
  }                                                                                                            \
  extern "C" __global__ void spectral_weight_gradient_##SUFFIX(index_t count, FASTCONV_SPECTRAL_PARAMS,         \
                                                               const T* x, const T* grad_y, T* grad_w) {       \
    const sp::Geometry g{N, C, K, groups, bins};                                                               \
    FASTCONV_GRID_STRIDE(i, count) sp::weight_gradient_element(g, x, grad_y, grad_w, i);                       \
  }

FASTCONV_SPECTRAL_KERNELS(float, f32)
FASTCONV_SPECTRAL_KERNELS(double, f64)
