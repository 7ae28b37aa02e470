// conv2d by FFT, tiled overlap-save, on the tiled transform driver (tiled_conv.h).
//
// The output is cut into (F-R+1) x (F-S+1) tiles; each reads an F x F input patch, whose 2-D
// real DFT X gives the patch's circular cross-correlation with a filter w as
// IDFT(X . conj(W)) (correlation theorem); its first (F-R+1) x (F-S+1) values do not wrap and
// are the tile's output. Per frequency the channel reduction is a complex GEMM, done as one
// real GEMM on [[Wr, -Wi], [Wi, Wr]] (4 real products per complex one; a dedicated 3-multiply
// loop would not use our GEMM's micro-kernels). The FFT is our own: radix-2 decimation in
// time on power-of-two sizes, vectorised across tiles, with two real rows packed into one
// complex FFT (forward) and two Hermitian rows into one complex inverse (Numerical Recipes
// 12.3). F is chosen per shape by a cost model (fft_tile_size).
//
// Gradients: the input gradient is this FFT forward with the rotated, channel-transposed
// filters (tiled_conv.h); the weight gradient sums each input patch's spectrum times its
// gradient tile's conjugate over the tiles, per frequency a complex GEMM, and transforms the
// sums back (conv2d_backward_weight_fft).
//
// The filter spectra (about an eighth of a 7x7 layer's call, most of it writing U) are made
// once per weight and tile size when the caller keeps them: fft_transform_weight, cached by
// ops/conv_weight_cache.py like Winograd's U.
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "conv/cpu/tiled_conv.h"
#include "core/isa.h"

namespace fastconv::conv::cpu {

namespace {

// In-place radix-2 decimation-in-time complex FFT of a power-of-two size n on `lanes` signals
// at once: element i of signal l is (re, im)[i * stride + l]. Forward: X[k] = sum_i x[i]
// e^{-2 pi i ik/n}; inverse: the + sign and no 1/n (the filter transform carries the scale).
template <class T>
class RadixTwoFft {
 public:
  explicit RadixTwoFft(index_t n) : n_(n), cos_(n / 2), sin_(n / 2), bit_reversed_(n) {
    const double pi = std::acos(-1.0);
    for (index_t k = 0; k < n / 2; ++k) {
      cos_[k] = static_cast<T>(std::cos(2 * pi * k / n));
      sin_[k] = static_cast<T>(std::sin(2 * pi * k / n));
    }
    for (index_t i = 0, j = 0; i < n; ++i) {
      bit_reversed_[i] = j;
      index_t bit = n >> 1;
      for (; j & bit; bit >>= 1) j ^= bit;
      j |= bit;
    }
  }

  // Inlined into the transforms' AVX-512, AVX2 and baseline entries, so that it is compiled for
  // each.
  // With lanes == kLanes (every tile group) the lane loops have a fixed length and vectorise
  // whole; a call per butterfly through a pointer, with its lane count unknown, had cost the
  // 7x7 layer's FFTs more than their arithmetic.
  __attribute__((always_inline)) inline void run(T* re, T* im, index_t stride, index_t lanes, bool inverse) const {
    if (lanes == tiled::kLanes) return run_lanes<tiled::kLanes>(re, im, stride, lanes, inverse);
    run_lanes<0>(re, im, stride, lanes, inverse);
  }

 private:
  // Lanes == 0: `lanes` at run time.
  template <index_t Lanes>
  __attribute__((always_inline)) inline void run_lanes(T* re, T* im, index_t stride, index_t lanes,
                                                       bool inverse) const {
    const index_t L = Lanes ? Lanes : lanes;
    for (index_t i = 0; i < n_; ++i) {
      const index_t j = bit_reversed_[i];
      if (i < j)
        for (index_t l = 0; l < L; ++l) {
          std::swap(re[i * stride + l], re[j * stride + l]);
          std::swap(im[i * stride + l], im[j * stride + l]);
        }
    }
    for (index_t half = 1; half < n_; half *= 2) {
      const index_t step = n_ / (2 * half);
      for (index_t start = 0; start < n_; start += 2 * half)
        for (index_t k = 0; k < half; ++k) {
          const T wr = cos_[k * step], wi = inverse ? sin_[k * step] : -sin_[k * step];
          butterflies(re + (start + k) * stride, im + (start + k) * stride, re + (start + k + half) * stride,
                      im + (start + k + half) * stride, wr, wi, L);
        }
    }
  }

  // (a, b) <- (a + w b, a - w b) over the lanes.
  __attribute__((always_inline)) static inline void butterflies(T* __restrict ar, T* __restrict ai, T* __restrict br,
                                                                T* __restrict bi, T wr, T wi, index_t lanes) {
    for (index_t l = 0; l < lanes; ++l) {
      const T tr = wr * br[l] - wi * bi[l], ti = wr * bi[l] + wi * br[l];
      br[l] = ar[l] - tr;
      bi[l] = ai[l] - ti;
      ar[l] += tr;
      ai[l] += ti;
    }
  }

  index_t n_;
  std::vector<T> cos_, sin_;
  std::vector<index_t> bit_reversed_;
};

// The tiled driver's view of an F x F real FFT: F * (F/2 + 1) complex points (the other half
// of the spectrum is their conjugate), two parts (re, im) each.
template <class T>
struct FftTransform {
  index_t alpha_h, alpha_w, m_h, m_w, points, parts = 2;
  index_t gradient_row_reads() const { return round_up(m_w, 8); }  // read_row's whole vectors
  index_t F, half, R, S;
  RadixTwoFft<T> fft;

  FftTransform(index_t tile, index_t r, index_t s)
      : alpha_h(tile), alpha_w(tile), m_h(tile - r + 1), m_w(tile - s + 1), points(tile * (tile / 2 + 1)),
        F(tile), half(tile / 2 + 1), R(r), S(s), fft(tile) {}

  // 8 MiB of V and M per block (measured: beat 1 and 3 MiB on the 7x7 bench layer).
  static index_t block_bytes(index_t) { return 8 << 20; }

  // Spectrum [F][half][lanes] (re, im), a complex row [F][lanes], and F x F filter patches.
  index_t work_size(index_t lanes) const { return (2 * F * half + 2 * F + F * F) * lanes; }

  // values[(2 pt + part) * lanes + l] = conj(DFT(w_l zero-padded to F x F))[pt] / F^2 for
  // `lanes` consecutive R x S filters w_l.
  void filter(const T* w, index_t lanes, T* values, T* work) const {
    T* patch = work + (2 * F * half + 2 * F) * lanes;
    std::fill(patch, patch + std::min(F, round_up(R, 2)) * F * lanes, T(0));  // the rows input() reads
    for (index_t l = 0; l < lanes; ++l)
      for (index_t r = 0; r < R; ++r)
        for (index_t s = 0; s < S; ++s) patch[(r * F + s) * lanes + l] = w[(l * R + r) * S + s];
    input(patch, lanes, values, 2 * lanes, lanes, work, R);
    const T scale = T(1) / static_cast<T>(F * F);
    for (index_t pt = 0; pt < points; ++pt)
      for (index_t l = 0; l < lanes; ++l) {
        values[2 * pt * lanes + l] *= scale;
        values[(2 * pt + 1) * lanes + l] *= -scale;
      }
  }

  // 2-D real DFT of `lanes` F x F tiles whose rows from `rows` on are zero: rows (two real
  // rows per complex FFT), then columns. The tiles are read from `tiles`: an array
  // [F][F][lanes] (the filters) or, in place, the lanes' patches (PatchSource). The Hermitian
  // splits and copies are compiled for AVX-512 or AVX2 where it runs (as the butterflies are), and
  // the spectrum leaves by plain loops: a memcpy call per point's 32 bytes had cost 7% of the 7x7
  // layer. On AVX-512 the patches are read and the tiles written by the AVX2 transposes
  // (Avx2 = true): a 16 x 8 transpose in AVX-512 registers read no faster and wrote slower.
  template <class Tiles>
  void input(const Tiles& tiles, index_t lanes, T* out, index_t point_stride, index_t part_stride, T* work,
             index_t rows = 0) const {
#if FASTCONV_X86
    if (vector_isa() == Isa::avx512)
      return input_avx512(tiles, lanes, out, point_stride, part_stride, work, rows ? rows : F);
    if (vector_isa() == Isa::avx2)
      return input_avx2(tiles, lanes, out, point_stride, part_stride, work, rows ? rows : F);
#endif
    input_baseline(tiles, lanes, out, point_stride, part_stride, work, rows ? rows : F);
  }
  template <class Tiles>
  FASTCONV_NO_LIBRARY_CALLS void input_baseline(const Tiles& tiles, index_t lanes, T* out, index_t point_stride,
                                                index_t part_stride, T* work, index_t rows) const {
    input_body<false>(tiles, lanes, out, point_stride, part_stride, work, rows);
  }
#if FASTCONV_X86
  template <class Tiles>
  __attribute__((target("avx2,fma"))) FASTCONV_NO_LIBRARY_CALLS void input_avx2(
      const Tiles& tiles, index_t lanes, T* out, index_t point_stride, index_t part_stride, T* work,
      index_t rows) const {
    input_body<true>(tiles, lanes, out, point_stride, part_stride, work, rows);
  }
  template <class Tiles>
  __attribute__((target("avx512f,avx2,fma"))) FASTCONV_NO_LIBRARY_CALLS void input_avx512(
      const Tiles& tiles, index_t lanes, T* out, index_t point_stride, index_t part_stride, T* work,
      index_t rows) const {
    input_body<true>(tiles, lanes, out, point_stride, part_stride, work, rows);
  }
#endif

  // dst[F][lanes] = row a of every lane's tile.
  template <bool Avx2>
  __attribute__((always_inline)) inline void read_row(const T* tiles, index_t a, index_t lanes, T* dst) const {
    std::memcpy(dst, tiles + a * F * lanes, sizeof(T) * F * lanes);
  }
  // Straight from the patches, with no patch array between: 16 float lanes are transposed in
  // AVX2 registers; gathered one value at a time, the patches had cost the 7x7 layer 7%.
  // Its first `cols` (of F) values; cols a multiple of 8 for the AVX2 path.
  template <bool Avx2>
  __attribute__((always_inline)) inline void read_row(const tiled::PatchSource<T>& src, index_t a, index_t lanes,
                                                      T* dst, index_t cols = 0) const {
    cols = cols ? cols : F;
    if constexpr (Avx2 && std::is_same_v<T, float>)
      if (lanes == 16 && cols % 8 == 0) return tiled::gather_row16_avx2(src, a, cols, dst);
    for (index_t b = 0; b < cols; ++b)
      for (index_t l = 0; l < lanes; ++l) dst[b * lanes + l] = src.origin[l][a * src.ld + b];
  }

  // Gradient tiles: the first m_w values of each patch row, zeros after.
  struct GradientTiles {
    tiled::PatchSource<T> src;
    index_t m_w;
  };
  template <bool Avx2>
  __attribute__((always_inline)) inline void read_row(const GradientTiles& g, index_t a, index_t lanes, T* dst) const {
    if (a < m_h) {
      read_row<Avx2>(g.src, a, lanes, dst, round_up(g.m_w, 8));
      std::fill(dst + g.m_w * lanes, dst + F * lanes, T(0));
    } else {
      std::fill(dst, dst + F * lanes, T(0));
    }
  }

  // The spectra of two real rows a and b from that of z = a + i b, at v (z) and -v (y): (a, b) =
  // ((z + conj y) / 2, (z - conj y) / 2i). Its own function for the restrict qualifiers: with
  // eight pointers that might alias, the compiler had left this loop scalar (about a sixth of the
  // input transform's time on the 11x11 bench layer).
  __attribute__((always_inline)) static inline void split_rows(const T* __restrict z_r, const T* __restrict z_i,
                                                               const T* __restrict y_r, const T* __restrict y_i,
                                                               T* __restrict a_r, T* __restrict a_i,
                                                               T* __restrict b_r, T* __restrict b_i, index_t lanes) {
    for (index_t l = 0; l < lanes; ++l) {
      a_r[l] = T(0.5) * (z_r[l] + y_r[l]);
      a_i[l] = T(0.5) * (z_i[l] - y_i[l]);
      b_r[l] = T(0.5) * (z_i[l] + y_i[l]);
      b_i[l] = T(0.5) * (y_r[l] - z_r[l]);
    }
  }

  template <bool Avx2, class Tiles>
  __attribute__((always_inline)) inline void input_body(const Tiles& tiles, index_t lanes, T* out,
                                                        index_t point_stride, index_t part_stride, T* work,
                                                        index_t rows) const {
    T *sr = work, *si = sr + F * half * lanes, *zr = si + F * half * lanes, *zi = zr + F * lanes;
    // Zero rows have a zero spectrum: a filter's R rows of F are all that need a row FFT.
    const index_t row_pairs_end = std::min(F, round_up(rows, 2));
    std::fill(sr + row_pairs_end * half * lanes, sr + F * half * lanes, T(0));
    std::fill(si + row_pairs_end * half * lanes, si + F * half * lanes, T(0));
    for (index_t a = 0; a < row_pairs_end; a += 2) {
      read_row<Avx2>(tiles, a, lanes, zr);
      read_row<Avx2>(tiles, a + 1, lanes, zi);
      fft.run(zr, zi, lanes, lanes, false);
      // z = x_a + i x_b: X_a[v] = (Z[v] + conj Z[-v]) / 2, X_b[v] = (Z[v] - conj Z[-v]) / 2i.
      for (index_t v = 0; v < half; ++v) {
        const T *z_r = zr + v * lanes, *z_i = zi + v * lanes;
        const T *y_r = zr + (F - v) % F * lanes, *y_i = zi + (F - v) % F * lanes;
        T *a_r = sr + (a * half + v) * lanes, *a_i = si + (a * half + v) * lanes;
        split_rows(z_r, z_i, y_r, y_i, a_r, a_i, a_r + half * lanes, a_i + half * lanes, lanes);
      }
    }
    for (index_t v = 0; v < half; ++v) fft.run(sr + v * lanes, si + v * lanes, half * lanes, lanes, false);
    for (index_t pt = 0; pt < points; ++pt)
      for (index_t l = 0; l < lanes; ++l) {
        out[pt * point_stride + l] = sr[pt * lanes + l];
        out[pt * point_stride + part_stride + l] = si[pt * lanes + l];
      }
  }

  void input_tiles(const tiled::PatchSource<T>& src, index_t lanes, T* out, index_t point_stride, index_t part_stride,
                   T* work) const {
    input(src, lanes, out, point_stride, part_stride, work);
  }
  // The weight gradient's: the spectra of `lanes` m_h x m_w gradient tiles, zero-padded to F x F.
  void gradient_tiles(const tiled::PatchSource<T>& src, index_t lanes, T* out, index_t point_stride,
                      index_t part_stride, T* work) const {
    input(GradientTiles{src, m_w}, lanes, out, point_stride, part_stride, work, m_h);
  }
  // The output tiles are written row by row straight from the inverse FFT's rows, with no
  // tile array between (as the input side reads its patches).
  void output_tiles(const T* in, index_t point_stride, index_t part_stride, index_t lanes,
                    const tiled::TileTarget<T>* tiles, index_t ld, T bias, bool relu, T* work) const {
    const tiled::TileRows<T> rows{tiles, ld, bias, relu};
#if FASTCONV_X86
    if (vector_isa() == Isa::avx512) return output_avx512(in, point_stride, part_stride, lanes, rows, work);
    if (vector_isa() == Isa::avx2) return output_avx2(in, point_stride, part_stride, lanes, rows, work);
#endif
    output_baseline(in, point_stride, part_stride, lanes, rows, work);
  }

  // The tiled driver's paired output for a pixel shuffle (winograd.cpp's): none here.
  bool output_tile_pairs(const T* const*, index_t, index_t, const tiled::TileTarget<T>*, index_t, const T*,
                         bool) const {
    return false;
  }

  // Inverse 2-D DFT, keeping the first m_h x m_w values: columns, then two Hermitian rows
  // (y_a + i y_b has spectrum Y_a + i Y_b) per complex inverse FFT.
  FASTCONV_NO_LIBRARY_CALLS void output_baseline(const T* in, index_t point_stride, index_t part_stride, index_t lanes,
                                                 const tiled::TileRows<T>& rows, T* work) const {
    output_body<false>(in, point_stride, part_stride, lanes, rows, work);
  }
#if FASTCONV_X86
  __attribute__((target("avx2,fma"))) FASTCONV_NO_LIBRARY_CALLS void output_avx2(
      const T* in, index_t point_stride, index_t part_stride, index_t lanes, const tiled::TileRows<T>& rows,
      T* work) const {
    output_body<true>(in, point_stride, part_stride, lanes, rows, work);
  }
  __attribute__((target("avx512f,avx2,fma"))) FASTCONV_NO_LIBRARY_CALLS void output_avx512(
      const T* in, index_t point_stride, index_t part_stride, index_t lanes, const tiled::TileRows<T>& rows,
      T* work) const {
    output_body<true>(in, point_stride, part_stride, lanes, rows, work);
  }
#endif

  // Row a of every lane's output tile from row[m_w][lanes].
  template <bool Avx2>
  __attribute__((always_inline)) inline void write_row(const tiled::TileRows<T>& rows, index_t a, const T* row,
                                                       index_t lanes) const {
    if constexpr (Avx2 && std::is_same_v<T, float>)
      if (lanes == 16) return tiled::scatter_row16_avx2(rows, a, m_w, row);
    tiled::scatter_row(rows, a, m_w, row, lanes);
  }

  template <bool Avx2>
  __attribute__((always_inline)) inline void output_body(const T* in, index_t point_stride, index_t part_stride,
                                                         index_t lanes, const tiled::TileRows<T>& rows,
                                                         T* work) const {
    T *sr = work, *si = sr + F * half * lanes, *zr = si + F * half * lanes, *zi = zr + F * lanes;
    for (index_t pt = 0; pt < points; ++pt)
      for (index_t l = 0; l < lanes; ++l) {
        sr[pt * lanes + l] = in[pt * point_stride + l];
        si[pt * lanes + l] = in[pt * point_stride + part_stride + l];
      }
    for (index_t v = 0; v < half; ++v) fft.run(sr + v * lanes, si + v * lanes, half * lanes, lanes, true);
    for (index_t a = 0; a < m_h; a += 2) {
      for (index_t v = 0; v < F; ++v) {
        // Row spectra at v from the stored half: Y[v], or conj Y[F - v].
        const index_t stored = v < half ? v : F - v;
        const T sign = v < half ? T(1) : T(-1);
        const T *ya_r = sr + (a * half + stored) * lanes, *ya_i = si + (a * half + stored) * lanes;
        const T *yb_r = ya_r + half * lanes, *yb_i = ya_i + half * lanes;
        T *z_r = zr + v * lanes, *z_i = zi + v * lanes;
        for (index_t l = 0; l < lanes; ++l) {
          z_r[l] = ya_r[l] - sign * yb_i[l];
          z_i[l] = sign * ya_i[l] + yb_r[l];
        }
      }
      fft.run(zr, zi, lanes, lanes, true);
      write_row<Avx2>(rows, a, zr, lanes);
      if (a + 1 < m_h) write_row<Avx2>(rows, a + 1, zi, lanes);
    }
  }
};

// The power-of-two tile size F with the least estimated work: per tile, the complex GEMMs
// (4 real multiply-adds per point and channel pair) and the FFTs of every input and output
// channel (~5 F^2 log2 F flops each, weighted x2 for their lower efficiency than the GEMM);
// once, building and packing the transformed filters (points x 4 K Cg values, weighted as 16
// tiles' worth of GEMM: it is memory traffic, not arithmetic).
index_t fft_tile_size(const TiledGeometry& g, index_t R, index_t S) {
  index_t best = 0;
  double best_cost = std::numeric_limits<double>::infinity();
  for (index_t F = 8; F <= kFftMaxKernel + 1; F *= 2) {
    if (F < std::max(R, S)) continue;
    const double tiles = static_cast<double>(g.N * ceil_div(g.P, F - R + 1) * ceil_div(g.Q, F - S + 1));
    const double gemm = 4.0 * F * (F / 2 + 1) * (g.C / g.groups) * g.K;
    const double transforms = 10.0 * F * F * std::log2(F) * (g.C + g.K);
    const double cost = tiles * (gemm + transforms) + 16 * gemm;
    if (cost < best_cost) best = F, best_cost = cost;
  }
  return best;
}

TiledGeometry fft_geometry(const Conv2dShape& s, WeightUse use) {
  return use == WeightUse::forward ? forward_geometry(s) : backward_input_geometry(s);
}

// y = conv(x, w) through FFT tiles of the size fft_tile_size picks, on filters u already
// transformed at that size, or on w.
template <class T>
void fft_conv(const TiledGeometry& g, const T* x, const T* w, const T* u, index_t R, index_t S, const T* bias,
              const T* residual, bool relu, T* y) {
  const FftTransform<T> tf(fft_tile_size(g, R, S), R, S);
  if (u) return tiled_conv_transformed(g, tf, x, u, bias, residual, relu, y);
  tiled_conv(g, tf, x, w, R, S, bias, residual, relu, y);
}

}  // namespace

index_t fft_weight_tile(const Conv2dShape& s, WeightUse use) { return fft_tile_size(fft_geometry(s, use), s.R, s.S); }

index_t fft_transformed_size(const Conv2dShape& s, WeightUse use, index_t tile) {
  return tiled::transformed_filters_size(fft_geometry(s, use), FftTransform<float>(tile, s.R, s.S));
}

// The filters as fft_conv reads them at `tile`; the input gradient's are the rotated,
// channel-transposed weights.
template <class T>
void fft_transform_weight(const Conv2dShape& s, WeightUse use, index_t tile, const T* w, T* u) {
  const FftTransform<T> tf(tile, s.R, s.S);
  if (use == WeightUse::forward) return tiled::transform_filters(forward_geometry(s), tf, w, s.R, s.S, u);
  const std::vector<T> rotated = rotated_transposed_weights(s, w);
  tiled::transform_filters(backward_input_geometry(s), tf, rotated.data(), s.R, s.S, u);
}

template <class T>
void conv2d_forward_fft(const Conv2dShape& s, const T* x, const T* w, const T* u, const T* bias, const T* residual,
                        bool relu, T* y) {
  fft_conv(forward_geometry(s), x, w, u, s.R, s.S, bias, residual, relu, y);
}

template <class T>
void conv2d_backward_input_fft(const Conv2dShape& s, const T* grad_y, const T* w, const T* u, T* grad_x) {
  const T* no_bias = nullptr;
  if (u) return fft_conv(backward_input_geometry(s), grad_y, w, u, s.R, s.S, no_bias, no_bias, false, grad_x);
  const std::vector<T> rotated = rotated_transposed_weights(s, w);
  fft_conv(backward_input_geometry(s), grad_y, rotated.data(), u, s.R, s.S, no_bias, no_bias, false, grad_x);
}

// grad_w[k, c] = IDFT(sum over tiles of X conj(GY))[0, R) x [0, S) / F^2: the correlation of each
// input patch with its gradient tile, whose first R x S values do not wrap (F - m + 1 = R).
// The inverse runs through the output transform of a tile whose outputs are R x S.
template <class T>
void conv2d_backward_weight_fft(const Conv2dShape& s, const T* x, const T* grad_y, T* grad_w, T* grad_bias) {
  const TiledGeometry g = forward_geometry(s);
  const index_t F = fft_tile_size(g, s.R, s.S), filters = s.K * s.C_per_group();
  const FftTransform<T> tf(F, s.R, s.S);
  std::vector<T> du(tf.points * tf.parts * filters);  // [pt][part][filter]
  tiled::weight_gradient_points(g, tf, x, grad_y, du.data());
  const FftTransform<T> to_filters(F, F - s.R + 1, F - s.S + 1);
  const T scale = T(1) / static_cast<T>(F * F);
  parallel_for(0, ceil_div(filters, tiled::kLanes), 1, [&](index_t lo, index_t hi) {
    std::vector<T> work(to_filters.work_size(tiled::kLanes));
    tiled::TileTarget<T> targets[tiled::kLanes];
    for (index_t i = lo; i < hi; ++i) {
      const index_t f0 = i * tiled::kLanes, lanes = std::min(tiled::kLanes, filters - f0);
      for (index_t l = 0; l < lanes; ++l) targets[l] = {grad_w + (f0 + l) * s.R * s.S, s.R, s.S};
      to_filters.output_tiles(du.data() + f0, tf.parts * filters, filters, lanes, targets, s.S, T(0), false,
                              work.data());
      for (index_t v = f0 * s.R * s.S; v < (f0 + lanes) * s.R * s.S; ++v) grad_w[v] *= scale;
    }
  });
  if (grad_bias) conv2d_bias_grad(s, grad_y, grad_bias);
}

#define FASTCONV_INSTANTIATE(T)                                                                           \
  template void conv2d_backward_weight_fft<T>(const Conv2dShape&, const T*, const T*, T*, T*);              \
  template void fft_transform_weight<T>(const Conv2dShape&, WeightUse, index_t, const T*, T*);               \
  template void conv2d_forward_fft<T>(const Conv2dShape&, const T*, const T*, const T*, const T*, const T*, bool, T*); \
  template void conv2d_backward_input_fft<T>(const Conv2dShape&, const T*, const T*, const T*, T*);
FASTCONV_INSTANTIATE(float)
FASTCONV_INSTANTIATE(double)
#undef FASTCONV_INSTANTIATE

}  // namespace fastconv::conv::cpu
