// The column kernels of conv2d on CUDA: im2col and its adjoint col2im (the CPU's are in
// conv/cpu/im2col.cpp), so that a convolution is im2col and a GEMM, its input gradient a GEMM
// and col2im. One thread per output element, each running a body of im2col_body.h; the
// geometry was checked by the caller (fastconv/cuda/im2col.py, through fastconv._C's checks)
// before any launch.
#include "common/grid_stride.h"
#include "conv/cuda/im2col_body.h"

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
