// channels_last.h's kernel, written once over a vector type V (core/simd_avx2.h,
// simd_avx512.h). Included only by the per-ISA files, after their `#pragma GCC target`.
#pragma once
#include "conv/cpu/channels_last.h"

namespace fastconv::conv::cpu::channels_last {
namespace {

// Pixels m0 .. m0 + MR - 1 (those past the batch idle) x channels [k0, k0 + NV * width).
template <class V, int MR, int NV>
inline void block(const DirectPass<typename V::T>& pass, index_t m0, index_t kb) {
  using T = typename V::T;
  using Reg = typename V::Reg;
  constexpr int Wd = V::width;
  const Geometry& g = pass.g;
  const index_t M = g.N * g.P * g.Q, k0 = kb * pass.block;
  index_t image[MR], row[MR], col[MR];  // each pixel's (n, top input row, left input column)
  #pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) {
    const index_t m = m0 + i < M ? m0 + i : M - 1;
    image[i] = m / (g.P * g.Q);
    row[i] = m / g.Q % g.P * g.sh + g.top;
    col[i] = m % g.Q * g.sw + g.left;
  }
  Reg acc[MR][NV];
  #pragma GCC unroll 8
  for (int j = 0; j < NV; ++j) {
    const index_t k = k0 + j * Wd;
    const Reg b = !pass.bias || k >= g.K ? V::zero()
                  : k + Wd <= g.K       ? V::loadu(pass.bias + k)
                                        : V::load_lanes(pass.bias + k, (1u << (g.K - k)) - 1);
    #pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) acc[i][j] = b;
  }
  const T* w = pass.packed + kb * g.R * g.S * g.C * pass.block;
  for (index_t r = 0; r < g.R; ++r)
    for (index_t s = 0; s < g.S; ++s, w += g.C * pass.block) {
      const T* src[MR];
      #pragma GCC unroll 32
      for (int i = 0; i < MR; ++i) {
        const index_t h = row[i] + r * g.dh, c = col[i] + s * g.dw;
        src[i] = h >= 0 && h < g.H && c >= 0 && c < g.W ? pass.x + ((image[i] * g.H + h) * g.W + c) * g.C
                                                        : pass.zero_row;
      }
      for (index_t c = 0; c < g.C; ++c) {
        Reg b[NV];
        #pragma GCC unroll 8
        for (int j = 0; j < NV; ++j) b[j] = V::loadu(w + c * pass.block + j * Wd);
        #pragma GCC unroll 32
        for (int i = 0; i < MR; ++i) {
          const Reg a = V::set1(src[i][c]);
          #pragma GCC unroll 8
          for (int j = 0; j < NV; ++j) acc[i][j] = V::fma(a, b[j], acc[i][j]);
        }
      }
    }
  #pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) {
    if (m0 + i >= M) break;
    T* out = pass.y + (m0 + i) * g.K;
    #pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) {
      const index_t k = k0 + j * Wd;
      if (k >= g.K) break;
      Reg v = acc[i][j];
      if (pass.relu) v = V::max(V::zero(), v);  // zero first: NaN stays NaN, as torch.relu
      if (k + Wd <= g.K)
        V::storeu(out + k, v);
      else
        V::store_first(out + k, v, static_cast<int>(g.K - k));
    }
  }
}

// The block shape for K output channels: two vectors of channels beside MR2 pixels, or, when
// K fits one vector, one beside MR1 (more pixels in the same registers).
template <class V, int MR1, int MR2>
void shape_for(index_t K, index_t* mr, index_t* channels) {
  const bool one = K <= V::width;
  *mr = one ? MR1 : MR2;
  *channels = (one ? 1 : 2) * V::width;
}

template <class V, int MR1, int MR2>
void pixel_blocks(const DirectPass<typename V::T>& pass, index_t lo, index_t hi) {
  const index_t k_blocks = (pass.g.K + pass.block - 1) / pass.block;
  const bool one = pass.block == V::width;
  for (index_t b = lo; b < hi; ++b)
    for (index_t kb = 0; kb < k_blocks; ++kb) {
      if (one)
        block<V, MR1, 1>(pass, b * MR1, kb);
      else
        block<V, MR2, 2>(pass, b * MR2, kb);
    }
}

}  // namespace
}  // namespace fastconv::conv::cpu::channels_last
