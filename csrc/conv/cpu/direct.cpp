// conv2d by direct convolution (direct.h): weight packing, padded rows and threading, compiled
// for baseline x86-64; the row kernels are direct_avx2.cpp's and direct_avx512.cpp's.
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
Tile row_tile(index_t P, index_t Q, index_t Kg) {
  constexpr int W = 32 / sizeof(T);  // lanes of an AVX2 vector
  if (Kg == 1) return Tile{1, 4 * W, W};
  const Tile avx2 = Q <= W ? Tile{12, W, W} : Tile{6, 2 * W, W};
  if (active_isa() < Isa::avx512) return avx2;
  // The tile computing the fewest values (padded channels x padded pixels); AVX-512's on a tie.
  const auto work = [&](const Tile& t) { return round_up(Kg, t.mr) * round_up(Q, t.pixels); };
  constexpr int W512 = 2 * W;
  Tile best = Tile{16, W512, W512};
  for (const Tile& t : {Tile{8, 2 * W512, W512}, Tile{12, 2 * W512, W512}})
    if (work(t) < work(best)) best = t;
  // Rows of more than half a vector, in pairs where the channels fill blocks of 8 as well as of
  // 16: each broadcast weight then feeds two FMAs and a job does twice the work. Measured in
  // one process against 16 x 1: resnet20's 3x3/2 forward (32 channels, 16 pixels) 2% faster,
  // 32-channel 16 x 16 maps 6%; rows of 8 pixels were 5-15% slower in pairs.
  const Tile pairs{8, W512, W512, 2};
  if (best.mr == 16 && 2 * Q > W512 && P % 2 == 0 && work(pairs) <= work(best)) best = pairs;
  return work(best) <= work(avx2) ? best : avx2;
}

template <class T>
void run_row_job(const RowJob<T>& job) {
#if FASTCONV_X86
  if (job.lanes == 64 / static_cast<int>(sizeof(T))) return run_row_avx512(job);
  run_row_avx2(job);
#else
  fail<std::logic_error>("direct convolution: the AVX2 row kernel is not in this processor's build");
#endif
}

template <class T>
int weight_lanes() {
  return (active_isa() >= Isa::avx512 ? 64 : 32) / static_cast<int>(sizeof(T));
}

template <class T>
void run_weight_job(const WeightJob<T>& job) {
#if FASTCONV_X86
  if (job.lanes == 64 / static_cast<int>(sizeof(T))) return run_weight_avx512(job);
  run_weight_avx2(job);
#else
  fail<std::logic_error>("direct convolution: the AVX2 weight kernel is not in this processor's build");
#endif
}

namespace {

// The phases a row (or column) of taps reads at a stride: tap s reads phase plane plane[s],
// shifted by shift[s]; plane i holds input rows (columns) j * stride + offset[i]. Only the
// phases some tap reads get a plane: at most as many as taps, whatever the stride.
struct StridePhases {
  std::vector<index_t> plane, shift, offset;
  index_t max_shift = 0;
  index_t count() const { return static_cast<index_t>(offset.size()); }
};

StridePhases stride_phases(index_t taps, index_t dilation, index_t stride) {
  StridePhases out;
  for (index_t s = 0; s < taps; ++s) {
    const index_t b = s * dilation % stride;
    const auto found = std::find(out.offset.begin(), out.offset.end(), b);
    out.plane.push_back(found - out.offset.begin());
    if (found == out.offset.end()) out.offset.push_back(b);
    out.shift.push_back(s * dilation / stride);
    out.max_shift = std::max(out.max_shift, out.shift.back());
  }
  return out;
}

// Where tap (r, s) starts in a channel's phase planes, [row phase][column phase][plane_rows][ld].
std::vector<index_t> taps_in_planes(const StridePhases& rows, const StridePhases& cols, index_t plane_rows,
                                    index_t ld) {
  std::vector<index_t> taps;
  for (std::size_t r = 0; r < rows.plane.size(); ++r)
    for (std::size_t s = 0; s < cols.plane.size(); ++s)
      taps.push_back(((rows.plane[r] * cols.count() + cols.plane[s]) * plane_rows + rows.shift[r]) * ld +
                     cols.shift[s]);
  return taps;
}

// A plane per tap column (direct.h), read unshifted: the phases of a stride of S.
StridePhases tap_planes(index_t S) { return stride_phases(S, 1, S); }

}  // namespace

template Tile row_tile<float>(index_t, index_t, index_t);
template Tile row_tile<double>(index_t, index_t, index_t);
template void run_row_job<float>(const RowJob<float>&);
template void run_row_job<double>(const RowJob<double>&);
template int weight_lanes<float>();
template int weight_lanes<double>();
template void run_weight_job<float>(const WeightJob<float>&);
template void run_weight_job<double>(const WeightJob<double>&);

}  // namespace direct

namespace {

// Output (n, k, p, q) reads input rows top + p * sh + r * dh and columns left + q * sw + s * dw
// of image n (0 outside the image): the forward convolution, or its input gradient as a
// convolution of grad_y with the rotated, channel-transposed weights.
struct DirectGeometry {
  index_t N, C, H, W, K, groups, P, Q, R, S, top, left, sh, dh, dw, sw;
};

DirectGeometry forward_geometry(const Conv2dShape& s) {
  return {s.N, s.C, s.H, s.W, s.K, s.groups(), s.P, s.Q, s.R, s.S, -s.p.pad_begin[0], -s.p.pad_begin[1],
          s.p.stride[0], s.p.dilation[0], s.p.dilation[1], s.p.stride[1]};
}

// Stride 1 only: grad_x[h] = sum_r grad_y[h + pad - r d] w[r]
//                          = sum_r' grad_y[h + pad - (R-1) d + r' d] w[R-1-r'].
DirectGeometry backward_input_geometry(const Conv2dShape& s) {
  const index_t dh = s.p.dilation[0], dw = s.p.dilation[1];
  return {s.N, s.K, s.P, s.Q, s.C, s.groups(), s.H, s.W, s.R, s.S, s.p.pad_begin[0] - (s.R - 1) * dh,
          s.p.pad_begin[1] - (s.S - 1) * dw, 1, dh, dw, 1};
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

// band[c][i][h][j] = image[c, top + p0 * sh + h, left + j * sw + phases.offset[i]] for the
// `span` input rows that output rows from p0 read, 0 outside the image; each phase plane
// phase_rows rows apart (taps_in_planes' layout).
// fill_band for two column phases at offsets 0 and 1 of stride 2 (every 3x3/2 and 7x7/2
// layer): each input row is split into its even and odd values, the two phase rows, in one pass
// (AVX-512: masked loads read the padding as zeros), else padded once into `row`, then split.
// Copying each phase row on its own had cost about a third of resnet20's 3x3/2 forward, whose
// rows are 16 values.
template <class T>
bool fill_band_pairs(const DirectGeometry& g, const direct::StridePhases& phases, const T* image, index_t p0,
                     index_t span, index_t ld, index_t phase_rows, T* band, T* row) {
  if (g.sw != 2 || phases.count() != 2 || phases.offset[0] != 0 || phases.offset[1] != 1) return false;
  const Range cols = valid_range(g.left, 1, g.W, 2 * ld);  // row[u] = image column left + u
  const index_t top = g.top + p0 * g.sh;
#if FASTCONV_X86
  if constexpr (std::is_same_v<T, float>)
    if (active_isa() >= Isa::avx512) {
      for (index_t c = 0; c < g.C; ++c) {
        T* even = band + 2 * c * phase_rows * ld;
        split_padded_rows_even_odd_avx512(image + c * g.H * g.W, g.H, g.W, top, g.left, cols, span, ld, ld, even,
                                          even + phase_rows * ld);
      }
      return true;
    }
#endif
  for (index_t c = 0; c < g.C; ++c) {
    const T* plane = image + c * g.H * g.W;
    T* even = band + 2 * c * phase_rows * ld;
    for (index_t i = 0; i < span; ++i, even += ld) {
      const index_t h = top + i;
      const bool inside = h >= 0 && h < g.H;
      copy_row_padded(row, inside ? plane + h * g.W + g.left : plane, inside ? cols : Range{0, 0}, 2 * ld, 1);
      split_even_odd(row, ld, even, even + phase_rows * ld);
    }
  }
  return true;
}

// Whether the band takes a plane per tap column (direct.h): float tiles at stride 2 and
// dilation 1 whose rows are whole vectors (Q a multiple of the tile's lanes, the shapes
// measured; the copy and the kernel would take any width), for kernels of at most 4 columns
// (the band grows with S). Measured in one process against the
// two phases, resnet20's 3x3/2 forward: 7-14% faster on one thread and on two with AVX-512
// (the row kernel 7%, the band's split 26%), 9-11% with AVX2's tiles.
template <class T>
bool tap_planes_fit(const DirectGeometry& g, const direct::Tile& tile) {
  return FASTCONV_X86 && std::is_same_v<T, float> && g.sw == 2 && g.dw == 1 && g.S <= 4 && g.Q % tile.lanes == 0;
}

// fill_band for tap planes, one call per channel (packing.h's split_padded_rows_taps_*).
template <class T>
void fill_band_taps(const DirectGeometry& g, const T* image, index_t p0, index_t span, index_t ld, index_t phase_rows,
                    int lanes, T* band) {
#if FASTCONV_X86
  if constexpr (std::is_same_v<T, float>) {
    const Range cols = valid_range(g.left, 1, g.W, 2 * ld + g.S);  // row[u] = image column left + u
    const auto split = lanes == 16 ? split_padded_rows_taps_avx512 : split_padded_rows_taps_avx2;
    for (index_t c = 0; c < g.C; ++c)
      split(image + c * g.H * g.W, g.H, g.W, g.top + p0 * g.sh, g.left, cols, span, ld, ld, g.S, phase_rows * ld,
            band + c * g.S * phase_rows * ld);
    return;
  }
#endif
  fail<std::logic_error>("direct convolution: tap planes are for float tiles on x86 only");
}

template <class T>
void fill_band(const DirectGeometry& g, const direct::StridePhases& phases, const T* image, index_t p0, index_t span,
               index_t ld, index_t phase_rows, T* band, T* row, bool per_tap, int lanes) {
  if (per_tap) return fill_band_taps(g, image, p0, span, ld, phase_rows, lanes, band);
  if (fill_band_pairs(g, phases, image, p0, span, ld, phase_rows, band, row)) return;
  const index_t planes = phases.count();
  for (index_t c = 0; c < g.C; ++c)
    for (index_t i = 0; i < planes; ++i)
      copy_padded_rows(image + c * g.H * g.W, g.H, g.W, g.top + p0 * g.sh, g.left + phases.offset[i], span, ld,
                       band + (c * planes + i) * phase_rows * ld, 1, g.sw);
}

template <class T>
void direct_conv(const DirectGeometry& g, const T* x, const T* w, const T* bias, bool relu, T* y) {
  const index_t Kg = g.K / g.groups, Cg = g.C / g.groups, RS = g.R * g.S;
  const direct::Tile tile = direct::row_tile<T>(g.P, g.Q, Kg);
  const index_t mr = tile.mr, blocks = ceil_div(Kg, mr);
  const std::vector<T> packed = pack_weights(g, w, mr);
  const bool per_tap = tap_planes_fit<T>(g, tile);
  const direct::StridePhases phases = per_tap ? direct::tap_planes(g.S) : direct::stride_phases(g.S, g.dw, g.sw);
  // Wide enough that every vector the kernel loads (up to the last tile's end, shifted by the
  // widest tap) lies inside the row.
  const index_t ld = round_up(g.Q, tile.pixels) + phases.max_shift;
  // Work items are bands of output rows of one image: a band's input rows are copied once
  // (copying them per output row cost ~40% of the time at 16 channels), and there are enough
  // bands to keep every thread busy.
  // (A whole number of the tile's rows, as P is.) At most 16 rows where their copy takes at most
  // half a MiB, else 8: bands of at most 8 had made resnet20's 3x3/2 forward 3% slower (twice
  // the bands, each copying the input row it shares with the next), its 32-channel 3x3 4% (one
  // process, builds alternated); the 7x7/2 stem ran the same.
  const auto span_of = [&](index_t rows) { return (rows - 1) * g.sh + (g.R - 1) * g.dh + 1; };  // input rows read
  const index_t copy_16_rows = g.C * phases.count() * span_of(16) * ld * static_cast<index_t>(sizeof(T));
  const index_t most_rows = copy_16_rows <= (512 << 10) ? 16 : 8;
  const index_t band_rows =
      round_up(std::clamp<index_t>(g.N * g.P / (4 * num_threads()), 1, most_rows), tile.rows);
  const index_t bands = ceil_div(g.P, band_rows);
  const index_t max_span = span_of(band_rows);
  // Where tap (r, s) starts in a channel's copy, [r][s] (the weights' order).
  const std::vector<index_t> taps = direct::taps_in_planes(direct::stride_phases(g.R, g.dh, 1), phases, max_span, ld);
  const index_t channel_size = phases.count() * max_span * ld;
  // Chunks of bands taken in turn; the next band's input is prefetched within a chunk.
  parallel_for_dynamic(0, g.N * bands, [&](index_t lo, index_t hi) {
    T* band = thread_scratch<T>(g.C * channel_size + 2 * ld, ScratchSlot::columns);
    T* row = band + g.C * channel_size;  // fill_band_pairs' padded input row
    NextRowsPrefetch next_input;
    for (index_t item = lo; item < hi; ++item) {
      const index_t n = item / bands, p0 = item % bands * band_rows, p1 = std::min(g.P, p0 + band_rows);
      const index_t span = span_of(p1 - p0);
      fill_band(g, phases, x + n * g.C * g.H * g.W, p0, span, ld, max_span, band, row, per_tap, tile.lanes);
      if (item + 1 < hi) {
        const index_t next_top = g.top + (item + 1) % bands * band_rows * g.sh;
        next_input.set(x + (item + 1) / bands * g.C * g.H * g.W, g.C, g.H, g.W, next_top, next_top + max_span);
      } else {
        next_input.clear();
      }
      const index_t jobs = g.groups * blocks;
      index_t job_index = 0;
      // Channel blocks outermost: a block's weights and output planes stay put while its rows
      // go by (depthwise layers have a block per channel; rows outermost wrote 128 planes a
      // row at a time). One job per block runs all of the band's rows: a job per tile of rows
      // had cost resnet20's 3x3/2 forward 5% with its input just read from memory (1% warm),
      // and the direct algorithm's depthwise layer 18% (one process, builds alternated).
      for (index_t gi = 0; gi < g.groups; ++gi)
        for (index_t b = 0; b < blocks; ++b) {
          const index_t k0 = gi * Kg + b * mr;
          const direct::RowJob<T> job{band + gi * Cg * channel_size, channel_size, Cg, taps.data(), RS,
                                      packed.data() + (gi * blocks + b) * Cg * RS * mr,
                                      y + ((n * g.K + k0) * g.P + p0) * g.Q, g.P * g.Q, g.Q,
                                      std::min(mr, Kg - b * mr), bias ? bias + k0 : nullptr, relu,
                                      static_cast<int>(mr), tile.lanes,
                                      tile.rows, g.sh * ld, (p1 - p0) / tile.rows};
          direct::run_row_job(job);
          next_input.share(job_index++, jobs);
        }
    }
  });
}

}  // namespace


const char* direct_unsupported_reason(const Conv2dShape& s) {
  if (active_isa() < Isa::avx2) return "direct convolution needs AVX2 (not on this CPU, or FASTCONV_ISA is lower)";
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

// One input plane split by stride phase (conv2d_backward_weight_direct): phase (a, b) holds
// padded pixel (i * sh + a, j * sw + b) at [a][b][i][j], in planes of Hp x Wp, then zeros up
// to `size`.
template <class T>
void fill_phase_planes(const Conv2dShape& s, const direct::StridePhases& rows, const direct::StridePhases& cols,
                       const T* plane, index_t Hp, index_t Wp, index_t size, T* dst) {
  for (index_t a = 0; a < rows.count(); ++a)
    for (index_t b = 0; b < cols.count(); ++b)
      copy_padded_rows(plane, s.H, s.W, rows.offset[a] - s.p.pad_begin[0], cols.offset[b] - s.p.pad_begin[1], Hp, Wp,
                       dst + (a * cols.count() + b) * Hp * Wp, s.p.stride[0], s.p.stride[1]);
  const index_t filled = rows.count() * cols.count() * Hp * Wp;
  std::fill(dst + filled, dst + size, T(0));
}

// The weight gradient: by tap tiles over vectors of input channels where they fit (kernels.h's
// conv2d_backward_weight_taps: 16 or more input channels, no groups); else as follows. Work
// items are (group, range of input channels, range of output-channel
// blocks: all of them unless the channels are too few to share out), each summing over every
// image, so every weight value has one writer and an order of additions fixed by the shape and
// thread count. The gradient rows are copied once, in the planes' pitch, before the items run
// (extra memory: about grad_y's size); an item copies each of its input planes once per image,
// split by phase. (Items of one block of output channels had copied each input plane once per
// block: at stride 2, 3/4 of the time.)
template <class T>
void conv2d_backward_weight_direct(const Conv2dShape& s, const T* x, const T* grad_y, T* grad_w, T* grad_bias) {
  if (conv2d_backward_weight_taps(s, false, x, grad_y, grad_w)) {
    if (grad_bias) conv2d_bias_grad(s, grad_y, grad_bias);
    return;
  }
  constexpr index_t row_lanes = 32 / sizeof(T);  // rows padded to AVX2's vectors on every ISA
  const int lanes = direct::weight_lanes<T>();
  const index_t G = s.groups(), Kg = s.K_per_group(), Cg = s.C_per_group(), RS = s.R * s.S;
  const int mb = direct::weight_block(Kg);
  const index_t MB = mb, blocks = ceil_div(Kg, MB), Kr = blocks * MB;  // Kr: whole blocks
  const index_t dh = s.p.dilation[0], dw = s.p.dilation[1], Qr = round_up(s.Q, row_lanes);
  // The input planes split by stride phase along both axes, as implicit GEMM's: tap (r, s) of
  // output pixel (p, q) is pixel (p + r', q + s') of one phase plane, so dy rows take the
  // planes' pitch Wp and the kernel runs each image as one flat row (flat_length values, the
  // pitch's padding zero in dy). Each input plane gets a zeroed tail for the loads of the last
  // vector's taps.
  const direct::StridePhases row_phases = direct::stride_phases(s.R, dh, s.p.stride[0]);
  const direct::StridePhases col_phases = direct::stride_phases(s.S, dw, s.p.stride[1]);
  const index_t Hp = s.P + row_phases.max_shift, Wp = Qr + col_phases.max_shift;
  const std::vector<index_t> taps = direct::taps_in_planes(row_phases, col_phases, Hp, Wp);
  const index_t channel_size = row_phases.count() * col_phases.count() * Hp * Wp;
  const index_t flat_length = round_up(s.P * Wp, lanes);  // one output channel of one image
  const index_t plane_size = channel_size + lanes + col_phases.max_shift;
  // dys[n][g][k] for k < Kr (zeros past K/G), the threads sharing out the rows.
  T* dys = thread_scratch<T>(s.N * G * Kr * flat_length, ScratchSlot::partial_sums);
  parallel_for_dynamic(0, s.N * G * Kr, [&](index_t lo, index_t hi) {
    for (index_t i = lo; i < hi; ++i) {
      const index_t n = i / (G * Kr), g = i / Kr % G, k = i % Kr;
      copy_gradient_rows(s, k < Kg ? grad_y + (n * s.K + g * Kg + k) * s.P * s.Q : nullptr, Wp, flat_length,
                         dys + i * flat_length);
    }
  });
  // Images per chunk: as many as keep their planes and gradient rows within ~256 KiB (half an
  // L2), so that the accumulators run across images and the lanes are added up once per chunk.
  const index_t per_image = plane_size + Kr * flat_length;
  const index_t chunk = std::clamp<index_t>((256 << 10) / (per_image * static_cast<index_t>(sizeof(T))), 1,
                                            std::max<index_t>(s.N, 1));
  // Ranges of input channels small enough to give every thread work; where there are too few
  // channels for that (the stem's 3), ranges of output-channel blocks too.
  const index_t items_wanted = 4 * num_threads();
  const index_t c_range = std::clamp<index_t>(G * Cg / items_wanted, 1, Cg), c_ranges = ceil_div(Cg, c_range);
  const index_t b_range = ceil_div(blocks, std::clamp<index_t>(ceil_div(items_wanted, G * c_ranges), 1, blocks));
  const index_t b_ranges = ceil_div(blocks, b_range), k_range = b_range * MB;
  parallel_for_dynamic(0, G * c_ranges * b_ranges, [&](index_t lo, index_t hi) {
    T* planes = thread_scratch<T>(chunk * plane_size, ScratchSlot::columns);
    std::vector<double> sums(c_range * k_range * RS);
    for (index_t item = lo; item < hi; ++item) {
      const index_t g = item / (c_ranges * b_ranges), c0 = item / b_ranges % c_ranges * c_range;
      const index_t c1 = std::min(Cg, c0 + c_range), k0 = item % b_ranges * k_range, k1 = std::min(Kr, k0 + k_range);
      std::fill(sums.begin(), sums.end(), 0.0);
      for (index_t n0 = 0; n0 < s.N; n0 += chunk) {
        const index_t nb = std::min(chunk, s.N - n0);
        for (index_t c = c0; c < c1; ++c) {
          for (index_t i = 0; i < nb; ++i)
            fill_phase_planes(s, row_phases, col_phases, x + ((n0 + i) * s.C + g * Cg + c) * s.H * s.W, Hp, Wp,
                              plane_size, planes + i * plane_size);
          for (index_t k = k0; k < k1; k += MB)
            direct::run_weight_job(direct::WeightJob<T>{
                dys + ((n0 * G + g) * Kr + k) * flat_length, G * Kr * flat_length, flat_length, planes, plane_size,
                nb, flat_length, taps.data(), RS, sums.data() + ((c - c0) * k_range + k - k0) * RS, RS, mb, lanes});
        }
      }
      for (index_t c = c0; c < c1; ++c)
        for (index_t k = k0; k < std::min(k1, Kg); ++k)
          for (index_t rs = 0; rs < RS; ++rs)
            grad_w[((g * Kg + k) * Cg + c) * RS + rs] = static_cast<T>(sums[((c - c0) * k_range + k - k0) * RS + rs]);
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
