// The row kernel of the direct convolution (direct.h), written once over a vector type V
// (core/simd_avx2.h, simd_avx512.h). Included only by the per-ISA files after their
// `#pragma GCC target`: raw loops and intrinsics only.
#pragma once
#include "conv/cpu/direct.h"

namespace fastconv::conv::cpu::direct {
namespace {

// MR x NV accumulators + NV input vectors + 1 broadcast: (6, 2) and (12, 1) fill AVX2's 16
// registers, (16, 1), (8, 2) and (12, 2) AVX-512's 32.
template <class V, int MR, int NV>
void row_kernel(const RowJob<typename V::T>& job) {
  using T = typename V::T;
  using Reg = typename V::Reg;
  constexpr int W = V::width, step = NV * W;
  for (index_t q0 = 0; q0 < job.Q; q0 += step) {
    Reg acc[MR][NV];
#pragma GCC unroll 32
    for (int m = 0; m < MR; ++m)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[m][v] = V::zero();
    const T* w = job.w;
    for (index_t c = 0; c < job.C; ++c) {
      const T* channel = job.in + c * job.ld_c + q0;
      for (index_t t = 0; t < job.tap_count; ++t, w += MR) {
        const T* row = channel + job.taps[t];
        Reg x[NV];
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) x[v] = V::loadu(row + v * W);
#pragma GCC unroll 32
        for (int m = 0; m < MR; ++m) {
          const Reg b = V::set1(w[m]);
#pragma GCC unroll 4
          for (int v = 0; v < NV; ++v) acc[m][v] = V::fma(b, x[v], acc[m][v]);
        }
      }
    }
    // Epilogue: bias, ReLU, and a store of the valid channels and pixels only.
    const index_t valid = job.Q - q0 < step ? job.Q - q0 : step;
#pragma GCC unroll 32
    for (int m = 0; m < MR && m < job.channels; ++m) {
      const Reg bias = job.bias ? V::set1(job.bias[m]) : V::zero();
      T* out = job.out + m * job.ld_out + q0;
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) {
        Reg y = V::add(acc[m][v], bias);
        if (job.relu) y = V::max(V::zero(), y);  // zero first: a NaN passes, as through torch.relu
        const index_t left = valid - v * W;
        if (left >= W) V::storeu(out + v * W, y);
        else if (left > 0) V::store_first(out + v * W, y, static_cast<int>(left));
      }
    }
  }
}

// The kernel of the tile row_tile chose (its mr and, through the ISA, its vectors per row).
template <class V>
void run_rows(const RowJob<typename V::T>& job) {
  if (job.mr == 1) return row_kernel<V, 1, 4>(job);
  if constexpr (V::registers >= 32) {
    if (job.mr == 16) return row_kernel<V, 16, 1>(job);
    if (job.mr == 8) return row_kernel<V, 8, 2>(job);
    return row_kernel<V, 12, 2>(job);
  } else {
    if (job.mr == 12) return row_kernel<V, 12, 1>(job);
    row_kernel<V, 6, 2>(job);
  }
}

}  // namespace
}  // namespace fastconv::conv::cpu::direct
