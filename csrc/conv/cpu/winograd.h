// Winograd minimal filtering F(m x m, r x r), after Lavin & Gray, "Fast Algorithms for
// Convolutional Neural Networks" (CVPR 2016): one m x m output tile of an r x r correlation is
//     Y = A^T [ (G g G^T) . (B^T d B) ] A                        (their equation 8)
// for an alpha x alpha input tile d (alpha = m + r - 1) and an r x r filter g. F(2x2, 3x3) uses
// their section 4.1 matrices; F(4x4, 3x3) the interpolation points 0, 1, -1, 2, -2 and infinity
// (their section 4.2, the matrices of Lavin's wincnn). F(2x2, 5x5) has the same six points, so
// the same B^T; its G and A^T follow from them (Toom-Cook: G[j] = (1, f, ..., f^4) / prod (f - f_l),
// A^T[i][j] = f_j^i, the point at infinity taking the last coefficient). F(2x2, 7x7) adds the
// points 1/2 and -1/2, wincnn's eight for F(6x6, 3x3); F(4x4, 5x5) has the same eight. F(4x4, 2x2)
// takes five of them, 0, 1, -1, 2 and infinity. The transforms are 1-D codelets (NNPACK style)
// applied to the columns, then the rows, of a tile; each codelet runs over `lanes` tiles at once.
//
// The weight gradient runs the same algorithm backwards. With X = U . V per tile and channel
// pair, dL/dX = A dY A^T, dL/dU = sum over tiles of dL/dX . V, and dL/dg = G^T dL/dU G: so the
// gradient tiles go through A (output_adjoint), the per-point products are summed over tiles
// (a GEMM whose depth is the tiles), and the sums through G^T (filter_adjoint).
#pragma once
#include "common/winograd_codelets.h"
#include "conv/cpu/tile_io.h"
#include "core/view.h"

namespace fastconv::conv::cpu::winograd {

// Every codelet reads in[i * is + l] and writes out[j * os + l] for l < lanes.
template <int M, int R>
struct F;

// F(2x2, 3x3)'s and F(4x4, 3x3)'s codelets are common/winograd_codelets.h's, which the CUDA kernel
// shares.
template <>
struct F<2, 3> : fastconv::winograd::F2x3 {};
template <>
struct F<4, 3> : fastconv::winograd::F4x3 {};

// A for F(M x M, r x r), M -> alpha: g0 at the point 0, sum_i f^i g_i at each other finite
// point f (`points`, in order; by Horner's rule, so that for M = 2 it is g0 + f g1), g_(M-1) at
// infinity.
template <int M, int kPoints, class T>
void output_adjoint_at_points(const double (&points)[kPoints], const T* __restrict in, index_t is,
                              T* __restrict out, index_t os, index_t lanes) {
  for (index_t l = 0; l < lanes; ++l) {
    T g[M];
    for (int i = 0; i < M; ++i) g[i] = in[i * is + l];
    out[l] = g[0];
    for (int j = 0; j < kPoints; ++j) {
      T v = g[M - 1];
      for (int i = M - 2; i >= 0; --i) v = v * T(points[j]) + g[i];
      out[(j + 1) * os + l] = v;
    }
    out[(kPoints + 1) * os + l] = g[M - 1];
  }
}

template <>
struct F<2, 5> {
  static constexpr int m = 2, r = 5, alpha = 6;

  // F(4x4, 3x3)'s B^T: the same points.
  template <class T>
  static void input(const T* __restrict in, index_t is, T* __restrict out, index_t os, index_t lanes) {
    F<4, 3>::input(in, is, out, os, lanes);
  }
  // G = [1/4 0 0 0 0; -1/6 (1 1 1 1 1); -1/6 (1 -1 1 -1 1); 1/24 (1 2 4 8 16); 1/24 (1 -2 4 -8 16);
  //      0 0 0 0 1]
  template <class T>
  static void filter(const T* __restrict in, index_t is, T* __restrict out, index_t os, index_t lanes) {
    for (index_t l = 0; l < lanes; ++l) {
      const T g0 = in[l], g1 = in[is + l], g2 = in[2 * is + l], g3 = in[3 * is + l], g4 = in[4 * is + l];
      const T even = g0 + g2 + g4, odd = g1 + g3;
      const T even2 = g0 + T(4) * g2 + T(16) * g4, odd2 = T(2) * g1 + T(8) * g3;
      out[l] = g0 / T(4);
      out[os + l] = -(even + odd) / T(6);
      out[2 * os + l] = -(even - odd) / T(6);
      out[3 * os + l] = (even2 + odd2) / T(24);
      out[4 * os + l] = (even2 - odd2) / T(24);
      out[5 * os + l] = g4;
    }
  }
  // A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 1]
  template <class T>
  static void output(const T* __restrict in, index_t is, T* __restrict out, index_t os, index_t lanes) {
    for (index_t l = 0; l < lanes; ++l) {
      const T m0 = in[l], m1 = in[is + l], m2 = in[2 * is + l], m3 = in[3 * is + l], m4 = in[4 * is + l],
              m5 = in[5 * is + l];
      out[l] = m0 + (m1 + m2) + (m3 + m4);
      out[os + l] = (m1 - m2) + T(2) * (m3 - m4) + m5;
    }
  }
  // A: 2 -> 6
  template <class T>
  static void output_adjoint(const T* __restrict in, index_t is, T* __restrict out, index_t os, index_t lanes) {
    static constexpr double points[] = {1, -1, 2, -2};
    output_adjoint_at_points<2>(points, in, is, out, os, lanes);
  }
  // G^T: 6 -> 5
  template <class T>
  static void filter_adjoint(const T* __restrict in, index_t is, T* __restrict out, index_t os, index_t lanes) {
    for (index_t l = 0; l < lanes; ++l) {
      const T u0 = in[l], u1 = in[is + l], u2 = in[2 * is + l], u3 = in[3 * is + l], u4 = in[4 * is + l],
              u5 = in[5 * is + l];
      const T s12 = (u1 + u2) / T(6), d12 = (u2 - u1) / T(6), s34 = u3 + u4, d34 = u3 - u4;
      out[l] = u0 / T(4) - s12 + s34 / T(24);
      out[os + l] = d12 + d34 / T(12);
      out[2 * os + l] = s34 / T(6) - s12;
      out[3 * os + l] = d12 + d34 / T(3);
      out[4 * os + l] = T(2) * s34 / T(3) - s12 + u5;
    }
  }
};

// F(4x4, 2x2) on the five points 0, 1, -1, 2 and infinity (Toom-Cook: A^T[i][j] = f_j^i, G[j] =
// (1, f_j) / N_j, B^T's rows the interpolation's, scaled by N_j to integers): 25 multiplications
// per 4x4 tile and channel pair instead of 64. What a 4x4 kernel at stride 2 (a transposed
// convolution's upsampling, its gradients) and a 3x3 one at stride 2 (resnet's downsampling) run
// as: their stride phases are 2x2. In float32 its error measured at most 5.8e-6 of the largest
// output (F(4x4, 3x3): 7.6e-6; tests/conv/test_winograd.py).
template <>
struct F<4, 2> {
  static constexpr int m = 4, r = 2, alpha = 5;

  // B^T = [2 -1 -2 1 0; 0 2 1 -1 0; 0 -2 3 -1 0; 0 -1 0 1 0; 0 2 -1 -2 1]
  template <class T>
  static void input(const T* __restrict in, index_t is, T* __restrict out, index_t os, index_t lanes) {
    for (index_t l = 0; l < lanes; ++l) {
      const T d0 = in[l], d1 = in[is + l], d2 = in[2 * is + l], d3 = in[3 * is + l], d4 = in[4 * is + l];
      const T d31 = d3 - d1, d23 = d2 - d3;
      out[l] = T(2) * (d0 - d2) + d31;
      out[os + l] = T(2) * d1 + d23;
      out[2 * os + l] = T(2) * (d2 - d1) + d23;
      out[3 * os + l] = d31;
      out[4 * os + l] = T(2) * (d1 - d3) + (d4 - d2);
    }
  }
  // G = [1/2 0; 1/2 1/2; 1/6 -1/6; 1/6 1/3; 0 1]
  template <class T>
  static void filter(const T* __restrict in, index_t is, T* __restrict out, index_t os, index_t lanes) {
    for (index_t l = 0; l < lanes; ++l) {
      const T g0 = in[l], g1 = in[is + l];
      out[l] = g0 / T(2);
      out[os + l] = (g0 + g1) / T(2);
      out[2 * os + l] = (g0 - g1) / T(6);
      out[3 * os + l] = (g0 + T(2) * g1) / T(6);
      out[4 * os + l] = g1;
    }
  }
  // A^T = [1 1 1 1 0; 0 1 -1 2 0; 0 1 1 4 0; 0 1 -1 8 1]
  template <class T>
  static void output(const T* __restrict in, index_t is, T* __restrict out, index_t os, index_t lanes) {
    for (index_t l = 0; l < lanes; ++l) {
      const T m0 = in[l], m1 = in[is + l], m2 = in[2 * is + l], m3 = in[3 * is + l], m4 = in[4 * is + l];
      const T s12 = m1 + m2, d12 = m1 - m2;
      out[l] = (m0 + s12) + m3;
      out[os + l] = d12 + T(2) * m3;
      out[2 * os + l] = s12 + T(4) * m3;
      out[3 * os + l] = (d12 + T(8) * m3) + m4;
    }
  }
  // A: 4 -> 5
  template <class T>
  static void output_adjoint(const T* __restrict in, index_t is, T* __restrict out, index_t os, index_t lanes) {
    static constexpr double points[] = {1, -1, 2};
    output_adjoint_at_points<4>(points, in, is, out, os, lanes);
  }
  // G^T: 5 -> 2
  template <class T>
  static void filter_adjoint(const T* __restrict in, index_t is, T* __restrict out, index_t os, index_t lanes) {
    for (index_t l = 0; l < lanes; ++l) {
      const T u0 = in[l], u1 = in[is + l], u2 = in[2 * is + l], u3 = in[3 * is + l], u4 = in[4 * is + l];
      out[l] = (u0 + u1) / T(2) + (u2 + u3) / T(6);
      out[os + l] = u1 / T(2) + (u3 - u2 / T(2)) / T(3) + u4;
    }
  }
};

// The filter transforms on the eight points 0, 1, -1, 2, -2, 1/2, -1/2 and infinity, for an
// R-tap filter (F(2x2, 7x7): 7; F(4x4, 5x5): 5; alpha = 8 for both). G[j][k] = c_j f_j^k (the
// point at infinity: g_(R-1)), with c_j -2/9 at +-1, 1/90 at +-2 and 64/90 at +-1/2 (Toom-Cook,
// the factors moved out of wincnn's B^T into G):
//   G = [1 0 ...; -2/9 (1 1 1 ...); -2/9 (1 -1 1 ...); 1/90 (1 2 4 ...); 1/90 (1 -2 4 ...);
//        1/90 (64 32 16 ...); 1/90 (64 -32 16 ...); 0 ... 0 1]
template <int R, class T>
void eight_point_filter(const T* __restrict in, index_t is, T* __restrict out, index_t os, index_t lanes) {
  for (index_t l = 0; l < lanes; ++l) {
    T g[R];
    for (int i = 0; i < R; ++i) g[i] = in[i * is + l];
    // sums over the even and the odd taps, plain, by 2^k and by 2^(6 - k), in tap order
    T even = g[0], odd = g[1], even2 = g[0], odd2 = T(2) * g[1], even_half = T(64) * g[0], odd_half = T(32) * g[1];
    for (int k = 2; k < R; ++k) {
      if (k % 2 == 0) {
        even = even + g[k];
        even2 = even2 + T(1 << k) * g[k];
        even_half = even_half + T(1 << (6 - k)) * g[k];
      } else {
        odd = odd + g[k];
        odd2 = odd2 + T(1 << k) * g[k];
        odd_half = odd_half + T(1 << (6 - k)) * g[k];
      }
    }
    out[l] = g[0];
    out[os + l] = T(-2) * (even + odd) / T(9);
    out[2 * os + l] = T(-2) * (even - odd) / T(9);
    out[3 * os + l] = (even2 + odd2) / T(90);
    out[4 * os + l] = (even2 - odd2) / T(90);
    out[5 * os + l] = (even_half + odd_half) / T(90);
    out[6 * os + l] = (even_half - odd_half) / T(90);
    out[7 * os + l] = g[R - 1];
  }
}

// G^T: 8 -> R. Column k of G: -2/9 (1, (-1)^k) at points 1, 2; 2^k / 90 (1, (-1)^k) at 3, 4;
// 2^(6-k) / 90 (1, (-1)^k) at 5, 6; and g0, g_(R-1) from points 0 and infinity.
template <int R, class T>
void eight_point_filter_adjoint(const T* __restrict in, index_t is, T* __restrict out, index_t os, index_t lanes) {
  for (index_t l = 0; l < lanes; ++l) {
    T u[8];
    for (int i = 0; i < 8; ++i) u[i] = in[i * is + l];
    const T pair[2][3] = {{u[1] + u[2], (u[3] + u[4]) / T(90), (u[5] + u[6]) / T(90)},    // even k
                          {u[1] - u[2], (u[3] - u[4]) / T(90), (u[5] - u[6]) / T(90)}};  // odd k
    for (int k = 0; k < R; ++k) {
      const T* p = pair[k % 2];
      out[k * os + l] = T(-2) * p[0] / T(9) + T(1 << k) * p[1] + T(1 << (6 - k)) * p[2];
    }
    out[l] += u[0];
    out[(R - 1) * os + l] += u[7];
  }
}

// F(2x2, 7x7) on the eight points, wincnn's for F(6x6, 3x3), so its B^T (alpha = m + r - 1 = 8
// for both). 64 multiplications per 2x2 tile and channel pair instead of 196; in float32 its
// error is about 1.7x F(2x2, 5x5)'s.
template <>
struct F<2, 7> {
  static constexpr int m = 2, r = 7, alpha = 8;

  // B^T = [1 0 -21/4 0 21/4 0 -1 0; 0 1 1 -17/4 -17/4 1 1 0; 0 -1 1 17/4 -17/4 -1 1 0;
  //        0 1/2 1/4 -5/2 -5/4 2 1 0; 0 -1/2 1/4 5/2 -5/4 -2 1 0; 0 2 4 -5/2 -5 1/2 1 0;
  //        0 -2 4 5/2 -5 -1/2 1 0; 0 -1 0 21/4 0 -21/4 0 1]
  template <class T>
  static void input(const T* __restrict in, index_t is, T* __restrict out, index_t os, index_t lanes) {
    for (index_t l = 0; l < lanes; ++l) {
      T d[8];
      for (int i = 0; i < 8; ++i) d[i] = in[i * is + l];
      const T e1 = d[2] + d[6] - T(4.25) * d[4], o1 = d[1] + d[5] - T(4.25) * d[3];
      const T e2 = T(0.25) * d[2] - T(1.25) * d[4] + d[6], o2 = T(0.5) * d[1] - T(2.5) * d[3] + T(2) * d[5];
      const T e3 = T(4) * d[2] - T(5) * d[4] + d[6], o3 = T(2) * d[1] - T(2.5) * d[3] + T(0.5) * d[5];
      out[l] = d[0] - d[6] + T(5.25) * (d[4] - d[2]);
      out[os + l] = e1 + o1;
      out[2 * os + l] = e1 - o1;
      out[3 * os + l] = e2 + o2;
      out[4 * os + l] = e2 - o2;
      out[5 * os + l] = e3 + o3;
      out[6 * os + l] = e3 - o3;
      out[7 * os + l] = d[7] - d[1] + T(5.25) * (d[3] - d[5]);
    }
  }
  template <class T>
  static void filter(const T* __restrict in, index_t is, T* __restrict out, index_t os, index_t lanes) {
    eight_point_filter<7>(in, is, out, os, lanes);
  }
  // A^T = [1 1 1 1 1 1 1 0; 0 1 -1 2 -2 1/2 -1/2 1]
  template <class T>
  static void output(const T* __restrict in, index_t is, T* __restrict out, index_t os, index_t lanes) {
    for (index_t l = 0; l < lanes; ++l) {
      T m[8];
      for (int i = 0; i < 8; ++i) m[i] = in[i * is + l];
      out[l] = m[0] + (m[1] + m[2]) + (m[3] + m[4]) + (m[5] + m[6]);
      out[os + l] = (m[1] - m[2]) + T(2) * (m[3] - m[4]) + T(0.5) * (m[5] - m[6]) + m[7];
    }
  }
  // A: 2 -> 8
  template <class T>
  static void output_adjoint(const T* __restrict in, index_t is, T* __restrict out, index_t os, index_t lanes) {
    static constexpr double points[] = {1, -1, 2, -2, 0.5, -0.5};
    output_adjoint_at_points<2>(points, in, is, out, os, lanes);
  }
  template <class T>
  static void filter_adjoint(const T* __restrict in, index_t is, T* __restrict out, index_t os, index_t lanes) {
    eight_point_filter_adjoint<7>(in, is, out, os, lanes);
  }
};

// F(4x4, 5x5) on the same eight points: 64 multiplications per 4x4 tile and channel pair where
// F(2x2, 5x5) does 144 (36 per 2x2 tile), and an 8x8 input tile per 16 outputs instead of a 6x6
// per 4. In float32 its error measured 1.0e-5 of the largest output, against F(2x2, 7x7)'s 6.3e-6
// and F(2x2, 5x5)'s 3.9e-6 (tests/conv/test_winograd.py's shapes).
template <>
struct F<4, 5> {
  static constexpr int m = 4, r = 5, alpha = 8;

  template <class T>
  static void input(const T* __restrict in, index_t is, T* __restrict out, index_t os, index_t lanes) {
    F<2, 7>::input(in, is, out, os, lanes);
  }
  template <class T>
  static void filter(const T* __restrict in, index_t is, T* __restrict out, index_t os, index_t lanes) {
    eight_point_filter<5>(in, is, out, os, lanes);
  }
  // A^T = [1 1 1 1 1 1 1 0; 0 1 -1 2 -2 1/2 -1/2 0; 0 1 1 4 4 1/4 1/4 0; 0 1 -1 8 -8 1/8 -1/8 1]
  template <class T>
  static void output(const T* __restrict in, index_t is, T* __restrict out, index_t os, index_t lanes) {
    for (index_t l = 0; l < lanes; ++l) {
      T m[8];
      for (int i = 0; i < 8; ++i) m[i] = in[i * is + l];
      const T s12 = m[1] + m[2], d12 = m[1] - m[2], s34 = m[3] + m[4], d34 = m[3] - m[4];
      const T s56 = m[5] + m[6], d56 = m[5] - m[6];
      out[l] = m[0] + s12 + s34 + s56;
      out[os + l] = d12 + T(2) * d34 + T(0.5) * d56;
      out[2 * os + l] = s12 + T(4) * s34 + T(0.25) * s56;
      out[3 * os + l] = d12 + T(8) * d34 + T(0.125) * d56 + m[7];
    }
  }
  // A: 4 -> 8
  template <class T>
  static void output_adjoint(const T* __restrict in, index_t is, T* __restrict out, index_t os, index_t lanes) {
    static constexpr double points[] = {1, -1, 2, -2, 0.5, -0.5};
    output_adjoint_at_points<4>(points, in, is, out, os, lanes);
  }
  template <class T>
  static void filter_adjoint(const T* __restrict in, index_t is, T* __restrict out, index_t os, index_t lanes) {
    eight_point_filter_adjoint<5>(in, is, out, os, lanes);
  }
};

// out[(i * n_out + j) * os + l] = sum_{a, b} C[i][a] C[j][b] in[(a * n_in + b) * is + l] for the
// 1-D codelet C (n_in -> n_out): columns first into `work` (n_out * n_in * lanes), then rows.
template <class T, class Codelet>
void transform_2d(Codelet codelet, int n_in, int n_out, const T* in, index_t is, T* out, index_t os,
                  index_t lanes, T* work) {
  for (int b = 0; b < n_in; ++b) codelet(in + b * is, n_in * is, work + b * lanes, n_in * lanes, lanes);
  for (int i = 0; i < n_out; ++i) codelet(work + i * n_in * lanes, lanes, out + i * n_out * os, os, lanes);
}

// The 2-D transforms for float on one ISA, `lanes` tiles at once (winograd_rows.h; 8 on AVX2,
// 16 on AVX-512): the input patches' and the weight gradient's tiles to out[pt * point_stride + l]
// for l < lanes, and the output tiles (+ bias, ReLU) from in[pt * point_stride + l] to their
// targets. lanes == 0 (the baseline's table): none, the codelets above run. AVX-512's has no
// gradient: the weight gradient runs AVX2's there (winograd.cpp's weight_gradient_vectors).
template <int M, int R>
struct VectorTransforms {
  index_t lanes = 0;
  void (*input)(const tiled::PatchSource<float>& src, float* out, index_t point_stride) = nullptr;
  void (*gradient)(const tiled::PatchSource<float>& src, float* out, index_t point_stride) = nullptr;
  void (*output)(const float* in, index_t point_stride, const tiled::TileTarget<float>* tiles, index_t ld, float bias,
                 bool relu) = nullptr;
  // Two channels' output tiles, in[0]'s and in[1]'s (+ bias[b], ReLU), interleaved column by
  // column into the targets: a pixel shuffle of factor 2 (tiled_conv.h). No residual.
  void (*output_pairs)(const float* const* in, index_t point_stride, const tiled::TileTarget<float>* tiles, index_t ld,
                       const float* bias, bool relu) = nullptr;
  // 3x3 filters only (null for the others): `lanes` filters from w, R * R values apart.
  void (*filter)(const float* w, float* out, index_t point_stride) = nullptr;
};
template <int M, int R>
VectorTransforms<M, R> vector_transforms_avx2();  // winograd_avx2.cpp
template <int M, int R>
VectorTransforms<M, R> vector_transforms_avx512();  // winograd_avx512.cpp

}  // namespace fastconv::conv::cpu::winograd
