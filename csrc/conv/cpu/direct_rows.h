// The row kernel and the weight-gradient kernel of the direct convolution (direct.h), written
// once over a vector type V (core/simd_avx2.h, simd_avx512.h). Included only by the per-ISA
// files after their `#pragma GCC target`: raw loops and intrinsics only.
#pragma once
#include "conv/cpu/direct.h"

namespace fastconv::conv::cpu::direct {
namespace {

// MR x NV accumulators per output row + NV input vectors per row + 1 broadcast: (6, 2) and
// (12, 1) fill AVX2's 16 registers, (16, 1), (8, 2) and (12, 2) AVX-512's 32. ROWS output
// rows at a time share each broadcast weight: (8, 1) over 2 rows is 16 accumulators.
template <class V, int MR, int NV, int ROWS = 1>
void row_kernel(const RowJob<typename V::T>& job) {
  using T = typename V::T;
  using Reg = typename V::Reg;
  constexpr int W = V::width, step = NV * W;
  // Each group of ROWS output rows, then each step of pixels along them.
  for (index_t row0 = 0; row0 < ROWS * job.groups; row0 += ROWS) {
    for (index_t q0 = 0; q0 < job.Q; q0 += step) {
      Reg acc[MR][ROWS][NV];
#pragma GCC unroll 32
      for (int m = 0; m < MR; ++m)
#pragma GCC unroll 4
        for (int r = 0; r < ROWS; ++r)
#pragma GCC unroll 4
          for (int v = 0; v < NV; ++v) acc[m][r][v] = V::zero();
      const T* w = job.w;
      for (index_t c = 0; c < job.C; ++c) {
        const T* channel = job.in + row0 * job.in_row_step + c * job.ld_c + q0;
        for (index_t t = 0; t < job.tap_count; ++t, w += MR) {
          const T* row = channel + job.taps[t];
          Reg x[ROWS][NV];
#pragma GCC unroll 4
          for (int r = 0; r < ROWS; ++r)
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v) x[r][v] = V::loadu(row + r * job.in_row_step + v * W);
#pragma GCC unroll 32
          for (int m = 0; m < MR; ++m) {
            const Reg b = V::set1(w[m]);
#pragma GCC unroll 4
            for (int r = 0; r < ROWS; ++r)
#pragma GCC unroll 4
              for (int v = 0; v < NV; ++v) acc[m][r][v] = V::fma(b, x[r][v], acc[m][r][v]);
          }
        }
      }
      // Epilogue: bias, ReLU, and a store of the valid channels and pixels only.
      const index_t valid = job.Q - q0 < step ? job.Q - q0 : step;
#pragma GCC unroll 32
      for (int m = 0; m < MR && m < job.channels; ++m) {
        const Reg bias = job.bias ? V::set1(job.bias[m]) : V::zero();
#pragma GCC unroll 4
        for (int r = 0; r < ROWS; ++r) {
          T* out = job.out + m * job.ld_out + (row0 + r) * job.Q + q0;
#pragma GCC unroll 4
          for (int v = 0; v < NV; ++v) {
            Reg y = V::add(acc[m][r][v], bias);
            if (job.relu) y = V::max(V::zero(), y);  // zero first: a NaN passes, as through torch.relu
            const index_t left = valid - v * W;
            if (left >= W) V::storeu(out + v * W, y);
            else if (left > 0) V::store_first(out + v * W, y, static_cast<int>(left));
          }
        }
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
    if (job.rows == 2) return row_kernel<V, 8, 1, 2>(job);
    if (job.mr == 8) return row_kernel<V, 8, 2>(job);
    return row_kernel<V, 12, 2>(job);
  } else {
    if (job.mr == 12) return row_kernel<V, 12, 1>(job);
    row_kernel<V, 6, 2>(job);
  }
}

// The weight gradient of MB output channels and SC taps (WeightJob): MB x SC accumulators +
// SC input vectors + 1 gradient vector, 16 registers at MB = 4, SC = 3 (AVX2), 31 at SC = 6
// (AVX-512: each gradient vector then feeds 6 FMAs, each input vector 4).
template <class V, int MB, int SC>
void weight_kernel(const WeightJob<typename V::T>& job, index_t t0) {
  using T = typename V::T;
  using Reg = typename V::Reg;
  constexpr int W = V::width;
  Reg acc[MB][SC];
#pragma GCC unroll 8
  for (int m = 0; m < MB; ++m)
#pragma GCC unroll 8
    for (int s = 0; s < SC; ++s) acc[m][s] = V::zero();
  for (index_t i = 0; i < job.images; ++i) {
    const T* x = job.x + i * job.ld_x_i;
    const T* dy = job.dy + i * job.ld_dy_i;
    const T* tap_rows[SC];
#pragma GCC unroll 8
    for (int s = 0; s < SC; ++s) tap_rows[s] = x + job.taps[t0 + s];
    for (index_t j = 0; j < job.length; j += W) {
      Reg xv[SC];
#pragma GCC unroll 8
      for (int s = 0; s < SC; ++s) xv[s] = V::loadu(tap_rows[s] + j);
#pragma GCC unroll 8
      for (int m = 0; m < MB; ++m) {
        const Reg g = V::loadu(dy + m * job.ld_dy_m + j);
#pragma GCC unroll 8
        for (int s = 0; s < SC; ++s) acc[m][s] = V::fma(g, xv[s], acc[m][s]);
      }
    }
  }
  for (int m = 0; m < MB; ++m)
    for (int s = 0; s < SC; ++s) job.sums[m * job.ld_sums + t0 + s] += V::sum(acc[m][s]);
}

// The last `left` (1 .. N) taps of a block.
template <class V, int MB, int N>
void weight_tail(const WeightJob<typename V::T>& job, index_t t0, index_t left) {
  if constexpr (N >= 1) {
    if (left == N) return weight_kernel<V, MB, N>(job, t0);
    weight_tail<V, MB, N - 1>(job, t0, left);
  }
}

template <class V, int MB>
void run_weight_block(const WeightJob<typename V::T>& job) {
  constexpr int SC = V::registers >= 32 ? 6 : 3;
  index_t t0 = 0;
  for (; t0 + SC <= job.tap_count; t0 += SC) weight_kernel<V, MB, SC>(job, t0);
  if (t0 < job.tap_count) weight_tail<V, MB, SC - 1>(job, t0, job.tap_count - t0);
}

template <class V>
void run_weight(const WeightJob<typename V::T>& job) {
  if (job.mb == 1) return run_weight_block<V, 1>(job);
  run_weight_block<V, kWeightBlock>(job);
}

}  // namespace
}  // namespace fastconv::conv::cpu::direct
