// conv2d by direct convolution (direct.h): weight packing, padded rows and threading, compiled
// for baseline x86-64; the row kernel is direct_avx2.cpp's.
#include "conv/cpu/direct.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "conv/cpu/kernels.h"
#include "conv/cpu/packing.h"
#include "core/errors.h"
#include "core/isa.h"
#include "core/parallel.h"
#include "core/scratch.h"

namespace fastconv::conv::cpu {

namespace direct {

// (Baseline code, not in direct_avx2.cpp: callers on every processor ask it.)
template <class T>
Tile row_tile(index_t Q, index_t Kg) {
  constexpr int W = 32 / sizeof(T);  // lanes of an AVX2 vector
  if (Kg == 1) return Tile{1, 4 * W};
  return Q <= W ? Tile{12, W} : Tile{6, 2 * W};
}

template <class T>
void run_row_job(const RowJob<T>& job) {
#if FASTCONV_X86
  run_row_avx2(job);
#else
  fail<std::logic_error>("direct convolution: the AVX2 row kernel is not in this processor's build");
#endif
}

template <class T>
void run_weight_job(const WeightJob<T>& job) {
#if FASTCONV_X86
  run_weight_avx2(job);
#else
  fail<std::logic_error>("direct convolution: the AVX2 weight kernel is not in this processor's build");
#endif
}

template Tile row_tile<float>(index_t, index_t);
template Tile row_tile<double>(index_t, index_t);
template void run_row_job<float>(const RowJob<float>&);
template void run_row_job<double>(const RowJob<double>&);
template void run_weight_job<float>(const WeightJob<float>&);
template void run_weight_job<double>(const WeightJob<double>&);

}  // namespace direct

namespace {

// Output (n, k, p, q) reads input rows top + p * sh + r * dh and columns left + q + s * dw of
// image n (0 outside the image): the forward convolution, or its input gradient as a
// convolution of grad_y with the rotated, channel-transposed weights.
struct DirectGeometry {
  index_t N, C, H, W, K, groups, P, Q, R, S, top, left, sh, dh, dw;
};

DirectGeometry forward_geometry(const Conv2dShape& s) {
  return {s.N, s.C, s.H, s.W, s.K, s.groups(), s.P, s.Q, s.R, s.S, -s.p.pad_begin[0], -s.p.pad_begin[1],
          s.p.stride[0], s.p.dilation[0], s.p.dilation[1]};
}

// Stride 1 only: grad_x[h] = sum_r grad_y[h + pad - r d] w[r]
//                          = sum_r' grad_y[h + pad - (R-1) d + r' d] w[R-1-r'].
DirectGeometry backward_input_geometry(const Conv2dShape& s) {
  const index_t dh = s.p.dilation[0], dw = s.p.dilation[1];
  return {s.N, s.K, s.P, s.Q, s.C, s.groups(), s.H, s.W, s.R, s.S, s.p.pad_begin[0] - (s.R - 1) * dh,
          s.p.pad_begin[1] - (s.S - 1) * dw, 1, dh, dw};
}

// w (K, C/G, R, S) -> [g][block][c][r][s][mr], output channels past K/G zero.
template <class T>
std::vector<T> pack_weights(const DirectGeometry& g, const T* w, index_t mr) {
  const index_t Kg = g.K / g.groups, Cg = g.C / g.groups, RS = g.R * g.S, blocks = ceil_div(Kg, mr);
  std::vector<T> packed(g.groups * blocks * Cg * RS * mr, T(0));
  for (index_t gi = 0; gi < g.groups; ++gi)
    for (index_t k = 0; k < Kg; ++k)
      for (index_t c = 0; c < Cg; ++c)
        for (index_t rs = 0; rs < RS; ++rs)
          packed[(((gi * blocks + k / mr) * Cg + c) * RS + rs) * mr + k % mr] = w[((gi * Kg + k) * Cg + c) * RS + rs];
  return packed;
}

// band[c][i][j] = image[c, top + p0 * sh + i, left + j] for the `span` input rows that output
// rows from p0 read, 0 outside the image.
template <class T>
void fill_band(const DirectGeometry& g, const T* image, index_t p0, index_t span, index_t ld, T* band) {
  for (index_t c = 0; c < g.C; ++c)
    copy_padded_rows(image + c * g.H * g.W, g.H, g.W, g.top + p0 * g.sh, g.left, span, ld, band + c * span * ld);
}

template <class T>
void direct_conv(const DirectGeometry& g, const T* x, const T* w, const T* bias, bool relu, T* y) {
  const index_t Kg = g.K / g.groups, Cg = g.C / g.groups, RS = g.R * g.S;
  const direct::Tile tile = direct::row_tile<T>(g.Q, Kg);
  const index_t mr = tile.mr, blocks = ceil_div(Kg, mr);
  const std::vector<T> packed = pack_weights(g, w, mr);
  // Wide enough that every vector the kernel loads (up to the last tile's end, shifted by the
  // widest tap) lies inside the row.
  const index_t ld = round_up(g.Q, tile.pixels) + (g.S - 1) * g.dw;
  // Work items are bands of output rows of one image: a band's input rows are copied once
  // (copying them per output row cost ~40% of the time at 16 channels), and there are enough
  // bands to keep every thread busy.
  const index_t band_rows = std::clamp<index_t>(g.N * g.P / (4 * num_threads()), 1, 8);
  const index_t bands = ceil_div(g.P, band_rows);
  const index_t max_span = (band_rows - 1) * g.sh + (g.R - 1) * g.dh + 1;
  parallel_for(0, g.N * bands, 1, [&](index_t lo, index_t hi) {
    T* band = thread_scratch<T>(g.C * max_span * ld, ScratchSlot::columns);
    for (index_t item = lo; item < hi; ++item) {
      const index_t n = item / bands, p0 = item % bands * band_rows, p1 = std::min(g.P, p0 + band_rows);
      const index_t span = (p1 - 1 - p0) * g.sh + (g.R - 1) * g.dh + 1;
      fill_band(g, x + n * g.C * g.H * g.W, p0, span, ld, band);
      // Channel blocks outermost: a block's weights and output planes stay put while its rows
      // go by (depthwise layers have a block per channel; rows outermost wrote 128 planes a
      // row at a time).
      for (index_t gi = 0; gi < g.groups; ++gi)
        for (index_t b = 0; b < blocks; ++b)
          for (index_t p = p0; p < p1; ++p) {
            const index_t k0 = gi * Kg + b * mr;
            const direct::RowJob<T> job{band + (gi * Cg * span + (p - p0) * g.sh) * ld, span * ld, g.dh * ld,
                                        Cg, g.R, g.S, g.dw,
                                        packed.data() + (gi * blocks + b) * Cg * RS * mr,
                                        y + ((n * g.K + k0) * g.P + p) * g.Q, g.P * g.Q, g.Q,
                                        std::min(mr, Kg - b * mr), bias ? bias + k0 : nullptr, relu,
                                        static_cast<int>(mr)};
            direct::run_row_job(job);
          }
    }
  });
}

}  // namespace


const char* direct_unsupported_reason(const Conv2dShape& s) {
  if (active_isa() < Isa::avx2) return "direct convolution needs AVX2 (not on this CPU, or FASTCONV_ISA is lower)";
  if (s.p.stride[1] != 1) return "direct convolution needs stride 1 along the width";
  return nullptr;
}

template <class T>
void conv2d_forward_direct(const Conv2dShape& s, const T* x, const T* w, const T* bias, bool relu, T* y) {
  direct_conv(forward_geometry(s), x, w, bias, relu, y);
}

template <class T>
void conv2d_backward_input_direct(const Conv2dShape& s, const T* grad_y, const T* w, T* grad_x) {
  const std::vector<T> rotated = rotated_transposed_weights(s, w);
  direct_conv(backward_input_geometry(s), grad_y, rotated.data(), static_cast<const T*>(nullptr), false, grad_x);
}

// One output channel's gradient plane (P x Q, or zeros when null) as rows of `pitch` values,
// zero past Q and past the last row up to `size`.
template <class T>
void copy_gradient_rows(const Conv2dShape& s, const T* plane, index_t pitch, index_t size, T* dst) {
  const index_t q_end = plane ? s.Q : 0;
  for (index_t p = 0; p < s.P; ++p) {
    T* row = dst + p * pitch;
    if (plane) std::memcpy(row, plane + p * s.Q, sizeof(T) * s.Q);
    std::fill(row + q_end, row + pitch, T(0));
  }
  std::fill(dst + s.P * pitch, dst + size, T(0));
}

// The weight gradient: work items are (group, block of kWeightBlock output channels, range of
// input channels), each summing over every image, so every weight value has one writer and an
// order of additions fixed by the shape and thread count. Per image, the item copies its
// block's gradient rows zero-extended to whole vectors, and each input plane zero-padded.
template <class T>
void conv2d_backward_weight_direct(const Conv2dShape& s, const T* x, const T* grad_y, T* grad_w, T* grad_bias) {
  constexpr index_t lanes = 32 / sizeof(T);
  const index_t Kg = s.K_per_group(), Cg = s.C_per_group(), RS = s.R * s.S;
  const int mb = direct::weight_block(Kg);
  const index_t MB = mb, blocks = ceil_div(Kg, MB);
  const index_t sh = s.p.stride[0], dh = s.p.dilation[0], dw = s.p.dilation[1], Qr = round_up(s.Q, lanes);
  const index_t Hp = (s.P - 1) * sh + (s.R - 1) * dh + 1, Wp = Qr + (s.S - 1) * dw;
  const DirectGeometry plane_geometry{1, 1, s.H, s.W, 1, 1, 1, 1, 1, 1, -s.p.pad_begin[0], -s.p.pad_begin[1], 1, 1, 1};
  // Stride 1: dy rows take the input plane's pitch Wp, so the kernel runs each image as one
  // flat row (flat_length values, the pitch's padding zero in dy); the plane gets a zeroed tail
  // for the loads of the last vector's taps.
  const bool flat = sh == 1;
  const index_t dy_pitch = flat ? Wp : Qr, flat_length = flat ? round_up(s.P * Wp, lanes) : 0;
  const index_t dy_block = flat ? flat_length : s.P * Qr;  // one output channel of one image
  const index_t plane_size = Hp * Wp + (flat ? lanes + (s.S - 1) * dw : 0);
  // Images per kernel call: as many as keep the item's copies within ~256 KiB (half an L2),
  // so that the accumulators run across images and the lanes are added up once per chunk.
  const index_t per_image = plane_size + MB * dy_block;
  const index_t chunk = std::clamp<index_t>((256 << 10) / (per_image * static_cast<index_t>(sizeof(T))), 1, std::max<index_t>(s.N, 1));
  // An item takes a range of input channels, so that the block's gradient rows, copied once
  // per image chunk, serve all of them; ranges are small enough to give every thread work.
  const index_t items_wanted = 4 * num_threads(), block_items = s.groups() * blocks;
  const index_t c_range = std::clamp<index_t>(block_items * Cg / items_wanted, 1, Cg), ranges = ceil_div(Cg, c_range);
  parallel_for(0, block_items * ranges, 1, [&](index_t lo, index_t hi) {
    T* planes = thread_scratch<T>(chunk * per_image, ScratchSlot::columns);
    T* dys = planes + chunk * plane_size;
    std::vector<double> sums(c_range * MB * RS);
    for (index_t item = lo; item < hi; ++item) {
      const index_t g = item / (blocks * ranges), k0 = item / ranges % blocks * MB;
      const index_t c0 = item % ranges * c_range, c1 = std::min(Cg, c0 + c_range);
      std::fill(sums.begin(), sums.end(), 0.0);
      for (index_t n0 = 0; n0 < s.N; n0 += chunk) {
        const index_t nb = std::min(chunk, s.N - n0);
        for (index_t i = 0; i < nb; ++i)
          for (index_t m = 0; m < MB; ++m) {
            const index_t k = k0 + m;  // past the group's channels: a zero block
            copy_gradient_rows(s, k < Kg ? grad_y + ((n0 + i) * s.K + g * Kg + k) * s.P * s.Q : nullptr, dy_pitch,
                               dy_block, dys + (i * MB + m) * dy_block);
          }
        for (index_t c = c0; c < c1; ++c) {
          // The input planes as fill_band's one-channel bands: Hp rows from the top padding.
          for (index_t i = 0; i < nb; ++i) {
            T* plane = planes + i * plane_size;
            fill_band(plane_geometry, x + ((n0 + i) * s.C + g * Cg + c) * s.H * s.W, 0, Hp, Wp, plane);
            std::fill(plane + Hp * Wp, plane + plane_size, T(0));
          }
          double* c_sums = sums.data() + (c - c0) * MB * RS;
          for (index_t r = 0; r < s.R; ++r)
            direct::run_weight_job(direct::WeightJob<T>{dys, MB * dy_block, dy_block, dy_pitch, planes + r * dh * Wp,
                                                         plane_size, sh * Wp, nb, s.P, Qr, dw, 0, s.S, flat_length,
                                                         c_sums + r * s.S, RS, mb});
        }
      }
      for (index_t c = c0; c < c1; ++c)
        for (index_t m = 0; m < MB && k0 + m < Kg; ++m)
          for (index_t rs = 0; rs < RS; ++rs)
            grad_w[((g * Kg + k0 + m) * Cg + c) * RS + rs] = static_cast<T>(sums[((c - c0) * MB + m) * RS + rs]);
    }
  });
  if (grad_bias) conv2d_bias_grad(s, grad_y, grad_bias);
}

#define FASTCONV_INSTANTIATE(T)                                                                          \
  template void conv2d_forward_direct<T>(const Conv2dShape&, const T*, const T*, const T*, bool, T*); \
  template void conv2d_backward_input_direct<T>(const Conv2dShape&, const T*, const T*, T*);          \
  template void conv2d_backward_weight_direct<T>(const Conv2dShape&, const T*, const T*, T*, T*);
FASTCONV_INSTANTIATE(float)
FASTCONV_INSTANTIATE(double)
#undef FASTCONV_INSTANTIATE

}  // namespace fastconv::conv::cpu
