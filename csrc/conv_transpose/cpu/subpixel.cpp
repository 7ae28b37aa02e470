// conv_transpose2d by sub-pixel decomposition: a transposed convolution of stride s splits into
// s_h x s_w output phases, each an ordinary stride-1 convolution of the input with the kernel
// taps of that phase, ceil(R / s_h) x ceil(S / s_w) of them, written to every s-th output pixel
// (Shi et al. 2016, "Is the deconvolution layer the same as a convolutional layer?", and the
// sub-pixel view of Odena et al.'s checkerboard analysis). Along one axis, output o = a + s*i
// (phase a) receives input i + offset_a - m through tap first_a + s*m, where
// first_a = (a + padding) mod s and offset_a = (a + padding - first_a) / s: no product with an
// inserted zero, no scatter (col2im), and each output written by one thread.
//
// Each phase is one GEMM per group, run as implicit GEMM runs a convolution
// (conv/cpu/implicit_gemm.cpp): a band of input rows is copied once into zero-padded planes
// shared by every phase, and the micro-kernel reads each tap's row of a tile straight out of
// them at that tap's offset (the gathered kernel), over "wide" pixels i * Wp + j whose columns
// j past the phase's width are computed and dropped; or, with 16 output channels per group and
// more, from one copy of the band per column shift, whose rows hold no such columns (Planes).
// The phases' blocks of a band (all of them together in L2) are then interleaved into y, each
// output row written once, in order.
// Writing each phase straight into y's strided pixels is not possible with the micro-kernel,
// whose tiles store nr consecutive values.
#include <atomic>
#include <vector>

#include "conv/cpu/packing.h"
#include "conv_transpose/cpu/conv_transpose.h"
#include "core/checked_math.h"
#include "core/parallel.h"
#include "core/scratch.h"
#include "core/stream_store.h"
#include "gemm/gemm.h"

namespace fastconv::conv_transpose::cpu {

using conv::axis_phase;
using conv::AxisPhase;
using conv::Conv2dShape;

namespace {

// All phases of a band together: small enough to be interleaved into y from L2.
constexpr std::size_t kBandOutputBytes = 1u << 18;
// The most values a band's input planes may hold (one output row per band at least).
constexpr index_t kMaxPlaneValues = index_t(1) << 32;
// The most output phases: each has its GEMM and block, so a stride far beyond the kernel (legal,
// however wasteful) would ask for stride_h x stride_w of them.
constexpr index_t kMaxPhases = 1024;

// The phases of one axis, and the span of input they read relative to their output index:
// every phase reads inputs i + lo ... i + hi for output i.
struct AxisPhases {
  std::vector<AxisPhase> phases;
  index_t lo = 0, hi = 0, max_outputs = 0;

  AxisPhases(index_t output, index_t kernel, index_t stride, index_t padding) {
    bool any = false;
    for (index_t a = 0; a < stride; ++a) {
      const AxisPhase p = axis_phase(a, output, kernel, stride, padding);
      phases.push_back(p);
      max_outputs = std::max(max_outputs, p.outputs);
      if (p.taps == 0) continue;
      lo = any ? std::min(lo, p.offset - p.taps + 1) : p.offset - p.taps + 1;
      hi = any ? std::max(hi, p.offset) : p.offset;
      any = true;
    }
  }
  index_t reach() const { return hi - lo; }  // input rows a band reads past its output rows
};

// How a band's input planes lie. A single copy: rows of the widest phase + the columns its taps
// reach, each tap reading them at its column shift; the columns past a phase's width are
// computed and dropped (2 of 18 for a 4x4/2 kernel over 16 columns, 1 of 9 for a 3x3/2 kernel
// over 8). Shifted copies: one copy of the band per column shift a tap reads (0 ... reach), in
// rows of the widest phase, no column wasted, at the price of copying the band reach + 1 times.
// Measured, 2 threads, AVX-512, alternating builds: shifted copies ran conv_transpose_up2's
// forward (64 -> 32 channels, 16x16 -> 32x32) 1.12-1.21 -> 1.02-1.11 ms, a 4x4/2 layer of
// 128 -> 64 channels 2.9-3.0 -> 2.3-2.4 ms, resnet20's 3x3/2 input gradient at batch 128
// (64 -> 32 channels, 8-column phases) 2.0-2.1 -> 1.6-1.75 ms, 5x5/2 layers 5% faster, but a
// 4x4/2 layer to 3 output channels 0-10% slower (its GEMM rows are mostly padding, the copies
// dominate): the forward takes them from 16 output channels per group on. (Rows rounded up to
// a cache line had made 8-column phases compute 16.) The weight gradient's channels-last planes
// are a single copy.
enum class Planes { shifted_copies, single };

// The geometry of a call: y (N, C, H, W) from x (N, K, P, Q) in the equivalent conv2d's names
// (s: its input is our output, its output our input, weight (K, C/G, R, S)).
struct Subpixel {
  const Conv2dShape& s;
  AxisPhases rows, cols;
  index_t Wp;         // a wide row (Planes)
  index_t copies;     // of the band (Planes)
  index_t band_rows;  // phase rows per band
  index_t nr;         // the micro-kernel's tile width

  Subpixel(const Conv2dShape& shape, index_t value_bytes, index_t tile_width, Planes planes)
      : s(shape),
        rows(s.H, s.R, s.p.stride[0], s.p.pad_begin[0]),
        cols(s.W, s.S, s.p.stride[1], s.p.pad_begin[1]),
        Wp(planes == Planes::shifted_copies ? cols.max_outputs : cols.max_outputs + cols.reach()),
        copies(planes == Planes::shifted_copies ? cols.reach() + 1 : 1),
        nr(tile_width) {
    // In double: subpixel_unsupported_reason sizes shapes no array has yet, whose products may
    // not fit in int64.
    const double row_bytes = double(s.p.stride[0]) * double(s.p.stride[1]) * double(s.C_per_group()) * double(Wp) *
                             double(value_bytes);
    // At least four bands per thread over the batch, so that the threads finish together.
    const double rows_per_band = std::min(double(kBandOutputBytes) / row_bytes,
                                          double(s.N) * double(rows.max_outputs) / (4.0 * num_threads()));
    const index_t r = std::clamp<index_t>(static_cast<index_t>(std::min(rows_per_band, double(rows.max_outputs))), 1,
                                          std::max<index_t>(rows.max_outputs, 1));
    band_rows = ceil_div(rows.max_outputs, ceil_div(rows.max_outputs, r));  // equal bands
  }
  index_t plane_rows() const { return band_rows + rows.reach() + 1; }  // + 1: dropped columns read past
  index_t plane() const { return plane_rows() * Wp; }
  index_t copy() const { return s.K * plane(); }  // one copy of the band: every channel's plane
  // Where a tap reading `shift` columns right of the band's left edge finds its row 0, for channel 0.
  index_t column_shift(index_t shift) const { return copies > 1 ? shift * copy() : shift; }
  index_t block() const { return round_up(band_rows * Wp, nr); }  // one phase, one channel
  index_t phase_count() const { return s.p.stride[0] * s.p.stride[1]; }
};

// Where tap (k, m, n) of phase (pa, pb) reads its row of a tile in a band's planes, for the
// input channels k of one group, in the order (k, m, n): the rows of a phase's virtual column
// matrix.
std::vector<index_t> phase_taps(const Subpixel& g, const AxisPhase& pa, const AxisPhase& pb) {
  std::vector<index_t> taps;
  taps.reserve(g.s.K_per_group() * pa.taps * pb.taps);
  for (index_t k = 0; k < g.s.K_per_group(); ++k)
    for (index_t m = 0; m < pa.taps; ++m)
      for (index_t n = 0; n < pb.taps; ++n)
        taps.push_back(k * g.plane() + (pa.offset - m - g.rows.lo) * g.Wp + g.column_shift(pb.offset - n - g.cols.lo));
  return taps;
}

// Where the weight of tap (k, m, n) of phase (pa, pb) lies in w (K, C/G, R, S), for output
// channel c = 0 of group `group`; channel c is c * R * S further.
index_t tap_weight(const Subpixel& g, index_t group, const AxisPhase& pa, const AxisPhase& pb, index_t k, index_t m,
                   index_t n) {
  const Conv2dShape& s = g.s;
  const index_t r = pa.first + s.p.stride[0] * m, t = pb.first + s.p.stride[1] * n;
  return ((group * s.K_per_group() + k) * s.C_per_group() * s.R + r) * s.S + t;
}

// Phase (a, b)'s forward GEMM for group g: the weights of its taps, packed, and their offsets
// in the planes. Depth 0 (a kernel smaller than the stride leaves some phases without taps):
// the phase is the bias alone.
template <class T>
struct PhaseGemm {
  index_t depth = 0;
  std::vector<gemm::PackedA<T>> weights;  // one, or none when depth is 0
  std::vector<index_t> taps;
};

template <class T>
PhaseGemm<T> phase_gemm(const Subpixel& g, const T* w, index_t group, const AxisPhase& pa, const AxisPhase& pb) {
  const index_t Kg = g.s.K_per_group(), Cg = g.s.C_per_group(), RS = g.s.R * g.s.S;
  PhaseGemm<T> out;
  out.depth = Kg * pa.taps * pb.taps;
  if (out.depth == 0) return out;
  out.taps = phase_taps(g, pa, pb);
  std::vector<T> a(Cg * out.depth);  // A[c][(k, m, n)] = w[k][c][first_a + s_h m][first_b + s_w n]
  for (index_t k = 0, col = 0; k < Kg; ++k)
    for (index_t m = 0; m < pa.taps; ++m)
      for (index_t n = 0; n < pb.taps; ++n, ++col) {
        const T* tap = w + tap_weight(g, group, pa, pb, k, m, n);
        for (index_t c = 0; c < Cg; ++c) a[c * out.depth + col] = tap[c * RS];
      }
  out.weights.emplace_back(as_const(dense_matrix(a.data(), Cg, out.depth)));
  return out;
}

// One band: phase rows [i0, i0 + rows) of image n.
struct Band {
  index_t n, i0, rows;
  // how many of its rows phase `a` has (a phase may end before the band does; maybe <= 0)
  index_t rows_of(const AxisPhase& a) const { return std::min(i0 + rows, a.outputs) - i0; }
};

// The band's input planes: input rows i0 + lo ... of every channel, zero-padded, Wp wide, once
// per copy (copy j from column lo + j); a channel's copies one after the other, while its rows
// are in L1.
template <class T>
void copy_band_planes(const Subpixel& g, const T* image, const Band& band, T* planes) {
  const Conv2dShape& s = g.s;
  for (index_t k = 0; k < s.K; ++k)
    for (index_t j = 0; j < g.copies; ++j)
      conv::cpu::copy_padded_rows(image + k * s.P * s.Q, s.P, s.Q, band.i0 + g.rows.lo, g.cols.lo + j, g.plane_rows(),
                                  g.Wp, planes + j * g.copy() + k * g.plane());
}

// How far ahead of the row being written interleave_band asks for y's lines.
constexpr index_t kWriteAheadBytes = 2048;

// out[x] = src[x % sw][x / sw] for x < W: one output row from its column phases' rows (a null
// one: a phase without taps, the bias b0 alone). Stride 2 with a constant stride: the pairs
// vectorise, where one value stored at a time had cost 9% of the 4x4/2 forward.
template <class T>
void interleave_row(T* __restrict out, const T* const* src, index_t sw, index_t W, T b0) {
  if (sw == 2 && src[0] && src[1]) {
    const T* __restrict even = src[0];
    const T* __restrict odd = src[1];
    const index_t pairs = W / 2;
    for (index_t j = 0; j < pairs; ++j) {
      out[2 * j] = even[j];
      out[2 * j + 1] = odd[j];
    }
    if (W % 2) out[W - 1] = even[pairs];
    return;
  }
  for (index_t b = 0; b < sw && b < W; ++b) {
    const index_t width = ceil_div(W - b, sw);
    for (index_t j = 0; j < width; ++j) out[b + sw * j] = src[b] ? src[b][j] : b0;
  }
}

// y's rows of the band for channels [c0, c0 + C/G) from the phases' blocks (phase (a, b) at
// blocks[a * s_w + b], C/G blocks of block() values; null: a phase without taps), each channel's
// rows in order, asking for the lines of the row kWriteAheadBytes on (in the next channel's
// plane near the end of one): y is written once, from L2, and each store had waited for its
// line to be read first (the stores were 43% of the interleave's samples). Measured in one
// process, builds alternated, resnet20's 3x3/2 input gradients at batch 128: to 32 x 32 outputs
// 0.94x the time warm, 0.95x with the input just read from memory; to 16 x 16 outputs 1.01x and
// 0.98x. The phases' rows one phase after the other, with no prefetch, had run 1.0x; asking only
// within a channel's plane 1.01-1.05x.
template <class T>
void interleave_band(const Subpixel& g, const Band& band, index_t c0, const std::vector<const T*>& blocks,
                     const T* bias, T* y) {
  const Conv2dShape& s = g.s;
  const index_t sh = s.p.stride[0], sw = s.p.stride[1], Cg = s.C_per_group(), block = g.block();
  const index_t y0 = sh * band.i0, y1 = std::min(s.H, sh * (band.i0 + band.rows));
  T* const planes = y + (band.n * s.C + c0) * s.H * s.W;
  const index_t write_ahead = std::max<index_t>(1, kWriteAheadBytes / (s.W * static_cast<index_t>(sizeof(T))));
  index_t ahead_c = 0, ahead_h = y0;  // the channel and row write_ahead rows on
  const auto advance = [&] {
    if (++ahead_h == y1) {
      ahead_h = y0;
      ++ahead_c;
    }
  };
  for (index_t skip = 0; skip < write_ahead && ahead_c < Cg; ++skip) advance();
  std::vector<const T*> row(sw);
  for (index_t c = 0; c < Cg; ++c) {
    const T b0 = bias ? bias[c0 + c] : T(0);
    T* plane = planes + c * s.H * s.W;
    for (index_t h = y0; h < y1; ++h) {
      if (ahead_c < Cg) {
        prefetch_span(planes + ahead_c * s.H * s.W + ahead_h * s.W, s.W);
        advance();
      }
      const index_t a = h % sh, i = h / sh - band.i0;
      if (i >= band.rows_of(g.rows.phases[a])) continue;
      for (index_t b = 0; b < sw; ++b) {
        const T* src = blocks[a * sw + b];
        row[b] = src ? src + c * block + i * g.Wp : nullptr;
      }
      interleave_row(plane + h * s.W, row.data(), sw, s.W, b0);
    }
  }
}

std::vector<Band> bands(const Subpixel& g) {
  std::vector<Band> out;
  for (index_t n = 0; n < g.s.N; ++n)
    for (index_t i0 = 0; i0 < g.rows.max_outputs; i0 += g.band_rows)
      out.push_back({n, i0, std::min(g.band_rows, g.rows.max_outputs - i0)});
  return out;
}

// The forward's planes for this shape (Planes).
Planes forward_planes(const Conv2dShape& s) {
  return s.C_per_group() >= 16 ? Planes::shifted_copies : Planes::single;
}

}  // namespace

const char* subpixel_unsupported_reason(const Conv2dShape& s) {
  if (s.p.dilation[0] != 1 || s.p.dilation[1] != 1)
    return "subpixel decomposes undilated kernels only (dilation 1); use another algo";
  index_t phases = 0;
  if (mul_overflows(s.p.stride[0], s.p.stride[1], &phases) || phases > kMaxPhases)
    return "subpixel runs one GEMM per output phase, stride_h x stride_w of them: at most 1024; use another algo";
  // The forward's shifted copies: at least as many values as a single copy ((reach + 1) x width
  // >= width + reach), so the bound holds for either.
  const Subpixel g(s, sizeof(float), 1, Planes::shifted_copies);
  index_t n = 0;
  if (mul_overflows(s.K, g.rows.reach() + 2, &n) || mul_overflows(n, g.Wp, &n) || mul_overflows(n, g.copies, &n) ||
      n > kMaxPlaneValues)
    return "subpixel copies a band of the input into planes of more than 2^32 values for this shape; use another "
           "algo";
  return nullptr;
}

template <class T>
void conv_transpose2d_forward_subpixel(const Conv2dShape& s, const T* x, const T* w, const T* bias, T* y) {
  const index_t G = s.groups(), Cg = s.C_per_group();
  const index_t nr = gemm::active_kernels<T>(Cg).nr;
  const Subpixel g(s, sizeof(T), nr, forward_planes(s));
  const index_t sw = s.p.stride[1], phases = g.phase_count();
  std::vector<PhaseGemm<T>> gemms;  // [group][phase]
  for (index_t group = 0; group < G; ++group)
    for (index_t a = 0; a < s.p.stride[0]; ++a)
      for (index_t b = 0; b < sw; ++b)
        gemms.push_back(phase_gemm(g, w, group, g.rows.phases[a], g.cols.phases[b]));
  const std::vector<Band> work = bands(g);
  const index_t count = static_cast<index_t>(work.size());
  std::atomic<index_t> next_band{0};  // a thread slowed by another tenant takes fewer bands
  parallel_for(0, std::min<index_t>(num_threads(), count), 1, [&](index_t, index_t) {
    // nr values of slack past the planes: the last tiles' dropped columns read them.
    const index_t planes_size = g.copies * g.copy();
    T* planes = thread_scratch<T>(planes_size + nr, ScratchSlot::columns);
    std::fill(planes + planes_size, planes + planes_size + nr, T(0));
    T* blocks = thread_scratch<T>(phases * Cg * g.block(), ScratchSlot::band_output);
    std::vector<const T*> computed(phases);
    for (index_t i; (i = next_band.fetch_add(1, std::memory_order_relaxed)) < count;) {
      const Band& band = work[i];
      copy_band_planes(g, x + band.n * s.K * s.P * s.Q, band, planes);
      for (index_t group = 0; group < G; ++group) {
        const T* group_planes = planes + group * s.K_per_group() * g.plane();
        const T* group_bias = bias ? bias + group * Cg : nullptr;
        for (index_t p = 0; p < phases; ++p) {
          const PhaseGemm<T>& pg = gemms[group * phases + p];
          T* block = blocks + p * Cg * g.block();
          computed[p] = pg.depth ? block : nullptr;
          const index_t rows = band.rows_of(g.rows.phases[p / sw]);
          const index_t tiles = ceil_div(rows * g.Wp, nr);
          if (pg.depth == 0 || tiles <= 0) continue;
          gemm::gemm_gathered(Cg, {1, tiles}, pg.depth, pg.weights[0], group_planes, pg.taps.data(), block,
                              g.block(), gemm::Epilogue<T>{T(1), T(0), group_bias, false}, [](index_t, index_t) {});
        }
        interleave_band(g, band, group * Cg, computed, bias, y);
      }
    }
  });
}

namespace {

// A band's input planes of one group, channels last: value (u, v, k) at (u * Wp + v) * Cp + k,
// the K/G channels padded with zeros to Cp, a whole number of tiles. At one pixel and tap the
// channels are then the consecutive values of a tile's row.
template <class T>
void copy_band_planes_channels_last(const Subpixel& g, const T* image, const Band& band, index_t group, index_t Cp,
                                    T* planes) {
  const Conv2dShape& s = g.s;
  const index_t Kg = s.K_per_group(), top = band.i0 + g.rows.lo;
  std::fill(planes, planes + g.plane() * Cp, T(0));
  const conv::Range cols = conv::valid_range(g.cols.lo, 1, s.Q, g.Wp);
  for (index_t u = 0; u < g.plane_rows(); ++u) {
    const index_t h = top + u;
    if (h < 0 || h >= s.P) continue;
    for (index_t k = 0; k < Kg; ++k) {
      const T* src = image + ((group * Kg + k) * s.P + h) * s.Q + g.cols.lo;
      T* dst = planes + u * g.Wp * Cp + k;
      for (index_t v = cols.lo; v < cols.hi; ++v) dst[v * Cp] = src[v];
    }
  }
}

// How many parts the weight gradient's bands are summed in: a fixed split of the bands (so the
// sums do not depend on the threads that run them), four per thread, taken one at a time so that
// a thread slowed by another tenant takes fewer, while their sums fit in kMaxPartsBytes.
constexpr std::size_t kMaxPartsBytes = 1u << 23;
index_t weight_gradient_parts(index_t bands, index_t part_values) {
  const index_t fit = static_cast<index_t>(kMaxPartsBytes / sizeof(double)) / std::max<index_t>(part_values, 1);
  return std::min(bands, std::max<index_t>(num_threads(), std::min<index_t>(4 * num_threads(), fit)));
}

}  // namespace

// grad_w of phase (a, b) = its grad_y [c][p] times the input each tap meets at phase pixel p:
// per band, group, phase and tap (m, n), one GEMM [C/G x pixels] x [pixels x Cp]. Its B rows,
// the channels at one pixel, the gathered micro-kernel reads in place from channels-last
// planes; only grad_y's phase (C/G x pixels) is packed. (Packing the taps' input instead, K/G x
// taps x pixels values each used C/G times, had made this 25% slower than the forward.) The
// bands are summed in parts (weight_gradient_parts), [c][(m, n, k)] per group and phase; the
// parts are added in a fixed order, so the result does not depend on which thread ran which.
template <class T>
void conv_transpose2d_backward_weight_subpixel(const Conv2dShape& s, const T* x, const T* grad_y, T* grad_w) {
  const index_t G = s.groups(), Kg = s.K_per_group(), Cg = s.C_per_group(), RS = s.R * s.S;
  const index_t nr = gemm::active_kernels<T>(Cg).nr, Cp = round_up(Kg, nr);
  const Subpixel g(s, sizeof(T), nr, Planes::single);
  const index_t sh = s.p.stride[0], sw = s.p.stride[1], phases = g.phase_count();
  const auto phase_of = [&](index_t q) -> std::pair<const AxisPhase&, const AxisPhase&> {
    return {g.rows.phases[q % phases / sw], g.cols.phases[q % phases % sw]};
  };
  std::vector<index_t> block_at{0};  // where block q = group * phases + phase starts in a part
  for (index_t q = 0; q < G * phases; ++q) {
    const auto [pa, pb] = phase_of(q);
    block_at.push_back(block_at.back() + Cg * pa.taps * pb.taps * Cp);
  }
  const index_t size = block_at.back();
  const std::vector<Band> work = bands(g);
  const index_t count = static_cast<index_t>(work.size()), parts = weight_gradient_parts(count, size);
  // Taken by the calling thread, so the parts stay distinct however OpenMP places them.
  T* partials = thread_scratch<T>(parts * size, ScratchSlot::partial_sums);
  std::atomic<index_t> next_part{0};  // a thread slowed by another tenant takes fewer parts
  parallel_for(0, std::min<index_t>(num_threads(), parts), 1, [&](index_t, index_t) {
    T* planes = thread_scratch<T>(g.plane() * Cp, ScratchSlot::columns);
    T* dy = thread_scratch<T>(Cg * g.band_rows * g.cols.max_outputs, ScratchSlot::band_output);
    std::vector<index_t> pixel_at;  // phase pixel i * width + j: where its channels start
    for (index_t t; (t = next_part.fetch_add(1, std::memory_order_relaxed)) < parts;) {
      T* sums = partials + t * size;
      std::fill(sums, sums + size, T(0));
      for (index_t i = count * t / parts; i < count * (t + 1) / parts; ++i) {
        const Band& band = work[i];
        for (index_t group = 0; group < G; ++group) {
          copy_band_planes_channels_last(g, x + band.n * s.K * s.P * s.Q, band, group, Cp, planes);
          for (index_t p = 0; p < phases; ++p) {
            const auto [pa, pb] = phase_of(p);
            const index_t a = p / sw, b = p % sw, rows = band.rows_of(pa);
            const index_t pixels = std::max<index_t>(rows, 0) * pb.outputs;
            if (pa.taps * pb.taps == 0 || pixels == 0) continue;
            for (index_t c = 0; c < Cg; ++c)
              conv::cpu::copy_padded_rows(grad_y + (band.n * s.C + group * Cg + c) * s.H * s.W, s.H, s.W,
                                          a + sh * band.i0, b, rows, pb.outputs, dy + c * pixels, sh, sw);
            const gemm::PackedA<T> dy_packed(as_const(dense_matrix(dy, Cg, pixels)));
            pixel_at.clear();
            for (index_t r = 0; r < rows; ++r)
              for (index_t j = 0; j < pb.outputs; ++j) pixel_at.push_back((r * g.Wp + j) * Cp);
            T* block = sums + block_at[group * phases + p];
            for (index_t m = 0; m < pa.taps; ++m)
              for (index_t n = 0; n < pb.taps; ++n) {
                const T* tap = planes + ((pa.offset - m - g.rows.lo) * g.Wp + pb.offset - n - g.cols.lo) * Cp;
                gemm::gemm_gathered(Cg, {1, Cp / nr}, pixels, dy_packed, tap, pixel_at.data(),
                                    block + (m * pb.taps + n) * Cp, pa.taps * pb.taps * Cp,
                                    gemm::Epilogue<T>{T(1), T(1)}, [](index_t, index_t) {});
              }
          }
        }
      }
    }
  });
  // grad_w[k][c][r][t] = the sum over parts of its block's entry [c][(m, n, k)].
  parallel_for(0, G * phases, 1, [&](index_t lo, index_t hi) {
    for (index_t q = lo; q < hi; ++q) {
      const auto [pa, pb] = phase_of(q);
      const index_t group = q / phases, taps = pa.taps * pb.taps;
      for (index_t c = 0; c < Cg; ++c)
        for (index_t m = 0; m < pa.taps; ++m)
          for (index_t n = 0; n < pb.taps; ++n)
            for (index_t k = 0; k < Kg; ++k) {
              const index_t at = block_at[q] + (c * taps + m * pb.taps + n) * Cp + k;
              T sum = T(0);
              for (index_t t = 0; t < parts; ++t) sum += partials[t * size + at];
              grad_w[tap_weight(g, group, pa, pb, k, m, n) + c * RS] = sum;
            }
    }
  });
}

template void conv_transpose2d_forward_subpixel<float>(const Conv2dShape&, const float*, const float*, const float*,
                                                       float*);
template void conv_transpose2d_forward_subpixel<double>(const Conv2dShape&, const double*, const double*,
                                                        const double*, double*);
template void conv_transpose2d_backward_weight_subpixel<float>(const Conv2dShape&, const float*, const float*, float*);
template void conv_transpose2d_backward_weight_subpixel<double>(const Conv2dShape&, const double*, const double*,
                                                                double*);

}  // namespace fastconv::conv_transpose::cpu
