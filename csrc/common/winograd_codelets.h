// Winograd F(2x2, 3x3)'s and F(4x4, 3x3)'s 1-D codelets (Lavin & Gray, "Fast Algorithms for
// Convolutional Neural Networks", CVPR 2016: F(2x2)'s matrices are their section 4.1's, F(4x4)'s
// from the interpolation points 0, 1, -1, 2, -2 and infinity, section 4.2, the matrices of
// Lavin's wincnn), shared by the CPU kernel (conv/cpu/winograd.h, which applies them
// to `lanes` tiles at once; on AVX2 and AVX-512 its float transforms are winograd_rows.h's) and the CUDA
// one (conv/cuda/winograd_body.h, one tile per thread). Each codelet reads in[i * is + l] and
// writes out[j * os + l] for l < lanes; the adjoints are the weight gradient's (conv/cpu/winograd.h).
#pragma once
#include "common/host_device.h"
#include "common/index.h"

namespace fastconv::winograd {

struct F2x3 {
  static constexpr int m = 2, r = 3, alpha = 4;

  // B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
  template <class T>
  FASTCONV_HD static void input(const T* __restrict in, index_t is, T* __restrict out, index_t os, index_t lanes) {
    for (index_t l = 0; l < lanes; ++l) {
      const T d0 = in[l], d1 = in[is + l], d2 = in[2 * is + l], d3 = in[3 * is + l];
      out[l] = d0 - d2;
      out[os + l] = d1 + d2;
      out[2 * os + l] = d2 - d1;
      out[3 * os + l] = d1 - d3;
    }
  }
  // G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]
  template <class T>
  FASTCONV_HD static void filter(const T* __restrict in, index_t is, T* __restrict out, index_t os, index_t lanes) {
    for (index_t l = 0; l < lanes; ++l) {
      const T g0 = in[l], g1 = in[is + l], g2 = in[2 * is + l];
      out[l] = g0;
      out[os + l] = T(0.5) * (g0 + g1 + g2);
      out[2 * os + l] = T(0.5) * (g0 - g1 + g2);
      out[3 * os + l] = g2;
    }
  }
  // A^T = [1 1 1 0; 0 1 -1 -1]
  template <class T>
  FASTCONV_HD static void output(const T* __restrict in, index_t is, T* __restrict out, index_t os, index_t lanes) {
    for (index_t l = 0; l < lanes; ++l) {
      const T m0 = in[l], m1 = in[is + l], m2 = in[2 * is + l], m3 = in[3 * is + l];
      out[l] = m0 + m1 + m2;
      out[os + l] = m1 - m2 - m3;
    }
  }
  // The weight gradient's codelets, the transposes of output and filter (conv/cpu/winograd.h).
  // A: 2 -> 4
  template <class T>
  FASTCONV_HD static void output_adjoint(const T* __restrict in, index_t is, T* __restrict out, index_t os,
                                         index_t lanes) {
    for (index_t l = 0; l < lanes; ++l) {
      const T g0 = in[l], g1 = in[is + l];
      out[l] = g0;
      out[os + l] = g0 + g1;
      out[2 * os + l] = g0 - g1;
      out[3 * os + l] = -g1;
    }
  }
  // G^T: 4 -> 3
  template <class T>
  FASTCONV_HD static void filter_adjoint(const T* __restrict in, index_t is, T* __restrict out, index_t os,
                                         index_t lanes) {
    for (index_t l = 0; l < lanes; ++l) {
      const T u0 = in[l], u1 = in[is + l], u2 = in[2 * is + l], u3 = in[3 * is + l];
      out[l] = u0 + T(0.5) * (u1 + u2);
      out[os + l] = T(0.5) * (u1 - u2);
      out[2 * os + l] = T(0.5) * (u1 + u2) + u3;
    }
  }
};

struct F4x3 {
  static constexpr int m = 4, r = 3, alpha = 6;

  // B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
  template <class T>
  FASTCONV_HD static void input(const T* __restrict in, index_t is, T* __restrict out, index_t os, index_t lanes) {
    for (index_t l = 0; l < lanes; ++l) {
      const T d0 = in[l], d1 = in[is + l], d2 = in[2 * is + l], d3 = in[3 * is + l], d4 = in[4 * is + l],
              d5 = in[5 * is + l];
      const T a = d4 - T(4) * d2, b = d3 - T(4) * d1, c = d4 - d2, e = T(2) * (d3 - d1);
      out[l] = T(4) * d0 - T(5) * d2 + d4;
      out[os + l] = a + b;
      out[2 * os + l] = a - b;
      out[3 * os + l] = c + e;
      out[4 * os + l] = c - e;
      out[5 * os + l] = T(4) * d1 - T(5) * d3 + d5;
    }
  }
  // G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
  template <class T>
  FASTCONV_HD static void filter(const T* __restrict in, index_t is, T* __restrict out, index_t os, index_t lanes) {
    for (index_t l = 0; l < lanes; ++l) {
      const T g0 = in[l], g1 = in[is + l], g2 = in[2 * is + l];
      const T even = g0 + g2, quarter_g0_plus_g2 = g0 / T(4) + g2;
      out[l] = g0 / T(4);
      out[os + l] = -(even + g1) / T(6);
      out[2 * os + l] = -(even - g1) / T(6);
      out[3 * os + l] = (quarter_g0_plus_g2 + g1 / T(2)) / T(6);
      out[4 * os + l] = (quarter_g0_plus_g2 - g1 / T(2)) / T(6);
      out[5 * os + l] = g2;
    }
  }
  // A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
  template <class T>
  FASTCONV_HD static void output(const T* __restrict in, index_t is, T* __restrict out, index_t os, index_t lanes) {
    for (index_t l = 0; l < lanes; ++l) {
      const T m0 = in[l], m1 = in[is + l], m2 = in[2 * is + l], m3 = in[3 * is + l], m4 = in[4 * is + l],
              m5 = in[5 * is + l];
      const T s12 = m1 + m2, d12 = m1 - m2, s34 = m3 + m4, d34 = m3 - m4;
      out[l] = m0 + s12 + s34;
      out[os + l] = d12 + T(2) * d34;
      out[2 * os + l] = s12 + T(4) * s34;
      out[3 * os + l] = d12 + T(8) * d34 + m5;
    }
  }
  // A: 4 -> 6
  template <class T>
  FASTCONV_HD static void output_adjoint(const T* __restrict in, index_t is, T* __restrict out, index_t os,
                                         index_t lanes) {
    for (index_t l = 0; l < lanes; ++l) {
      const T g0 = in[l], g1 = in[is + l], g2 = in[2 * is + l], g3 = in[3 * is + l];
      const T even = g0 + g2, odd = g1 + g3, even4 = g0 + T(4) * g2, odd4 = T(2) * g1 + T(8) * g3;
      out[l] = g0;
      out[os + l] = even + odd;
      out[2 * os + l] = even - odd;
      out[3 * os + l] = even4 + odd4;
      out[4 * os + l] = even4 - odd4;
      out[5 * os + l] = g3;
    }
  }
  // G^T: 6 -> 3
  template <class T>
  FASTCONV_HD static void filter_adjoint(const T* __restrict in, index_t is, T* __restrict out, index_t os,
                                         index_t lanes) {
    for (index_t l = 0; l < lanes; ++l) {
      const T u0 = in[l], u1 = in[is + l], u2 = in[2 * is + l], u3 = in[3 * is + l], u4 = in[4 * is + l],
              u5 = in[5 * is + l];
      const T s12 = u1 + u2, d12 = u2 - u1, s34 = u3 + u4, d34 = u3 - u4;
      out[l] = u0 / T(4) - s12 / T(6) + s34 / T(24);
      out[os + l] = d12 / T(6) + d34 / T(12);
      out[2 * os + l] = (s34 - s12) / T(6) + u5;
    }
  }
};

}  // namespace fastconv::winograd
