// The pointwise step of FFT convolution on CUDA (fastconv/cuda/conv.py runs the real FFTs
// through cuFFT around it). With every plane zero-padded to one F_h x F_w grid, large enough that
// no circular product wraps, and its real DFT kept on B = F_h (F_w / 2 + 1) bins (the others are
// their conjugates), each direction of the convolution is, per bin f, a complex product summed
// over one index (the correlation theorem: DFT(x corr w) = X conj(W); DFT(x conv w) = X W):
//   forward          Y[n, k]  = sum_{c in group(k)} X[n, c] conj(W[k, c])      (y = x corr w)
//   input gradient   DX[n, c] = sum_{k in group(c)} DY[n, k] W[k, c]           (dx = dy conv w:
//                    the adjoint of a correlation with w is a convolution with it)
//   weight gradient  DW[k, c] = sum_n X[n, c] conj(DY[n, k])                   (dw = x corr dy)
// One thread per output value (its planes' bin f in the fastest index, so that a warp reads
// neighbouring bins of each plane). Spectra are complex arrays as cuFFT and numpy lay them out:
// (re, im) interleaved, C order over (planes, bins). The sum runs in T (float32's in float32),
// in index order. The bodies run over the whole grid on the CPU in tests/cuda/test_conv_fft_host.py.
#pragma once
#include "common/host_device.h"
#include "common/index.h"
#include "common/index_div.h"

namespace fastconv::conv::spectral {

// N images, C input and K output channels in `groups` groups, `bins` complex values per plane.
struct Geometry {
  index_t N, C, K, groups, bins;
  FASTCONV_HD index_t C_per_group() const { return index_div(C, groups); }
  FASTCONV_HD index_t K_per_group() const { return index_div(K, groups); }
};

// out = sum_{t < terms} a[t * a_step] * b[t * b_step] (conj(b) when asked), steps counted in
// complex values; out is one complex value.
template <class T>
FASTCONV_HD inline void complex_dot(const T* a, index_t a_step, const T* b, index_t b_step, index_t terms,
                                    bool conjugate_b, T* out) {
  T re = T(0), im = T(0);
  for (index_t t = 0; t < terms; ++t) {
    const T ar = a[2 * t * a_step], ai = a[2 * t * a_step + 1];
    const T br = b[2 * t * b_step], bi = conjugate_b ? -b[2 * t * b_step + 1] : b[2 * t * b_step + 1];
    re += ar * br - ai * bi;
    im += ar * bi + ai * br;
  }
  out[0] = re;
  out[1] = im;
}

// Y (N, K, bins) from X (N, C, bins) and W (K, C/groups, bins); i indexes Y's complex values.
template <class T>
FASTCONV_HD inline void forward_element(const Geometry& g, const T* x, const T* w, T* y, index_t i) {
  const index_t f = index_mod(i, g.bins), plane = index_div(i, g.bins);
  const index_t k = index_mod(plane, g.K), n = index_div(plane, g.K);
  const index_t first_channel = index_div(k, g.K_per_group()) * g.C_per_group();
  complex_dot(x + 2 * ((n * g.C + first_channel) * g.bins + f), g.bins, w + 2 * (k * g.C_per_group() * g.bins + f),
              g.bins, g.C_per_group(), true, y + 2 * i);
}

// DX (N, C, bins) from DY (N, K, bins) and W (K, C/groups, bins); i indexes DX's values.
template <class T>
FASTCONV_HD inline void input_gradient_element(const Geometry& g, const T* grad_y, const T* w, T* grad_x,
                                               index_t i) {
  const index_t f = index_mod(i, g.bins), plane = index_div(i, g.bins);
  const index_t c = index_mod(plane, g.C), n = index_div(plane, g.C);
  const index_t group = index_div(c, g.C_per_group()), c_in_group = index_mod(c, g.C_per_group());
  const index_t first_filter = group * g.K_per_group();
  complex_dot(grad_y + 2 * ((n * g.K + first_filter) * g.bins + f), g.bins,
              w + 2 * ((first_filter * g.C_per_group() + c_in_group) * g.bins + f), g.C_per_group() * g.bins,
              g.K_per_group(), false, grad_x + 2 * i);
}

// DW (K, C/groups, bins) from X (N, C, bins) and DY (N, K, bins), summed over the N images;
// i indexes DW's values.
template <class T>
FASTCONV_HD inline void weight_gradient_element(const Geometry& g, const T* x, const T* grad_y, T* grad_w,
                                                index_t i) {
  const index_t f = index_mod(i, g.bins), plane = index_div(i, g.bins);
  const index_t c_in_group = index_mod(plane, g.C_per_group()), k = index_div(plane, g.C_per_group());
  const index_t c = index_div(k, g.K_per_group()) * g.C_per_group() + c_in_group;
  complex_dot(x + 2 * (c * g.bins + f), g.C * g.bins, grad_y + 2 * (k * g.bins + f), g.K * g.bins, g.N, true,
              grad_w + 2 * i);
}

}  // namespace fastconv::conv::spectral
