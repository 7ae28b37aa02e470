// The inner loops of both pooling layouts, compiled once per ISA (pool_loops.cpp for baseline
// x86-64 and aarch64, *_avx2.cpp, *_avx512.cpp) and chosen at run time by vector_isa(). The
// window arithmetic, threads and buffers stay in pool.cpp and pool_channels_last.cpp.
//
// NCHW loops sweep one kernel tap over a row of outputs (q in [lo, hi), input q * stride);
// channels_last loops take one pixel's n contiguous channels. Every loop does what the kernels
// did before in the same order, so values, ties, NaNs and indices are PyTorch's on every ISA.
#pragma once
#include <cstdint>
#include <type_traits>

#include "common/index.h"

namespace fastconv::pool::cpu {

// A max window's running indices as integers of T's width, so that their selects vectorise
// beside T's; widened to PyTorch's int64 once per row or pixel. Planes hold at most 2^31 - 1
// values (pool.cpp checks).
template <class T>
using LaneIndex = std::conditional_t<sizeof(T) == 4, std::int32_t, std::int64_t>;

template <class T>
struct PoolLoops {
  // NCHW. The sweeps' [stride_kind] is the input stride they are compiled for, 1 or 2, or 0:
  // any, at run time (strided loads only vectorise at a constant stride).
  // One output row of plain 2x2 max pooling (stride 2, no padding): `top` is the window
  // row's first input row, `width` apart from the second; indices (with [1]) count from the
  // plane's start, top being at row_start.
  void (*max_2x2_row[2])(const T* top, index_t width, index_t Q, T* out, std::int64_t* indices,
                         index_t row_start);
  // y[q], idx[q] = max(y[q], src[q * stride]) by PyTorch's update, the tap's index being
  // tap0 + q * stride; [indices][stride_kind].
  void (*max_tap[2][3])(const T* src, index_t lo, index_t hi, index_t stride, std::int32_t tap0, T* y,
                        std::int32_t* idx);
  // out[q] += src[q * stride]; [stride_kind].
  void (*sum_tap[3])(const T* src, index_t lo, index_t hi, index_t stride, T* out);
  // dst[q * stride] += share[q]; [stride_kind].
  void (*spread_tap[3])(const T* share, index_t lo, index_t hi, index_t stride, T* dst);

  // channels_last. y[c], idx[c] = max(y[c], x[c]) by PyTorch's update, the tap's index `tap`;
  // [indices].
  void (*max_tap_cl[2])(const T* x, index_t n, LaneIndex<T> tap, T* y, LaneIndex<T>* idx);
  // A window of pixels [h0, h1) x [w0, w1) of an image W pixels wide, a pixel's n channels `ld`
  // values from the next's: y[c] = the sum of its pixels' channel c, from 0 in row-major order
  // (sum_window_cl), or each pixel's channel c += share[c] (spread_window_cl).
  void (*sum_window_cl)(const T* image, index_t W, index_t ld, index_t h0, index_t h1, index_t w0, index_t w1,
                        index_t n, T* y);
  void (*spread_window_cl)(const T* share, index_t W, index_t ld, index_t h0, index_t h1, index_t w0, index_t w1,
                           index_t n, T* image);
  // dst[c] = src[c] / a, or with [1] src[c] / a / b (adaptive pooling divides twice, as PyTorch).
  void (*divide_cl[2])(const T* src, index_t n, T a, T b, T* dst);
  // One output pixel's part of max_pool2d's backward as a gather (pool_channels_last.cpp's
  // gather_max_gradient): each pixel p of the rows x columns block from pixel `first` (rows W
  // pixels long) takes dx[p * ld + c] = dy[c] where idx[c] names it, else 0, for c < n. Returns
  // the matches less the indices inside the plane [0, HW); `lanes` holds n values of scratch.
  std::int64_t (*gather_max_gradient_cl)(const T* dy, const std::int64_t* idx, index_t n, index_t ld, index_t rows,
                                         index_t columns, index_t W, std::int64_t first, index_t HW,
                                         LaneIndex<T>* lanes, T* dx);
};

// The loops for vector_isa(), the level set_isa() chose.
template <class T>
const PoolLoops<T>& pool_loops();

// Each ISA's table (pool_loops.cpp, pool_loops_avx2.cpp, pool_loops_avx512.cpp).
template <class T>
PoolLoops<T> pool_loops_baseline();
template <class T>
PoolLoops<T> pool_loops_avx2();
template <class T>
PoolLoops<T> pool_loops_avx512();

}  // namespace fastconv::pool::cpu
