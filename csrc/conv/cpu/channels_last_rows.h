// channels_last.h's kernel, written once over a vector type V (core/simd_avx2.h,
// simd_avx512.h). Included only by the per-ISA files, after their `#pragma GCC target`.
#pragma once
#include <algorithm>
#include <type_traits>
#include <utility>

#include "conv/cpu/channels_last.h"
#include "core/layout.h"
#include "core/prefetch.h"
#include "core/scratch.h"

namespace fastconv::conv::cpu::channels_last {
namespace {

// Where the pixels of a block read: each one's image, top input row and left input column (a
// pixel past the batch repeats the last one; its result is not stored).
template <int MR>
struct PixelOrigins {
  index_t image[MR], row[MR], col[MR];
  PixelOrigins(const Geometry& g, index_t m0) {
    const index_t M = g.N * g.P * g.Q;
    #pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
      const index_t m = m0 + i < M ? m0 + i : M - 1;
      image[i] = m / (g.P * g.Q);
      row[i] = m / g.Q % g.P * g.sh + g.top;
      col[i] = m % g.Q * g.sw + g.left;
    }
  }
  // Pixel i's input for tap (r, s): its C channels, or the zero row in the padding.
  template <class T>
  const T* source(const DirectPass<T>& pass, int i, index_t r, index_t s) const {
    const Geometry& g = pass.g;
    const index_t h = row[i] + r * g.dh, c = col[i] + s * g.dw;
    return h >= 0 && h < g.H && c >= 0 && c < g.W ? pass.x + ((image[i] * g.H + h) * g.W + c) * g.C : pass.zero_row;
  }
};

// Vector j of a block's channels from k0, the lanes past `n` values zero.
template <class V>
inline typename V::Reg load_channels(const typename V::T* p, index_t k, index_t n) {
  if (k >= n) return V::zero();
  return k + V::width <= n ? V::loadu(p + k) : V::load_lanes(p + k, (1u << (n - k)) - 1);
}

template <class V, int MR, int NV>
inline void start_with_bias(const DirectPass<typename V::T>& pass, index_t k0, typename V::Reg (&acc)[MR][NV]) {
  #pragma GCC unroll 8
  for (int j = 0; j < NV; ++j) {
    const typename V::Reg b = pass.bias ? load_channels<V>(pass.bias, k0 + j * V::width, pass.g.K) : V::zero();
    #pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) acc[i][j] = b;
  }
}

// Where output pixel m's K channels are stored (Geometry::placed).
inline index_t output_pixel(const Geometry& g, index_t m) {
  if (!g.placed) return m;
  const index_t n = m / (g.P * g.Q), p = m / g.Q % g.P, q = m % g.Q;
  return (n * g.out_H + p * g.out_sh + g.out_top) * g.out_W + q * g.out_sw + g.out_left;
}

// ReLU if asked, then each pixel's channels of the block stored (the last vector in part).
template <class V, int MR, int NV>
inline void store_block(const DirectPass<typename V::T>& pass, index_t m0, index_t k0,
                        typename V::Reg (&acc)[MR][NV]) {
  const Geometry& g = pass.g;
  const index_t M = g.N * g.P * g.Q;
  #pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) {
    if (m0 + i >= M) break;
    typename V::T* out = pass.y + output_pixel(g, m0 + i) * g.K;
    #pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) {
      const index_t k = k0 + j * V::width;
      if (k >= g.K) break;
      typename V::Reg v = acc[i][j];
      if (pass.relu) v = V::max(V::zero(), v);  // zero first: NaN stays NaN, as torch.relu
      if (k + V::width <= g.K)
        V::storeu(out + k, v);
      else
        V::store_first(out + k, v, static_cast<int>(g.K - k));
    }
  }
}

// Pixels m0 .. m0 + MR - 1 x channels [k0, k0 + NV * width): every tap and input channel.
template <class V, int MR, int NV>
inline void block(const DirectPass<typename V::T>& pass, index_t m0, index_t kb) {
  using T = typename V::T;
  using Reg = typename V::Reg;
  const Geometry& g = pass.g;
  const index_t k0 = kb * pass.block;
  const PixelOrigins<MR> at(g, m0);
  Reg acc[MR][NV];
  start_with_bias<V>(pass, k0, acc);
  const T* w = pass.packed + kb * g.R * g.S * g.C * pass.block;
  for (index_t r = 0; r < g.R; ++r)
    for (index_t s = 0; s < g.S; ++s, w += g.C * pass.block) {
      const T* src[MR];
      #pragma GCC unroll 32
      for (int i = 0; i < MR; ++i) src[i] = at.source(pass, i, r, s);
      #pragma GCC unroll 4
      for (index_t c = 0; c < g.C; ++c) {
        Reg b[NV];
        #pragma GCC unroll 8
        for (int j = 0; j < NV; ++j) b[j] = V::loadu(w + c * pass.block + j * V::width);
        #pragma GCC unroll 32
        for (int i = 0; i < MR; ++i) {
          const Reg a = V::set1(src[i][c]);
          #pragma GCC unroll 8
          for (int j = 0; j < NV; ++j) acc[i][j] = V::fma(a, b[j], acc[i][j]);
        }
      }
    }
  store_block<V>(pass, m0, k0, acc);
}

// The depthwise block: channel k of each pixel sums its own input channel's taps, so each step
// is a vector of input channels times a vector of their weights. `sources` holds each tap's
// MR input pixels ([tap][i]): worked out once per pixel block for all of its channel blocks,
// as a step here is one load and one FMA, too short to pay for finding its pixel.
template <class V, int MR, int NV>
inline void depthwise_block(const DirectPass<typename V::T>& pass, index_t m0, index_t kb,
                            const typename V::T* const* sources) {
  using T = typename V::T;
  using Reg = typename V::Reg;
  const Geometry& g = pass.g;
  const index_t k0 = kb * pass.block, taps = g.R * g.S;
  const bool whole = k0 + NV * V::width <= g.C;  // every lane a channel: plain loads
  Reg acc[MR][NV];
  start_with_bias<V>(pass, k0, acc);
  const T* w = pass.packed + kb * taps * pass.block;
  for (index_t tap = 0; tap < taps; ++tap, w += pass.block, sources += MR) {
    Reg b[NV];
    #pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) b[j] = V::loadu(w + j * V::width);
    if (whole) {
      #pragma GCC unroll 32
      for (int i = 0; i < MR; ++i)
        #pragma GCC unroll 8
        for (int j = 0; j < NV; ++j) acc[i][j] = V::fma(V::loadu(sources[i] + k0 + j * V::width), b[j], acc[i][j]);
    } else {
      #pragma GCC unroll 32
      for (int i = 0; i < MR; ++i)
        #pragma GCC unroll 8
        for (int j = 0; j < NV; ++j)
          acc[i][j] = V::fma(load_channels<V>(sources[i], k0 + j * V::width, g.C), b[j], acc[i][j]);
    }
  }
  store_block<V>(pass, m0, k0, acc);
}

// Every channel block of depthwise pixel blocks [lo, hi), MR pixels each, kDepthwiseBlocksAtOnce
// pixel blocks at a time for one channel block after another: what a channel block of those pixels
// reads stays in L1 (whole pixels, all 128 channels of a MobileNet layer, did not: 3.7 ms against
// 1.6 for the NCHW kernel).
template <class V, int MR, int NV>
void depthwise_blocks_of(const DirectPass<typename V::T>& pass, index_t lo, index_t hi,
                         const typename V::T** sources) {
  static_assert(MR <= kMaxPixelsPerBlock, "sources holds kMaxPixelsPerBlock pixels per block");
  const Geometry& g = pass.g;
  const index_t k_blocks = (g.K + pass.block - 1) / pass.block, taps = g.R * g.S;
  for (index_t b0 = lo; b0 < hi; b0 += kDepthwiseBlocksAtOnce) {
    const index_t b1 = hi < b0 + kDepthwiseBlocksAtOnce ? hi : b0 + kDepthwiseBlocksAtOnce;
    for (index_t b = b0; b < b1; ++b) {
      const PixelOrigins<MR> at(g, b * MR);
      const typename V::T** block_sources = sources + (b - b0) * taps * MR;
      for (index_t r = 0; r < g.R; ++r)
        for (index_t s = 0; s < g.S; ++s)
          for (int i = 0; i < MR; ++i) block_sources[(r * g.S + s) * MR + i] = at.source(pass, i, r, s);
    }
    for (index_t kb = 0; kb < k_blocks; ++kb)
      for (index_t b = b0; b < b1; ++b) depthwise_block<V, MR, NV>(pass, b * MR, kb, sources + (b - b0) * taps * MR);
  }
}

// The input row the next output row adds (its last tap row), fetched now for the MR pixels from
// q0 and the vector of channels from k0: a tensor beyond the caches otherwise reaches each
// pixel's lines one demand miss at a time, too many short streams (a pixel's channels) for the
// hardware prefetcher (32x128x28x28 depthwise forward, one thread: 4.7 -> 2.4 ms).
template <class V, int MR>
inline void prefetch_next_row(const Geometry& g, const typename V::T* x, index_t n, index_t p, index_t q0,
                              index_t k0) {
  const index_t ahead = (p + 1) * g.sh + g.top + (g.R - 1) * g.dh;
  if (p + 1 >= g.P || ahead < 0 || ahead >= g.H) return;
  const typename V::T* next = x + (n * g.H + ahead) * g.W * g.C + k0;
  #pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
    if (q0 + g.left + i >= 0 && q0 + g.left + i < g.W) prefetch_line(next + (q0 + g.left + i) * g.C);
}

// The pass's pointers, as locals of the row loop: read through `pass`, the compiler must assume
// each store to y may have changed them, and reloads them (and spills) for every load.
template <class T>
struct RowOperands {
  const T* x;
  const T* packed;
  const T* zero_row;
  const T* bias;
  T* y;
  bool relu;
};

// The depthwise kernel along output rows, for unit stride and dilation along the width: MR
// adjacent output pixels of one row share their input columns, so each tap row's MR + S - 1 input
// vectors are loaded once and every one of the S taps multiplies its window of them (about 1.25
// loads per output vector and tap row for S = 3, against S for the pixel blocks above, whose
// pixels each load their own). One vector of channels (pass.block == width), Whole unless it is
// the last, partial one; columns outside the input load zeros.
template <class V, int MR, int S, bool Whole>
__attribute__((always_inline)) inline void depthwise_row_block(const Geometry& g, const RowOperands<typename V::T>& op,
                                                               index_t n, index_t p, index_t q0, index_t kb) {
  using T = typename V::T;
  using Reg = typename V::Reg;
  const index_t k0 = kb * V::width;
  Reg acc[MR];
  const Reg bias = op.bias ? load_channels<V>(op.bias, k0, g.K) : V::zero();
  #pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) acc[i] = bias;
  const T* w = op.packed + kb * g.R * S * V::width;
  const index_t c0 = q0 + g.left;  // the input column of window entry 0
  for (index_t r = 0; r < g.R; ++r, w += S * V::width) {
    const index_t h = p * g.sh + g.top + r * g.dh;
    if (h < 0 || h >= g.H) continue;
    const T* row = op.x + (n * g.H + h) * g.W * g.C;
    Reg in[MR + S - 1];
    #pragma GCC unroll 40
    for (int t = 0; t < MR + S - 1; ++t) {
      // A column outside the input reads the zero row: a select, not a branch, since which
      // entries fall outside changes from block to block along a row (a branch per load is
      // mispredicted there, flushing the loads in flight).
      const index_t c = c0 + t;
      const T* src = static_cast<std::size_t>(c) < static_cast<std::size_t>(g.W) ? row + c * g.C : op.zero_row;
      in[t] = Whole ? V::loadu(src + k0) : load_channels<V>(src, k0, g.C);
    }
    #pragma GCC unroll 8
    for (int s = 0; s < S; ++s) {
      const Reg ws = V::loadu(w + s * V::width);
      #pragma GCC unroll 32
      for (int i = 0; i < MR; ++i) acc[i] = V::fma(in[i + s], ws, acc[i]);
    }
  }
  prefetch_next_row<V, MR>(g, op.x, n, p, q0, k0);
  T* out = op.y + ((n * g.P + p) * g.Q + q0) * g.K + k0;
  #pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) {
    if (q0 + i >= g.Q) break;
    Reg v = acc[i];
    if (op.relu) v = V::max(V::zero(), v);  // zero first: NaN stays NaN, as torch.relu
    if (Whole)
      V::storeu(out + i * g.K, v);
    else
      V::store_first(out + i * g.K, v, static_cast<int>(g.K - k0));
  }
}

// Output rows [lo, hi) (row n * P + p) of the depthwise convolution, every channel vector.
template <class V, int MR, int S>
void depthwise_rows_of(const DirectPass<typename V::T>& pass, index_t lo, index_t hi) {
  const Geometry g = pass.g;
  const RowOperands<typename V::T> op{pass.x, pass.packed, pass.zero_row, pass.bias, pass.y, pass.relu};
  const index_t whole_blocks = g.K / V::width;
  for (index_t row = lo; row < hi; ++row) {
    const index_t n = row / g.P, p = row % g.P;
    for (index_t q0 = 0; q0 < g.Q; q0 += MR) {
      for (index_t kb = 0; kb < whole_blocks; ++kb) depthwise_row_block<V, MR, S, true>(g, op, n, p, q0, kb);
      if (whole_blocks * V::width < g.K) depthwise_row_block<V, MR, S, false>(g, op, n, p, q0, whole_blocks);
    }
  }
}

template <class V, int MR>
void depthwise_rows(const DirectPass<typename V::T>& pass, index_t lo, index_t hi) {
  if (pass.g.S == 3) return depthwise_rows_of<V, MR, 3>(pass, lo, hi);
  depthwise_rows_of<V, MR, 5>(pass, lo, hi);
}

// The output row that follows (n, p)'s: its MR pixels from q0, the channel vector from k0,
// fetched now (the weight gradient's dy, read as the input is: a line per pixel).
template <class V, int MR>
inline void prefetch_next_output_row(const Geometry& g, const typename V::T* y, index_t n, index_t p, index_t q0,
                                     index_t k0) {
  if (p + 1 >= g.P) return;
  const typename V::T* next = y + ((n * g.P + p + 1) * g.Q + q0) * g.K + k0;
  #pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
    if (q0 + i < g.Q) prefetch_line(next + i * g.K);
}

// depthwise_weight_rows_*: output row (n, p)'s part of channel vector kb's sums, MR pixels at a
// time: their R x S taps' products with dy summed in 9 registers (and the bias's in a tenth),
// each tap row's MR + 2 input vectors loaded once for the 3 taps that share them. Pixels past
// the row and columns outside the input read the zero row (selects: see depthwise_row_block).
template <class V, int MR, bool Whole>
__attribute__((always_inline)) inline void depthwise_weight_row(const Geometry& g, const typename V::T* x,
                                                                const typename V::T* dy,
                                                                const typename V::T* zero_row, index_t n,
                                                                index_t p, index_t kb, typename V::Reg (&acc)[10]) {
  using T = typename V::T;
  using Reg = typename V::Reg;
  constexpr int S = 3;
  const index_t k0 = kb * V::width;
  const auto load = [&](const T* at) { return Whole ? V::loadu(at + k0) : load_channels<V>(at, k0, g.C); };
  for (index_t q0 = 0; q0 < g.Q; q0 += MR) {
    const T* grad = dy + ((n * g.P + p) * g.Q + q0) * g.K;
    Reg d[MR];
    #pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      d[i] = load(q0 + i < g.Q ? grad + i * g.K : zero_row);  // K == C: dy's rows are as wide
      acc[9] = V::add(acc[9], d[i]);
    }
    prefetch_next_row<V, MR>(g, x, n, p, q0, k0);
    prefetch_next_output_row<V, MR>(g, dy, n, p, q0, k0);
    #pragma GCC unroll 3
    for (int r = 0; r < 3; ++r) {
      const index_t h = p * g.sh + g.top + r * g.dh;
      if (h < 0 || h >= g.H) continue;
      const T* row = x + (n * g.H + h) * g.W * g.C;
      Reg in[MR + S - 1];
      #pragma GCC unroll 16
      for (int t = 0; t < MR + S - 1; ++t) {
        const index_t c = q0 + g.left + t;
        in[t] = load(static_cast<std::size_t>(c) < static_cast<std::size_t>(g.W) ? row + c * g.C : zero_row);
      }
      #pragma GCC unroll 3
      for (int s = 0; s < S; ++s)
        #pragma GCC unroll 16
        for (int i = 0; i < MR; ++i) acc[r * S + s] = V::fma(d[i], in[i + s], acc[r * S + s]);
    }
  }
}

// Images [part.n_lo, n_hi) x channel vectors [kb_lo, kb_hi), an output row at a time, every
// vector of the row before the next row: the row's pixels are read a line per vector, so all
// lines of a pixel are used while it is in cache (a vector's whole image at a time read the
// tensor once per vector). Each vector's 10 sums stay in registers along the row and wait in
// `image` (room for 10 vectors per channel vector of the part) between rows; an image's sums are
// then added into the doubles.
template <class V, int MR>
void depthwise_weight_rows(const Geometry& g, const typename V::T* x, const typename V::T* dy,
                           const typename V::T* zero_row, const DepthwiseWeightPart& part, typename V::T* image,
                           double* sums) {
  using T = typename V::T;
  using Reg = typename V::Reg;
  const index_t vectors = part.kb_hi - part.kb_lo, values = vectors * 10 * V::width;
  const index_t whole_end = part.kb_hi < g.C / V::width ? part.kb_hi : g.C / V::width;
  for (index_t n = part.n_lo; n < part.n_hi; ++n) {
    for (index_t i = 0; i < values; ++i) image[i] = T(0);
    for (index_t p = 0; p < g.P; ++p)
      for (index_t kb = part.kb_lo; kb < part.kb_hi; ++kb) {
        T* kept = image + (kb - part.kb_lo) * 10 * V::width;
        Reg acc[10];
        #pragma GCC unroll 10
        for (int t = 0; t < 10; ++t) acc[t] = V::loadu(kept + t * V::width);
        if (kb < whole_end)
          depthwise_weight_row<V, MR, true>(g, x, dy, zero_row, n, p, kb, acc);
        else
          depthwise_weight_row<V, MR, false>(g, x, dy, zero_row, n, p, kb, acc);
        #pragma GCC unroll 10
        for (int t = 0; t < 10; ++t) V::storeu(kept + t * V::width, acc[t]);
      }
    for (index_t kb = part.kb_lo; kb < part.kb_hi; ++kb) {
      const T* kept = image + (kb - part.kb_lo) * 10 * V::width;
      const index_t k0 = kb * V::width, lanes = g.C - k0 < V::width ? g.C - k0 : V::width;
      for (int t = 0; t < 10; ++t)
        for (index_t l = 0; l < lanes; ++l) sums[t * g.C + k0 + l] += kept[t * V::width + l];
    }
  }
}

// weight_images_* reads each image from a copy with zeros around it and past its channels
// (PaddedImage), (H, W, C) whatever x's layout: every tap of every output pixel then lies inside,
// so the loop over a row has no bounds checks, and every vector of channels is whole. Copy pixel
// (h, w) is input pixel (h - top, w - left).
struct PaddedImage {
  index_t top, left, H, W, C;
  PaddedImage(const Geometry& g, index_t width) {
    top = g.top < 0 ? -g.top : 0;
    left = g.left < 0 ? -g.left : 0;
    const index_t last_row = (g.P - 1) * g.sh + g.top + (g.R - 1) * g.dh;
    const index_t last_col = (g.Q - 1) * g.sw + g.left + (g.S - 1) * g.dw;
    H = top + (g.H > last_row + 1 ? g.H : last_row + 1);
    W = left + (g.W > last_col + 1 ? g.W : last_col + 1);
    C = (g.C + width - 1) / width * width;
  }
  index_t values() const { return H * W * C; }
  // One image of x (H x W x C, or C x H x W with kNchw) into `out`, zeros where no input lands.
  template <bool kNchw, class T>
  void copy(const Geometry& g, const T* image, T* out) const {
    const index_t row = W * C;
    std::fill(out, out + top * row, T(0));
    std::fill(out + (top + g.H) * row, out + H * row, T(0));
    for (index_t h = 0; h < g.H; ++h) {
      T* to = out + (top + h) * row;
      std::fill(to, to + left * C, T(0));
      std::fill(to + (left + g.W) * C, to + row, T(0));
      if (kNchw)
        transpose_avx2(image + h * g.W, g.H * g.W, to + left * C, C, g.C, g.W);
      else if (C == g.C)
        std::copy(image + h * g.W * g.C, image + (h + 1) * g.W * g.C, to + left * C);
      else
        for (index_t w = 0; w < g.W; ++w)
          std::copy(image + (h * g.W + w) * g.C, image + (h * g.W + w + 1) * g.C, to + (left + w) * C);
      if (C > g.C)
        for (index_t w = 0; w < g.W; ++w) std::fill(to + (left + w) * C + g.C, to + (left + w + 1) * C, T(0));
    }
  }
};

// An image's output gradient with each output row's pixels adjacent: dy(k, p, q) at
// at[k * channel + p * row + q]. NCHW's as it lies ([K][P][Q]); a channels_last one transposed
// per row into [P][K][Q] (transposed whole, rows of one channel would lie 4 KiB apart at 32 x 32
// maps, one cache set). Either way a tile's KB channels are KB streams along the pixels, each
// cache line read once; read as (P, Q, K) a tile used a quarter or less of every line.
template <class T>
struct Gradient {
  const T* at;
  index_t channel, row, image;  // image: from one image of a chunk to the next
};

// The outputs [begin, end) of `count` whose input coordinate i * step + origin lies inside
// [0, extent): outside them a tap reads the copy's zero padding, and its products are skipped.
// With 8x8 maps (resnet20's 64-channel layer) a 3x3 tap at a border reads padding in one row or
// column of 8. It is common/conv_geometry.h's valid_range, restated here: this header compiles
// for the ISA, and an inline function it used could be the copy the linker keeps for baseline
// callers.
struct Span {
  index_t begin, end;
};
inline Span inside(index_t origin, index_t step, index_t extent, index_t count) {
  const index_t first = origin >= 0 ? 0 : (-origin - 1) / step + 1;  // ceil(-origin / step)
  const index_t last = origin >= extent ? 0 : (extent - 1 - origin) / step + 1;
  const index_t begin = first < count ? first : count, end = last < count ? last : count;
  return {begin, end > begin ? end : begin};
}

// KB output channels x TB taps [t0, t0 + TB) of one vector of input channels from c0 over the
// output pixels of a chunk of `images` images (copies pad.values() apart), in registers: per
// pixel TB input vectors and KB broadcasts of dy, KB x TB FMAs; then into the double sums.
// kFullK: the block has KB channels (the last, partial block's missing ones read zero gradients).
template <class V, int KB, int TB, bool kFullK>
inline void weight_tile(const Geometry& g, const PaddedImage& pad, const typename V::T* copies, index_t images,
                        const Gradient<typename V::T>& dy, index_t c0, index_t k0, index_t kb, index_t t0,
                        double* sums) {
  using T = typename V::T;
  using Reg = typename V::Reg;
  const index_t taps = g.R * g.S;
  index_t offset[TB];  // each tap's pixel in the copy for output pixel (0, 0)
  #pragma GCC unroll 9
  for (int t = 0; t < TB; ++t) {
    const index_t r = (t0 + t) / g.S, s = (t0 + t) % g.S;
    offset[t] = ((g.top + pad.top + r * g.dh) * pad.W + g.left + pad.left + s * g.dw) * pad.C + c0;
  }
  Reg acc[KB][TB];
  #pragma GCC unroll 8
  for (int k = 0; k < KB; ++k)
    #pragma GCC unroll 9
    for (int t = 0; t < TB; ++t) acc[k][t] = V::zero();
  // The rows where some tap of the block reads the image (from the first where its last kernel
  // row does to the last where its first does), and each tap's columns inside it; between
  // `all`'s bounds every tap's column is.
  const index_t r_first = t0 / g.S, r_last = (t0 + TB - 1) / g.S;
  const Span rows{inside(g.top + r_last * g.dh, g.sh, g.H, g.P).begin,
                  inside(g.top + r_first * g.dh, g.sh, g.H, g.P).end};
  Span cols[TB], all{0, g.Q};
  #pragma GCC unroll 9
  for (int t = 0; t < TB; ++t) {
    cols[t] = inside(g.left + (t0 + t) % g.S * g.dw, g.sw, g.W, g.Q);
    all = {cols[t].begin > all.begin ? cols[t].begin : all.begin, cols[t].end < all.end ? cols[t].end : all.end};
  }
  if (all.end < all.begin) all.end = all.begin;
  const index_t step = g.sw * pad.C;
  for (index_t n = 0; n < images; ++n)
    for (index_t p = rows.begin; p < rows.end; ++p) {
      const T* src[TB];
      #pragma GCC unroll 9
      for (int t = 0; t < TB; ++t) src[t] = copies + n * pad.values() + p * g.sh * pad.W * pad.C + offset[t];
      const T* grad = dy.at + n * dy.image + k0 * dy.channel + p * dy.row;
      // Output column q: the taps whose column is inside (all of them when all_inside).
      const auto column = [&](index_t q, auto all_inside) {
        Reg d[KB];
        #pragma GCC unroll 8
        for (int k = 0; k < KB; ++k) d[k] = V::set1(kFullK || k < kb ? grad[k * dy.channel + q] : T(0));
        #pragma GCC unroll 9
        for (int t = 0; t < TB; ++t) {
          if constexpr (!decltype(all_inside)::value)
            if (q < cols[t].begin || q >= cols[t].end) continue;
          const Reg in = V::loadu(src[t] + q * step);
          #pragma GCC unroll 8
          for (int k = 0; k < KB; ++k) acc[k][t] = V::fma(d[k], in, acc[k][t]);
        }
      };
      for (index_t q = 0; q < all.begin; ++q) column(q, std::false_type{});
      for (index_t q = all.begin; q < all.end; ++q) column(q, std::true_type{});
      for (index_t q = all.end; q < g.Q; ++q) column(q, std::false_type{});
    }
  alignas(64) T lanes[V::width];
  const index_t width = g.C - c0 < V::width ? g.C - c0 : V::width;
  for (int k = 0; k < kb; ++k)
    for (int t = 0; t < TB; ++t) {
      V::storeu(lanes, acc[k][t]);
      double* out = sums + ((k0 + k) * taps + t0 + t) * g.C + c0;
      for (index_t l = 0; l < width; ++l) out[l] += lanes[l];
    }
}

// weight_tile over a block of exactly `tb` taps (1 <= tb <= TB), by the instance of that width.
template <class V, int KB, int TB, class... Args>
void weight_tile_of(index_t tb, bool full_k, Args&&... args) {
  if constexpr (TB > 1)
    if (tb < TB) return weight_tile_of<V, KB, TB - 1>(tb, full_k, std::forward<Args>(args)...);
  (full_k ? weight_tile<V, KB, TB, true> : weight_tile<V, KB, TB, false>)(std::forward<Args>(args)...);
}

// Images in chunks of at least kWeightChunkPixels output pixels, so that a tile's sums are
// stored once per chunk rather than once per 64 pixels at 8x8 maps (resnet20's 64-channel weight
// gradient at batch 128: 2.2-2.4 ms against 2.4-2.5, within this machine's noise). The taps in
// as few blocks of at most TB as hold them, split evenly (3x3 as three of 3 on either ISA, 5x5
// as seven of 3 or 4 on AVX2), each block by the kernel of its width: every register computes
// a tap. (Blocks of TB, then a last one of TB / 2, had run a 5x5's last tap in a block of 3 and
// 3x3 as 6 + 3 with AVX-512's former 4 x 6 tiles: alternating builds, 2 threads, the direct
// weight gradients of conv5x5 took 9.96-10.13 ms against 9.47-9.77 split evenly, conv7x7_s1
// 9.28-9.34 against 8.76-8.79, resnet20_c16 1.08-1.15 against 1.02-1.07.)
//
// AVX-512 runs tiles of 8 output channels x 3 taps: per pixel 3 input vectors (from L2 once the
// chunk's copies outgrow L1) and 8 broadcasts for 24 FMAs, where 4 x 6 (3x3 as 5 + 4) loaded 5
// vectors for 20 (alternating in one process, one thread: resnet20_c64 2.40 -> 2.14 ms,
// resnet50_3x3 15.8 -> 14.7, resnet20_c32 2.29 -> 2.19, conv5x5 21.6 -> 21.0; conv7x7_s1
// unchanged; 7 x 3 and 5 x 5 no faster). AVX2's 16 registers hold 3 x 4 tiles (12 sums, 3
// broadcasts, an input vector); 4 x 3 needed 17 and spilled: one thread, in one process, float
// 18-30% slower (resnet20_c16 6.0 against 5.0 ms, resnet50_3x3 39.7 against 32.2, conv5x5 71
// against 50), double 20% slower. Channels_last gradients are transposed per image.
constexpr index_t kWeightChunkPixels = 512;

template <class V, int KB, int TB>
void weight_images(const Geometry& g, bool nchw, const typename V::T* x, const typename V::T* dy, double* sums,
                   index_t lo, index_t hi) {
  using T = typename V::T;
  const PaddedImage pad(g, V::width);
  const index_t taps = g.R * g.S, plane = g.P * g.Q;
  const index_t chunk = std::max<index_t>(1, std::min(hi - lo, (kWeightChunkPixels + plane - 1) / plane));
  T* copies = kernel_scratch<T>(chunk * pad.values(), ScratchSlot::columns);
  T* transposed = nchw ? nullptr : kernel_scratch<T>(chunk * g.K * plane, ScratchSlot::transform_work);
  for (index_t n0 = lo; n0 < hi; n0 += chunk) {
    const index_t images = std::min(chunk, hi - n0);
    for (index_t n = n0; n < n0 + images; ++n) {
      T* copy = copies + (n - n0) * pad.values();
      if (nchw) {
        pad.copy<true>(g, x + n * g.H * g.W * g.C, copy);
        continue;
      }
      pad.copy<false>(g, x + n * g.H * g.W * g.C, copy);
      T* rows = transposed + (n - n0) * g.K * plane;  // [P][K][Q]
      for (index_t p = 0; p < g.P; ++p)
        transpose_avx2(dy + (n * plane + p * g.Q) * g.K, g.K, rows + p * g.K * g.Q, g.Q, g.Q, g.K);
    }
    const Gradient<T> grad = nchw ? Gradient<T>{dy + n0 * g.K * plane, plane, g.Q, g.K * plane}
                                  : Gradient<T>{transposed, g.Q, g.K * g.Q, g.K * plane};
    const index_t blocks = (taps + TB - 1) / TB;  // block b: taps [b * taps / blocks, (b + 1) * taps / blocks)
    for (index_t c0 = 0; c0 < g.C; c0 += V::width)
      for (index_t k0 = 0; k0 < g.K; k0 += KB) {
        const index_t kb = g.K - k0 < KB ? g.K - k0 : KB;
        for (index_t b = 0; b < blocks; ++b) {
          const index_t t0 = b * taps / blocks, tb = (b + 1) * taps / blocks - t0;
          weight_tile_of<V, KB, TB>(tb, kb == KB, g, pad, copies, images, grad, c0, k0, kb, t0, sums);
        }
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
  const bool one = pass.block == V::width;
  const index_t k_blocks = (pass.g.K + pass.block - 1) / pass.block;
  for (index_t b = lo; b < hi; ++b)
    for (index_t kb = 0; kb < k_blocks; ++kb) {
      if (one)
        block<V, MR1, 1>(pass, b * MR1, kb);
      else
        block<V, MR2, 2>(pass, b * MR2, kb);
    }
}

template <class V, int MR1, int MR2>
void depthwise_pixel_blocks(const DirectPass<typename V::T>& pass, index_t lo, index_t hi,
                            const typename V::T** sources) {
  if (pass.block == V::width)
    depthwise_blocks_of<V, MR1, 1>(pass, lo, hi, sources);
  else
    depthwise_blocks_of<V, MR2, 2>(pass, lo, hi, sources);
}

}  // namespace
}  // namespace fastconv::conv::cpu::channels_last
