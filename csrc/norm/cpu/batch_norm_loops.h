// The inner loops of both batch norm layouts, compiled once per ISA (batch_norm_loops.cpp for
// baseline x86-64 and aarch64, *_avx2.cpp, *_avx512.cpp) and chosen at run time by
// vector_isa(). The kernels around them (reductions in double, threads, streamed stores) stay
// in batch_norm.cpp and batch_norm_channels_last.cpp. From DRAM these loops are bound by memory
// at any width; from the caches the width shows: at 128x32x16x16 float, one thread, medians of
// interleaved runs, the backward took 1.94 ms as baseline SSE2 code, 1.75 AVX2, 1.50 AVX-512.
//
// NCHW loops take a run of n contiguous values of one channel; channels_last loops take a
// block of pixels, each C contiguous channels, against per-channel vectors. Sums are returned
// in T (a lane adds a run's few dozen values); the callers add runs in double.
#pragma once
#include "common/index.h"

namespace fastconv::norm::cpu {

template <class T>
struct BatchNormLoops {
  // NCHW. *sum = sum(x - shift), *sum_sq = sum((x - shift)^2).
  void (*moments)(const T* x, index_t n, T shift, T* sum, T* sum_sq);
  // y = relu?((x - mean) * scale + beta + z?), [relu][residual]; NaN passes the ReLU.
  void (*normalize[2][2])(const T* x, const T* z, index_t n, T mean, T scale, T beta, T* y);
  // g = dy, or with a ReLU [1] dy where y > 0 and 0 elsewhere, then written to g_out;
  // *sum = sum(g), *sum_xmu = sum(g * (x - mean)).
  void (*grad_sums[2])(const T* dy, const T* y, const T* x, index_t n, T mean, T* g_out, T* sum, T* sum_xmu);
  // dx = k * g + (x - mean) * k_xmu + k_0, and dz = g with a residual [1].
  void (*grad_input[2])(const T* g, const T* x, index_t n, T mean, T k, T k_xmu, T k_0, T* dx, T* dz);

  // channels_last: `pixels` pixels of C channels from x (and the other arrays) on.
  // sum[c] += sum over pixels of (x - shift[c]), sum_sq[c] of its square.
  void (*moments_cl)(const T* x, index_t pixels, index_t C, const T* shift, T* sum, T* sum_sq);
  void (*normalize_cl[2][2])(const T* x, const T* z, index_t pixels, index_t C, const T* mean, const T* scale,
                             const T* beta, T* y);
  // sum[c] += g, sum_xmu[c] += g * (x - mean[c]), g masked by y's ReLU; [relu][g written to g_out].
  void (*grad_sums_cl[2][2])(const T* dy, const T* y, const T* x, index_t pixels, index_t C, const T* mean,
                             T* g_out, T* sum, T* sum_xmu);
  // dx = k[c] * g + (x - mean[c]) * k_xmu[c] + k_0[c], dz = g; [relu][residual].
  void (*grad_input_cl[2][2])(const T* dy, const T* y, const T* x, index_t pixels, index_t C, const T* mean,
                              const T* k, const T* k_xmu, const T* k_0, T* dx, T* dz);
};

// The loops for vector_isa(), the level set_isa() chose.
template <class T>
const BatchNormLoops<T>& batch_norm_loops();

// Each ISA's table (batch_norm_loops.cpp, batch_norm_loops_avx2.cpp, batch_norm_loops_avx512.cpp).
template <class T>
BatchNormLoops<T> batch_norm_loops_baseline();
template <class T>
BatchNormLoops<T> batch_norm_loops_avx2();
template <class T>
BatchNormLoops<T> batch_norm_loops_avx512();

}  // namespace fastconv::norm::cpu
