// depthwise.h's kernels, written once over a vector type V (core/simd_avx2.h, simd_avx512.h).
// Included only by the per-ISA files, after their `#pragma GCC target`: raw loops and
// intrinsics only, so nothing inline is shared with baseline code.
#pragma once
#include "conv/cpu/depthwise.h"

namespace fastconv::conv::cpu::depthwise {
namespace {

// The block's sums (ReLU'd if asked) into output rows op .. op + ROWS - 1, vectors v0 ..: the
// lanes past the row's end are not written.
template <class V, int ROWS, int NV>
inline void store_block(const PlanePass<typename V::T>& p, typename V::Reg (&acc)[ROWS][NV], typename V::T* out,
                        index_t op, index_t v0) {
  using T = typename V::T;
  using Reg = typename V::Reg;
  constexpr int W = V::width;
  #pragma GCC unroll 16
  for (int a = 0; a < ROWS; ++a)
    #pragma GCC unroll 16
    for (int u = 0; u < NV; ++u) {
      Reg y = acc[a][u];
      if (p.relu) y = V::max(V::zero(), y);  // zero first: a NaN passes, as through torch.relu
      T* at = out + (op + a) * p.out_w + (v0 + u) * W;
      const index_t left = p.out_w - (v0 + u) * W;  // pixels of the row from this vector on
      if (left >= W) V::storeu(at, y);
      else V::store_first(at, y, static_cast<int>(left));
    }
}

// Output rows op .. op + ROWS - 1, NV vectors each from vector v0, of the plane whose input planes
// start at `in` and weights at `w`: every tap's product summed in registers, then one (masked)
// store per vector. ROWS x NV accumulators are independent chains of FMAs, enough to hide the
// FMA's latency (one chain would wait on each of its R * S additions in turn).
template <class V, int ROWS, int NV>
inline void block(const PlanePass<typename V::T>& p, const typename V::T* in, const typename V::T* w,
                  typename V::T bias, typename V::T* out, index_t op, index_t v0) {
  using T = typename V::T;
  using Reg = typename V::Reg;
  constexpr int W = V::width;
  const Taps& t = p.taps;
  Reg acc[ROWS][NV];
  #pragma GCC unroll 16
  for (int a = 0; a < ROWS; ++a)
    #pragma GCC unroll 16
    for (int u = 0; u < NV; ++u) acc[a][u] = V::set1(bias);
  const index_t R = t.R, S = t.S, dw = t.dw, in_h = p.in_h, in_w = p.in_w;
  for (index_t i = 0; i < p.inputs; ++i, in += in_h * in_w) {
    for (index_t r = 0; r < R; ++r) {
      const T* rows[ROWS];  // output row a's input row for tap row r, from vector v0; padding reads zeros
      #pragma GCC unroll 16
      for (int a = 0; a < ROWS; ++a) {
        const index_t ih = (op + a) * t.sh + r * t.dh + t.top;
        rows[a] = (ih >= 0 && ih < in_h ? in + ih * in_w : p.zero_row) + v0 * W + t.left;
      }
      const T* weights = w + (i * R + r) * S;
      const std::uint32_t* bits = t.lane_bits + v0 * S;
      for (index_t s = 0; s < S; ++s, ++bits) {
        const Reg ws = V::set1(weights[s]);
        const index_t shift = s * dw;
        #pragma GCC unroll 16
        for (int u = 0; u < NV; ++u) {
          const unsigned inside = bits[u * S];
          if (inside == V::all_lanes) {
            #pragma GCC unroll 16
            for (int a = 0; a < ROWS; ++a) acc[a][u] = V::fma(ws, V::loadu(rows[a] + shift + u * W), acc[a][u]);
          } else {
            const typename V::Mask mask = V::mask(inside);
            #pragma GCC unroll 16
            for (int a = 0; a < ROWS; ++a)
              acc[a][u] = V::fma(ws, V::load_masked(rows[a] + shift + u * W, mask), acc[a][u]);
          }
        }
      }
    }
  }
  store_block<V, ROWS, NV>(p, acc, out, op, v0);
}

// Vectors v0 .. v0 + NV - 1 of every output row of one plane, for a 3 x 3 filter at row stride
// and dilation 1 (MobileNet's, and the input gradient of any stride-1 3 x 3): the input rows
// stream through once, top to bottom, each vector loaded once for the three output rows that
// read it (block() loads it once per tap row), into three rolling sums per vector: output row
// j - 2 finishes with its last tap row and is stored, j - 1 takes its middle one, j starts. The
// nine weights stay in registers (AVX2's 16 take one vector at a time: two spilled more than
// they saved). Each sum adds its taps in block()'s order (tap row, then column), so both give
// the same bits. 32 x 128 x 28 x 28, one thread: forward 1.9 -> 1.25 ms on AVX-512, 3.05 ->
// 1.87 ms on AVX2's kernels.
template <class V, int NV>
inline void columns3x3(const PlanePass<typename V::T>& p, const typename V::T* in, const typename V::T* w,
                       typename V::T bias, typename V::T* out, index_t v0) {
  using T = typename V::T;
  using Reg = typename V::Reg;
  constexpr int W = V::width;
  const Taps& t = p.taps;
  const index_t dw = t.dw, in_h = p.in_h, in_w = p.in_w, out_h = p.out_h;
  typename V::Mask masks[NV][3];  // the lanes of vector v0 + u that tap column c reads inside the row
  #pragma GCC unroll 4
  for (int u = 0; u < NV; ++u)
    #pragma GCC unroll 3
    for (int c = 0; c < 3; ++c) masks[u][c] = V::mask(t.lane_bits[(v0 + u) * 3 + c]);
  Reg taps[3][3];
  #pragma GCC unroll 3
  for (int r = 0; r < 3; ++r)
    #pragma GCC unroll 3
    for (int c = 0; c < 3; ++c) taps[r][c] = V::set1(w[r * 3 + c]);
  Reg done[1][NV], middle[NV], start[NV];  // output rows j - 2, j - 1 and j
  #pragma GCC unroll 4
  for (int u = 0; u < NV; ++u) middle[u] = start[u] = V::zero();
  for (index_t j = 0; j < out_h + 2; ++j) {
    const index_t ih = j + t.top;
    const T* row = (ih >= 0 && ih < in_h ? in + ih * in_w : p.zero_row) + v0 * W + t.left;
    #pragma GCC unroll 4
    for (int u = 0; u < NV; ++u) {
      Reg x[3];
      #pragma GCC unroll 3
      for (int c = 0; c < 3; ++c) x[c] = V::load_masked(row + c * dw + u * W, masks[u][c]);
      done[0][u] = middle[u];
      middle[u] = start[u];
      start[u] = V::set1(bias);
      #pragma GCC unroll 3
      for (int c = 0; c < 3; ++c) {
        done[0][u] = V::fma(taps[2][c], x[c], done[0][u]);
        middle[u] = V::fma(taps[1][c], x[c], middle[u]);
        start[u] = V::fma(taps[0][c], x[c], start[u]);
      }
    }
    if (j >= 2) store_block<V, 1, NV>(p, done, out, j - 2, v0);
  }
}

// Output rows [op, op + ROWS) of one plane, all vectors.
template <class V, int ROWS>
inline void rows(const PlanePass<typename V::T>& p, const typename V::T* in, const typename V::T* w,
                 typename V::T bias, typename V::T* out, index_t op) {
  const index_t vectors = (p.out_w + V::width - 1) / V::width;
  index_t v = 0;
  for (; v + 2 <= vectors; v += 2) block<V, ROWS, 2>(p, in, w, bias, out, op, v);
  if (v < vectors) block<V, ROWS, 1>(p, in, w, bias, out, op, v);
}

template <class V>
void planes(const PlanePass<typename V::T>& p, index_t lo, index_t hi) {
  using T = typename V::T;
  const Taps& t = p.taps;
  const bool streamed = p.inputs == 1 && t.R == 3 && t.S == 3 && t.sh == 1 && t.dh == 1;
  for (index_t o = lo; o < hi; ++o) {
    const index_t n = o / p.planes, j = o % p.planes;
    const T* in = p.in + n * p.in_image + (j / p.per_input) * p.in_step;
    const T* w = p.w + j * p.w_step;
    const T bias = p.bias ? p.bias[j] : T(0);
    T* out = p.out + o * p.out_h * p.out_w;
    index_t op = 0;
    if (streamed) {
      const index_t vectors = (p.out_w + V::width - 1) / V::width;
      index_t v = 0;
      if constexpr (V::registers >= 32)
        for (; v + 2 <= vectors; v += 2) columns3x3<V, 2>(p, in, w, bias, out, v);
      for (; v < vectors; ++v) columns3x3<V, 1>(p, in, w, bias, out, v);
      continue;
    }
    for (; op + 4 <= p.out_h; op += 4) rows<V, 4>(p, in, w, bias, out, op);
    for (; op < p.out_h; ++op) rows<V, 1>(p, in, w, bias, out, op);
  }
}

// The weight gradient of channel k at the taps [r0, r0 + TR) x [s0, s0 + TS): TR x TS accumulator
// vectors, each gradient vector feeding all of them, and with the first block of taps the sum of
// the gradient itself (the bias gradient). Lanes are added up once per image, into double.
template <class V, int TR, int TS>
void weight_block(const WeightPass<typename V::T>& p, index_t k, index_t r0, index_t s0) {
  using T = typename V::T;
  using Reg = typename V::Reg;
  constexpr int W = V::width;
  const Taps& t = p.taps;
  const index_t S = t.S, dw = t.dw, in_h = p.in_h, in_w = p.in_w, vectors = (p.out_w + W - 1) / W;
  const bool with_bias = p.bias_sums && r0 == 0 && s0 == 0;
  for (index_t n = 0; n < p.images; ++n) {
    const T* x = p.x + n * p.x_image + (k / p.multiplier) * in_h * in_w;
    const T* dy = p.dy + n * p.dy_image + k * p.out_h * p.out_w;
    Reg acc[TR][TS], dy_sum = V::zero();
    #pragma GCC unroll 16
    for (int b = 0; b < TR; ++b)
      #pragma GCC unroll 16
      for (int c = 0; c < TS; ++c) acc[b][c] = V::zero();
    for (index_t op = 0; op < p.out_h; ++op, dy += p.out_w) {
      const T* rows[TR];  // tap row r0 + b's input row, from tap column s0; padding reads zeros
      #pragma GCC unroll 16
      for (int b = 0; b < TR; ++b) {
        const index_t ih = op * t.sh + (r0 + b) * t.dh + t.top;
        rows[b] = (ih >= 0 && ih < in_h ? x + ih * in_w : p.zero_row) + s0 * dw + t.left;
      }
      for (index_t v = 0; v < vectors; ++v) {
        const Reg g = V::load_lanes(dy + v * W, t.out_bits[v]);
        if (with_bias) dy_sum = V::add(dy_sum, g);
        const std::uint32_t* bits = t.lane_bits + v * S + s0;
        #pragma GCC unroll 16
        for (int c = 0; c < TS; ++c) {
          const index_t at = v * W + c * dw;
          if (bits[c] == V::all_lanes) {
            #pragma GCC unroll 16
            for (int b = 0; b < TR; ++b) acc[b][c] = V::fma(g, V::loadu(rows[b] + at), acc[b][c]);
          } else {
            const typename V::Mask mask = V::mask(bits[c]);
            #pragma GCC unroll 16
            for (int b = 0; b < TR; ++b) acc[b][c] = V::fma(g, V::load_masked(rows[b] + at, mask), acc[b][c]);
          }
        }
      }
    }
    #pragma GCC unroll 16
    for (int b = 0; b < TR; ++b)
      #pragma GCC unroll 16
      for (int c = 0; c < TS; ++c) p.sums[(k * t.R + r0 + b) * S + s0 + c] += V::sum(acc[b][c]);
    if (with_bias) p.bias_sums[k] += V::sum(dy_sum);
  }
}

// weight_block's sums of a 3 x 3 filter at row stride and dilation 1, streaming the input rows
// once: each input vector is loaded once for the three tap rows that read it (weight_block
// loads it once per tap row), beside the gradient vectors of the output rows that read it. Every
// tap adds the same products in weight_block's order (output row, then vector), so both give the
// same bits.
template <class V>
void weight_3x3_streamed(const WeightPass<typename V::T>& p, index_t k) {
  using T = typename V::T;
  using Reg = typename V::Reg;
  constexpr int W = V::width;
  const Taps& t = p.taps;
  const index_t dw = t.dw, in_h = p.in_h, in_w = p.in_w, out_h = p.out_h, out_w = p.out_w;
  const index_t vectors = (out_w + W - 1) / W;
  for (index_t n = 0; n < p.images; ++n) {
    const T* x = p.x + n * p.x_image + (k / p.multiplier) * in_h * in_w;
    const T* dy = p.dy + n * p.dy_image + k * out_h * out_w;
    Reg acc[3][3], dy_sum = V::zero();
    #pragma GCC unroll 3
    for (int r = 0; r < 3; ++r)
      #pragma GCC unroll 3
      for (int c = 0; c < 3; ++c) acc[r][c] = V::zero();
    for (index_t j = 0; j < out_h + 2; ++j) {  // input row j + top, read by output rows j - r
      const index_t ih = j + t.top;
      const T* row = (ih >= 0 && ih < in_h ? x + ih * in_w : p.zero_row) + t.left;
      for (index_t v = 0; v < vectors; ++v) {
        const std::uint32_t* bits = t.lane_bits + v * 3;
        Reg xv[3];
        #pragma GCC unroll 3
        for (int c = 0; c < 3; ++c)
          xv[c] = bits[c] == V::all_lanes ? V::loadu(row + v * W + c * dw)
                                          : V::load_masked(row + v * W + c * dw, V::mask(bits[c]));
        #pragma GCC unroll 3
        for (int r = 0; r < 3; ++r) {
          const index_t op = j - r;
          if (op < 0 || op >= out_h) continue;
          const Reg g = V::load_lanes(dy + op * out_w + v * W, t.out_bits[v]);
          if (r == 0 && p.bias_sums) dy_sum = V::add(dy_sum, g);
          #pragma GCC unroll 3
          for (int c = 0; c < 3; ++c) acc[r][c] = V::fma(g, xv[c], acc[r][c]);
        }
      }
    }
    #pragma GCC unroll 3
    for (int r = 0; r < 3; ++r)
      #pragma GCC unroll 3
      for (int c = 0; c < 3; ++c) p.sums[(k * 3 + r) * 3 + c] += V::sum(acc[r][c]);
    if (p.bias_sums) p.bias_sums[k] += V::sum(dy_sum);
  }
}

// weight_block for a block of TR tap rows and `cols` (1 to 3) tap columns.
template <class V, int TR>
void weight_block_cols(const WeightPass<typename V::T>& p, index_t k, index_t r0, index_t s0, index_t cols) {
  if (cols == 3) return weight_block<V, TR, 3>(p, k, r0, s0);
  if (cols == 2) return weight_block<V, TR, 2>(p, k, r0, s0);
  weight_block<V, TR, 1>(p, k, r0, s0);
}

// The taps in blocks of up to 3 x 3: at most 9 accumulators (AVX2 has 16 registers), each
// input row and mask serving a block's 3 columns and rows.
template <class V>
void weights(const WeightPass<typename V::T>& p, index_t lo, index_t hi) {
  const index_t R = p.taps.R, S = p.taps.S;
  if (R == 3 && S == 3 && p.taps.sh == 1 && p.taps.dh == 1) {
    for (index_t k = lo; k < hi; ++k) weight_3x3_streamed<V>(p, k);
    return;
  }
  for (index_t k = lo; k < hi; ++k)
    for (index_t r0 = 0; r0 < R; r0 += 3)
      for (index_t s0 = 0; s0 < S; s0 += 3) {
        const index_t rows = R - r0 < 3 ? R - r0 : 3, cols = S - s0 < 3 ? S - s0 : 3;
        if (rows == 3) weight_block_cols<V, 3>(p, k, r0, s0, cols);
        else if (rows == 2) weight_block_cols<V, 2>(p, k, r0, s0, cols);
        else weight_block_cols<V, 1>(p, k, r0, s0, cols);
      }
}

}  // namespace
}  // namespace fastconv::conv::cpu::depthwise
