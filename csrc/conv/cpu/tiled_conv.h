// The driver shared by the transform-domain convolutions (winograd.cpp, fft.cpp).
//
// Both algorithms cut the output into m_h x m_w tiles, read the alpha_h x alpha_w input patch
// that each tile needs, map it to `points` transform-domain values, and turn the convolution
// into one channel-reducing GEMM per transform point (Lavin & Gray 2016, section 4.2):
//     M[pt] (K x tiles) = U[pt] (K x C) * V[pt] (C x tiles),  per group,
// then map M back to the output tile. With `parts == 2` every point is a complex number and
// its GEMM is the real form of a complex product, [Mr; Mi] = [[Ur, -Ui], [Ui, Ur]] [Vr; Vi].
//
// A Transform provides alpha_h, alpha_w, m_h, m_w, points, parts, work_size(lanes),
// block_bytes(filter_bytes) (V and M per block of tiles) and
//   filter(w /*lanes filters of R x S*/, lanes, out /*points x parts x lanes*/, work)
//   input_tiles(patches, lanes, out, point_stride, part_stride, work)
//   output_tiles(in, point_stride, part_stride, lanes, tiles, bias, relu, work)
// `patches` and `tiles` say where each lane's tile is read from and written to (tile_io.h);
// "x lanes" means `lanes` tiles side by side, the lane index innermost (the transforms
// vectorise across tiles, as NNPACK's do). A transform with no faster way calls
// gather_patches / scatter_tiles around its codelets (the two helpers below).
//
// U is stored in the GEMM micro-kernel's A panel order, the transformed tiles are written
// straight in its B panel order, and it writes M where the output transform reads it: the
// per-point GEMMs are bare micro-kernel calls, with no packing.
#pragma once
#include <algorithm>
#include <memory>
#include <stdexcept>
#include <vector>

#include "conv/cpu/kernels.h"
#include "conv/cpu/packing.h"
#include "conv/cpu/tile_io.h"
#include "core/parallel.h"
#include "core/scratch.h"
#include "core/stream_store.h"
#include "gemm/gemm.h"

namespace fastconv::conv::cpu {

// A stride-1, dilation-1 convolution as the tiled driver sees it: output (N, K, P, Q), and
// output (p, q) reads input rows top + p + [0, R) and columns left + q + [0, S) (0 outside).
//
// A strided convolution runs as the stride-1 convolution of its stride phases (steps above 1):
// input channel c's phase (a, b), every step_h-th row and step_w-th column from row top + a and
// column left + b, is the driver's channel (c * step_h + a) * step_w + b, and the filter taps
// that read it are w[k, c, a + step_h * i, b + step_w * j] (phase_weights). AlexNet's 11x11
// filters at stride 4 so become 3x3 filters over 48 phase channels, which Winograd runs.
//
// An output pixel-shuffled by a factor f (`shuffle`, torch.nn.functional.pixel_shuffle's order)
// is the array (N, K / f^2, P f, Q f) whose channel k holds output channels k f^2 + a f + b at
// pixels (p f + a, q f + b): transform_output writes it so, with no (N, K, P, Q) array between.
// An input read pixel-unshuffled is its stride phases (reading_unshuffled below).
struct TiledGeometry {
  index_t N, C, H, W, K, groups, P, Q, top, left;
  index_t step_h = 1, step_w = 1;  // C counts phase channels: the input has C / (step_h * step_w)
  index_t shuffle = 1;
};

// g for an input that is the pixel unshuffle (factor f) of a wide array (N, C / f^2, H f, W f):
// its channel c f^2 + a f + b is the wide plane c's phase (a, b), which the driver reads as it
// reads a strided convolution's phases, from the wide planes themselves.
inline TiledGeometry reading_unshuffled(TiledGeometry g, index_t f) {
  g.H *= f, g.W *= f, g.top *= f, g.left *= f;
  g.step_h = g.step_w = f;
  return g;
}

inline TiledGeometry forward_geometry(const Conv2dShape& s) {
  const index_t sh = s.p.stride[0], sw = s.p.stride[1];
  return {s.N, s.C * sh * sw, s.H, s.W, s.K, s.groups(), s.P, s.Q, -s.p.pad_begin[0], -s.p.pad_begin[1], sh, sw};
}

// Where tap (r, t) of every filter lies in its phase filters, offsets[r * S + t] values past the
// filter's start (filter f = k * C/G + c's phase filters, C/G * sh * sw of R' x S', start at f sh
// sw R' S'). A table, so that the loops over the filters do no division per tap.
inline std::vector<index_t> phase_tap_offsets(const Conv2dShape& s) {
  const index_t sh = s.p.stride[0], sw = s.p.stride[1];
  const auto [rp, sp] = s.phase_kernel();
  std::vector<index_t> offsets(s.R * s.S);
  for (index_t r = 0; r < s.R; ++r)
    for (index_t t = 0; t < s.S; ++t) offsets[r * s.S + t] = ((r % sh) * sw + t % sw) * rp * sp + r / sh * sp + t / sw;
  return offsets;
}

inline index_t phase_filter_size(const Conv2dShape& s) {
  const auto [rp, sp] = s.phase_kernel();
  return s.p.stride[0] * s.p.stride[1] * rp * sp;
}

// The filters of forward_geometry(s)'s phase channels: w's taps in place, 0 past its end.
template <class T>
std::vector<T> phase_weights(const Conv2dShape& s, const T* w) {
  const index_t taps = s.R * s.S, size = phase_filter_size(s);
  const std::vector<index_t> offsets = phase_tap_offsets(s);
  std::vector<T> out(s.K * s.C_per_group() * size, T(0));
  for (index_t f = 0; f < s.K * s.C_per_group(); ++f)
    for (index_t i = 0; i < taps; ++i) out[f * size + offsets[i]] = w[f * taps + i];
  return out;
}

// The stride-1 convolution of s's stride phases as a shape of its own: input (N, C * sh * sw,
// P + R' - 1, Q + S' - 1), the phase planes as far as the windows read them, unpadded; weight
// (K, C/G * sh * sw, R', S'), the phase filters.
inline Conv2dShape phase_shape(const Conv2dShape& s) {
  const auto [rp, sp] = s.phase_kernel();
  const index_t phases = s.p.stride[0] * s.p.stride[1];
  Conv2dParams unit;
  unit.groups = s.groups();
  return Conv2dShape({s.N, s.C * phases, s.P + rp - 1, s.Q + sp - 1}, {s.K, s.C_per_group() * phases, rp, sp}, unit);
}

// grad_x from the gradient of s's phase planes (phase_shape(s)'s input): each input pixel is one
// cell of one phase, or lies past the last window and gets 0. A row of grad_x interleaves sw
// phase rows: each is copied to every sw-th pixel in turn, with no division per pixel (one per
// pixel had made this gather 29% of a 4x4/2 input gradient's profile).
template <class T>
void gather_phase_gradient(const Conv2dShape& s, const T* phase_grad, T* grad_x) {
  const Conv2dShape ps = phase_shape(s);
  const index_t sh = s.p.stride[0], sw = s.p.stride[1], plane = ps.H * ps.W, pad_w = s.p.pad_begin[1];
  parallel_for(0, s.N * s.C, 1, [&](index_t lo, index_t hi) {
    for (index_t i = lo; i < hi; ++i)  // the plane of image i / C, channel i % C
      for (index_t h = 0; h < s.H; ++h) {
        const index_t eh = h + s.p.pad_begin[0], row = eh / sh;
        const T* phases = phase_grad + (i * sh + eh % sh) * sw * plane + row * ps.W;  // phase b at + b * plane
        T* out = grad_x + (i * s.H + h) * s.W;
        if (row >= ps.H) {
          std::fill(out, out + s.W, T(0));
          continue;
        }
        for (index_t w0 = 0; w0 < std::min(sw, s.W); ++w0) {  // pixels w0, w0 + sw, ...: one phase's row
          const index_t b = (w0 + pad_w) % sw, col0 = (w0 + pad_w) / sw;
          const index_t pixels = (s.W - w0 + sw - 1) / sw, cells = std::clamp<index_t>(ps.W - col0, 0, pixels);
          const T* src = phases + b * plane + col0;
          T* dst = out + w0;
          if (sw == 2) {  // a constant stride: a 6x6/2 input gradient 5.7-5.9 ms against 6.0-6.5
            for (index_t j = 0; j < cells; ++j) dst[2 * j] = src[j];
          } else {
            for (index_t j = 0; j < cells; ++j) dst[j * sw] = src[j];
          }
          for (index_t j = cells; j < pixels; ++j) dst[j * sw] = T(0);
        }
      }
  });
}

// grad_w from the gradient of the phase filters (the taps past the kernel's end are dropped).
template <class T>
void phase_weight_gradient(const Conv2dShape& s, const T* phase_grad, T* grad_w) {
  const index_t taps = s.R * s.S, size = phase_filter_size(s);
  const std::vector<index_t> offsets = phase_tap_offsets(s);
  for (index_t f = 0; f < s.K * s.C_per_group(); ++f)
    for (index_t i = 0; i < taps; ++i) grad_w[f * taps + i] = phase_grad[f * size + offsets[i]];
}

// grad_x[h] = sum_r grad_y[h + pad - r] w[r] = sum_r' grad_y[h + pad - (R-1) + r'] w[R-1-r']:
// a stride-1 convolution of grad_y with the rotated, channel-transposed weights (see
// rotated_transposed_weights), reading from offset pad - (R-1), which may be positive.
inline TiledGeometry backward_input_geometry(const Conv2dShape& s) {
  return {s.N, s.K, s.P, s.Q, s.C, s.groups(), s.H, s.W, s.p.pad_begin[0] - (s.R - 1), s.p.pad_begin[1] - (s.S - 1)};
}

namespace tiled {

constexpr index_t kLanes = 16;            // most tiles transformed side by side
// The weight gradient's V and GY per block and thread: 4 MiB, where its GEMMs (which pack)
// amortise best (measured one thread, interleaved: vgg_conv3 31 ms, 63 ms at 512 KiB). A
// forward's V and M per block: the transform's block_bytes(U's bytes).
constexpr index_t kWeightGradientBlockBytes = 4 << 20;

// n values rounded up to an odd number of cache lines: arrays that far apart spread over every
// L1 set (a multiple of 4 KiB had put a transform's 36 points in one 8-way set).
template <class T>
index_t odd_lines(index_t n) {
  constexpr index_t per_line = 64 / static_cast<index_t>(sizeof(T));
  return (ceil_div(n, per_line) | 1) * per_line;
}

// Tiles per block: at most `most` (cache), as many blocks as a multiple of the thread count (each
// thread runs whole blocks, their GEMMs single-threaded: no barrier per GEMM), a multiple of `unit`.
inline index_t block_tiles(index_t tiles, index_t most, index_t unit) {
  return round_up(ceil_div(tiles, round_up(ceil_div(tiles, most), num_threads())), unit);
}

// patch[(a * cols + b) * lanes + l] = src.origin[l][a * src.ld + b] for a rows x cols patch.
template <class T>
void gather_patches(index_t rows, index_t cols, const PatchSource<T>& src, index_t lanes, T* patch) {
  for (index_t l = 0; l < lanes; ++l)
    for (index_t a = 0; a < rows; ++a)
      for (index_t b = 0; b < cols; ++b) patch[(a * cols + b) * lanes + l] = src.origin[l][a * src.ld + b];
}

// The tile values tile[(i * m_w + j) * lanes + l], plus bias, through ReLU if asked, to the targets.
template <class T>
void scatter_tiles(const T* tile, index_t m_w, index_t lanes, const TileTarget<T>* targets, index_t ld, T bias,
                   bool relu) {
  const TileRows<T> out{targets, ld, bias, relu};
  index_t rows = 0;
  for (index_t l = 0; l < lanes; ++l) rows = std::max(rows, targets[l].rows);
  for (index_t i = 0; i < rows; ++i) scatter_row(out, i, m_w, tile + i * m_w * lanes, lanes);
}

// U[pt] per group is the GEMM's A, a (parts*Kg) x (parts*Cg) matrix, stored already packed for
// the micro-kernel: [pt][g][panel][parts*Cg][mr], panels of mr rows, rows padded with zeros to
// a multiple of kFilterRows (which every wide kernel's mr divides, so the size is the same on
// every ISA; the interleaving is not: a cached U is keyed on the ISA, ops/conv_weight_cache.py).
// Filters are transformed kLanes at a time (consecutive input channels of one output channel).
constexpr index_t kFilterRows = 12;

template <class Transform>
index_t filter_rows(const TiledGeometry& g, const Transform& tf) {
  return round_up(tf.parts * (g.K / g.groups), kFilterRows);
}

// The micro-kernel of the per-point GEMMs: the active ISA's tile that pads the fewest of U's
// rows (AVX-512's 12-row tile computes 24 rows for 16 output channels, its 8-row tile 16). A
// narrow tile is taken only where its panels cover the rows in fewer rows than the wide one's,
// so they fit in filter_rows too.
template <class T, class Transform>
const gemm::KernelSet<T>& point_kernels(const TiledGeometry& g, const Transform& tf) {
  return gemm::active_kernels<T>(tf.parts * (g.K / g.groups));
}

template <class Transform>
index_t transformed_filters_size(const TiledGeometry& g, const Transform& tf) {
  return tf.points * g.groups * filter_rows(g, tf) * tf.parts * (g.C / g.groups);
}

template <class T, class Transform>
index_t filter_panel_rows(const TiledGeometry& g, const Transform& tf) {
  const index_t mr = point_kernels<T>(g, tf).mr;
  if (round_up(tf.parts * (g.K / g.groups), mr) > filter_rows(g, tf))
    throw std::logic_error("tiled_conv: the micro-kernel's panels do not fit in filter_rows");
  return mr;
}

// A real transform's filters (Winograd's) straight into U, a panel of mr output channels and
// kLanes input channels at a time: their values at each point, mr x kLanes in L1, transposed into
// the panel's [c][mr] order by registers. (Through a point-major copy of every filter first, as
// the complex spectra below go, U was written twice and read once beyond the caches: with a
// weight that changes every step, the filter transforms were a third of resnet50's 256 x 256 3x3
// layer's forward and input gradient (F(4x4): U of 9.4 MB), one thread.)
template <class T, class Transform>
void transform_real_filters(const TiledGeometry& g, const Transform& tf, const T* w, index_t R, index_t S, T* u) {
  const index_t Kg = g.K / g.groups, Cg = g.C / g.groups, mr = filter_panel_rows<T>(g, tf), rows = filter_rows(g, tf);
  const index_t panels = rows / mr, block = rows * Cg;
  parallel_for(0, g.groups * panels, 1, [&](index_t lo, index_t hi) {
    std::vector<T> values(tf.points * mr * kLanes), work(tf.work_size(kLanes));  // [row][pt][lane]
    for (index_t i = lo; i < hi; ++i) {
      const index_t group = i / panels, r0 = i % panels * mr;
      const index_t n = std::clamp<index_t>(Kg - r0, 0, mr);  // the panel's rows past Kg are zero
      for (index_t c0 = 0; c0 < Cg; c0 += kLanes) {
        const index_t lanes = std::min(kLanes, Cg - c0);
        for (index_t r = 0; r < n; ++r)
          tf.filter(w + ((group * Kg + r0 + r) * Cg + c0) * R * S, lanes, values.data() + r * tf.points * lanes,
                    work.data());
        for (index_t pt = 0; pt < tf.points; ++pt) {
          const T* filters[gemm::kMaxMR];
          for (index_t r = 0; r < n; ++r) filters[r] = values.data() + (r * tf.points + pt) * lanes;
          gemm::interleave(filters, n, lanes, mr, u + (pt * g.groups + group) * block + r0 * Cg + c0 * mr);
        }
      }
    }
  });
  // Rows past the last whole panel (a narrow tile's, never read) are zero, as the padded rows are:
  // U's bytes depend on the weight alone.
  for (index_t i = 0; i < tf.points * g.groups; ++i)
    std::fill(u + i * block + panels * mr * Cg, u + (i + 1) * block, T(0));
}

// Complex spectra (FFT's) in two passes, so that U is written once, in order: the transforms of
// every filter go to a point-major array (whole cache lines per filter block), then each point's
// A is packed from its few kilobytes there. (Scattered straight into U, each cache line of a panel
// was written a value at a time from 12 filters apart: a 7x7 layer's FFT spectra took longer than
// its convolution.)
template <class T, class Transform>
void transform_filters(const TiledGeometry& g, const Transform& tf, const T* w, index_t R, index_t S, T* u) {
  if (tf.parts == 1) return transform_real_filters(g, tf, w, R, S, u);
  const index_t Kg = g.K / g.groups, Cg = g.C / g.groups, parts = tf.parts, kc = parts * Cg;
  const index_t mr = filter_panel_rows<T>(g, tf), rows = filter_rows(g, tf), block = rows * kc;
  // spectra[pt][k][part][c]: filter (k, c)'s value at point pt.
  const index_t per_point = g.K * parts * Cg;
  // The calling thread's transform scratch: the convolution that follows reuses it.
  T* const spectra = thread_scratch<T>(tf.points * per_point, ScratchSlot::transformed_tiles);
  parallel_for(0, g.K, 1, [&](index_t lo, index_t hi) {
    std::vector<T> values(tf.points * parts * kLanes), work(tf.work_size(kLanes));
    for (index_t k = lo; k < hi; ++k)
      for (index_t c0 = 0; c0 < Cg; c0 += kLanes) {
        const index_t lanes = std::min(kLanes, Cg - c0);
        tf.filter(w + (k * Cg + c0) * R * S, lanes, values.data(), work.data());
        for (index_t pt = 0; pt < tf.points; ++pt)
          for (index_t part = 0; part < parts; ++part) {
            const T* from = values.data() + (pt * parts + part) * lanes;
            T* to = spectra + pt * per_point + (k * parts + part) * Cg + c0;
            for (index_t l = 0; l < lanes; ++l) to[l] = from[l];  // (std::copy_n called memmove per 64 bytes)
          }
      }
  });
  // A(row, col) of one point and group, rows (re: k, im: Kg + k) x columns (re: c, im: Cg + c),
  // is the real form of the complex product, [[re, -im], [im, re]]; rows past 2 Kg are zero.
  // In the packed order it is a[row / mr * kc * mr + col * mr + row % mr].
  parallel_for(0, tf.points * g.groups, 1, [&](index_t lo, index_t hi) {
    for (index_t i = lo; i < hi; ++i) {
      const index_t pt = i / g.groups, group = i % g.groups;
      const T* spectrum = spectra + pt * per_point + group * Kg * parts * Cg;
      T* a = u + i * block;
      std::fill(a + rows / mr * mr * kc, a + block, T(0));  // past the last whole panel (never read)
      for (index_t row = 0; row < rows / mr * mr; ++row) {
        T* panel = a + row / mr * kc * mr + row % mr;
        const index_t k = row % Kg, part = row / Kg;  // part 0: a real row, 1: an imaginary one
        if (part >= parts) {
          for (index_t col = 0; col < kc; ++col) panel[col * mr] = T(0);
          continue;
        }
        const T* re = spectrum + k * parts * Cg;  // and im = re + Cg
        const T* left = part == 0 ? re : re + Cg;
        for (index_t c = 0; c < Cg; ++c) panel[c * mr] = left[c];
        const T* right = part == 0 ? re + Cg : re;
        const T sign = part == 0 ? T(-1) : T(1);
        for (index_t c = 0; c < Cg; ++c) panel[(Cg + c) * mr] = sign * right[c];
      }
    }
  });
}

// A batch of planes (H x W, `channels` per image) as a transform reads it: cut into tiles of
// m_h x m_w outputs, tile (p0, q0) reading its patch from (top + p0, left + q0), through
// zero-padded copies of rows x ld (whole tiles plus kReadSlack: no bounds to check), or from
// the planes themselves where reads_in_place allows.
struct PlaneCut {
  index_t H, W, top, left, tiles_h, tiles_w, m_h, m_w, rows, ld;
  index_t step_h = 1, step_w = 1;  // stride phases (TiledGeometry)
  bool in_place = false;           // patches read from the planes themselves, not copies
  index_t phases() const { return step_h * step_w; }
  index_t per_image() const { return tiles_h * tiles_w; }
  index_t size() const { return rows * ld; }
};

// Whether a cut's patches can be read from the planes themselves, with no padded copy: its tiles
// cover each plane exactly (no padding, no stride phases) and a tile's row read, `row_reads`
// values, stays within the tile. The weight gradient's dy tiles are so wherever the tile size
// divides the plane's sides (Winograd reads a tile's values only); skipping their copy ran
// resnet20's 3x3 weight gradients (F(4x4)) 3-4% faster, resnet50_3x3's (F(2x2)) 2% (the copy's
// reads from memory then fall to the transform's loads).
inline bool reads_in_place(const PlaneCut& cut, index_t row_reads) {
  return cut.top == 0 && cut.left == 0 && cut.phases() == 1 && cut.tiles_h * cut.m_h == cut.H &&
         cut.tiles_w * cut.m_w == cut.W && row_reads <= cut.m_w;
}

// The input planes of a convolution as `tf` reads them.
template <class Transform>
PlaneCut input_planes(const TiledGeometry& g, const Transform& tf) {
  const index_t th = ceil_div(g.P, tf.m_h), tw = ceil_div(g.Q, tf.m_w);
  return {g.H, g.W, g.top, g.left, th, tw, tf.m_h, tf.m_w, th * tf.m_h + tf.alpha_h - tf.m_h,
          tw * tf.m_w + tf.alpha_w - tf.m_w + kReadSlack, g.step_h, g.step_w};
}

// For every channel c of `source` (N x channels planes, or of their stride phases: channels
// counts phases): zero-padded copies of the planes that tiles [t0, t0 + nt) lie in (none for a
// cut read in place), then apply(c, l0, patches, work) for the tiles l0 .. l0 + lanes, up to
// `count` (lanes past nt repeat the last tile). Channels are spread over the threads.
template <class T, class Apply>
void for_each_patch_group(const PlaneCut& cut, const T* source, index_t channels, index_t t0, index_t nt,
                          index_t count, index_t lanes, index_t work_size, const Apply& apply) {
  const index_t first = t0 / cut.per_image();
  // Where each tile's patch starts, from its first image's planes: the copies (an image's
  // every size() values, rows ld apart) or, in place, the source (channels planes an image).
  const index_t image_step = cut.in_place ? channels * cut.H * cut.W : cut.size();
  const index_t ld = cut.in_place ? cut.W : cut.ld;
  std::vector<index_t> patch(count);
  for (index_t t = 0; t < count; ++t) {
    const index_t tile = t0 + std::min(t, nt - 1);
    patch[t] = (tile / cut.per_image() - first) * image_step + tile / cut.tiles_w % cut.tiles_h * cut.m_h * ld +
               tile % cut.tiles_w * cut.m_w;
  }
  const auto apply_groups = [&](index_t c, const T* planes, T* work) {
    const T* origin[kLanes];
    for (index_t l0 = 0; l0 < count; l0 += lanes) {
      for (index_t l = 0; l < lanes; ++l) origin[l] = planes + patch[l0 + l];
      apply(c, l0, PatchSource<T>{origin, ld}, work);
    }
  };
  if (cut.in_place) {
    parallel_for(0, channels, 1, [&](index_t lo, index_t hi) {
      T* work = thread_scratch<T>(work_size, ScratchSlot::transform_work);
      for (index_t c = lo; c < hi; ++c) apply_groups(c, source + (first * channels + c) * cut.H * cut.W, work);
    });
    return;
  }
  // Only the rows the block's tiles read are copied: a block can hold a few rows of tiles of a
  // large image (AlexNet's conv1: 24 of 196 tiles), and copying whole planes per block had
  // copied each plane eight times.
  const index_t images = (t0 + nt - 1) / cut.per_image() - first + 1;
  std::vector<Range> rows(images);
  for (index_t i = 0; i < images; ++i) {
    const index_t image_t0 = (first + i) * cut.per_image();
    const index_t lo = std::max(t0, image_t0) - image_t0, hi = std::min(t0 + nt, image_t0 + cut.per_image()) - image_t0;
    rows[i] = {lo / cut.tiles_w * cut.m_h, (hi - 1) / cut.tiles_w * cut.m_h + cut.rows - (cut.tiles_h - 1) * cut.m_h};
  }
  // The input rows that the copy of image i's channel c reads, asked for while the plane before
  // it is copied: planes copied one after the other lie a whole image apart, where the hardware
  // prefetcher does not look. (Stride phases, whose rows interleave, are left to the hardware.)
  // With the output prefetch below, measured in one process against the build without either
  // (builds alternated): resnet20_c16's forward 0.96x the time, conv5x5's 0.97x, vgg_conv3's
  // 0.985x, resnet20_c64's 1.0x, resnet20_c32's 0.91x with its input just read from memory;
  // ResNet-20's training step 0.98x.
  const auto prefetch_copy = [&](index_t i, index_t c) {
    const index_t h0 = std::max<index_t>(cut.top + rows[i].lo, 0), h1 = std::min(cut.top + rows[i].hi, cut.H);
    if (cut.phases() == 1 && h0 < h1)
      prefetch_span(source + (((first + i) * channels + c) * cut.H + h0) * cut.W, (h1 - h0) * cut.W);
  };
  parallel_for(0, channels, 1, [&](index_t lo, index_t hi) {
    T* planes = thread_scratch<T>(images * cut.size() + work_size, ScratchSlot::transform_work);
    T* work = planes + images * cut.size();
    for (index_t c = lo; c < hi; ++c) {
      const index_t plane = c / cut.phases(), a = c % cut.phases() / cut.step_w, b = c % cut.step_w;
      for (index_t i = 0; i < images; ++i) {
        if (i + 1 < images) prefetch_copy(i + 1, c);
        else if (c + 1 < hi) prefetch_copy(0, c + 1);
        copy_padded_rows(source + ((first + i) * (channels / cut.phases()) + plane) * cut.H * cut.W, cut.H, cut.W,
                         cut.top + a + rows[i].lo * cut.step_h, cut.left + b, rows[i].hi - rows[i].lo, cut.ld,
                         planes + i * cut.size() + rows[i].lo * cut.ld, cut.step_h, cut.step_w);
      }
      apply_groups(c, planes, work);
    }
  });
}

// How a call cuts its tiles: tile t is image t / per_image, tile row t / tiles_w % tiles_h,
// tile column t % tiles_w; blocks of `block` tiles, each with its V and M.
//
// V and M hold a block's tiles in panels of nr (the micro-kernel's B width) and, per panel, a
// row per channel (parts rows for complex points) with every point's nr lanes one after the
// other: [g][panel][row][pt][nr]. A transform so reads and writes one contiguous run per
// channel and panel; point pt's GEMM operand is every row_stride-th run (the micro-kernel
// takes that B step, and that C row stride).
template <class T, class Transform>
struct Blocking {
  const TiledGeometry& g;
  const Transform& tf;
  gemm::KernelSet<T> ks;
  PlaneCut cut;
  index_t tiles_h, tiles_w, per_image, tiles, block, panels, lanes, row_stride;

  Blocking(const TiledGeometry& geometry, const Transform& transform)
      : g(geometry), tf(transform), ks(point_kernels<T>(geometry, transform)), cut(input_planes(geometry, transform)) {
    tiles_h = cut.tiles_h, tiles_w = cut.tiles_w, per_image = cut.per_image();
    tiles = g.N * per_image;
    lanes = std::min<index_t>(kLanes, ks.nr);  // a lane group never straddles two B panels
    const index_t tile_bytes = tf.points * tf.parts * (g.C + g.K) * static_cast<index_t>(sizeof(T));
    const index_t filter_bytes = transformed_filters_size(g, tf) * static_cast<index_t>(sizeof(T));
    block = block_tiles(tiles, std::max<index_t>(tf.block_bytes(filter_bytes) / tile_bytes, ks.nr), ks.nr);
    panels = block / ks.nr;
    row_stride = odd_lines<T>(tf.points * ks.nr);  // the micro-kernel's B steps over every L1 set
  }
  index_t blocks() const { return ceil_div(tiles, block); }
  index_t v_size() const { return panels * tf.parts * g.C * row_stride; }
  index_t m_size() const { return panels * tf.parts * g.K * row_stride; }
  // The first row of group grp's panel p in V (channels) or M (output channels).
  index_t v_row(index_t grp, index_t p) const { return (grp * panels + p) * tf.parts * (g.C / g.groups) * row_stride; }
  index_t m_row(index_t grp, index_t p) const { return (grp * panels + p) * tf.parts * (g.K / g.groups) * row_stride; }
  index_t work_size() const {
    return std::max(tf.alpha_h * tf.alpha_w, tf.m_h * tf.m_w) * lanes + tf.work_size(lanes);
  }
  void locate(index_t t, index_t& n, index_t& p0, index_t& q0) const {
    n = t / per_image;
    p0 = t / tiles_w % tiles_h * tf.m_h;
    q0 = t % tiles_w * tf.m_w;
  }
};

// V of tiles [t0, t0 + nt). A lane group past the last tile repeats it (its columns of M are
// computed and never read).
template <class T, class Transform>
void transform_input(const Blocking<T, Transform>& bk, const T* x, index_t t0, index_t nt, T* v) {
  const index_t Cg = bk.g.C / bk.g.groups, nr = bk.ks.nr;
  for_each_patch_group(bk.cut, x, bk.g.C, t0, nt, round_up(nt, nr), bk.lanes, bk.work_size(),
                       [&](index_t c, index_t l0, const PatchSource<T>& patches, T* work) {
                         T* out = v + bk.v_row(c / Cg, l0 / nr) + (c % Cg) * bk.row_stride + l0 % nr;
                         bk.tf.input_tiles(patches, bk.lanes, out, nr, Cg * bk.row_stride, work);
                       });
}

// M[pt] = U[pt] V[pt] per group: U is the micro-kernel's packed A already, V its B (steps
// row_stride apart), and it writes M's rows row_stride apart.
template <class T, class Transform>
void multiply_points(const Blocking<T, Transform>& bk, const T* u, const T* v, index_t nt, T* m) {
  const TiledGeometry& g = bk.g;
  const index_t parts = bk.tf.parts, kc = parts * (g.C / g.groups), rows = parts * (g.K / g.groups);
  const index_t mr = bk.ks.mr, nr = bk.ks.nr, u_block = filter_rows(g, bk.tf) * kc, ld = bk.row_stride;
  parallel_for(0, bk.tf.points * g.groups, 1, [&](index_t lo, index_t hi) {
    for (index_t i = lo; i < hi; ++i) {
      const index_t pt = i / g.groups, grp = i % g.groups;
      const T* a = u + i * u_block;
      for (index_t p = 0; p < ceil_div(nt, nr); ++p) {
        const T* b = v + bk.v_row(grp, p) + pt * nr;
        T* c = m + bk.m_row(grp, p) + pt * nr;
        for (index_t r0 = 0; r0 < rows; r0 += mr) {
          gemm::TileEpilogue<T> ep;
          ep.rows = static_cast<int>(std::min(mr, rows - r0));
          bk.ks.kernel(kc, a + r0 * kc, b, ld, c + r0 * ld, ld, ep);
        }
      }
    }
  });
}

// dst[j f + b] = phases[b][j] for j < cols, b < f: a row of f column phases interleaved.
template <class T>
void interleave_phases(const T* const* phases, index_t cols, index_t f, T* dst) {
  for (index_t j = 0; j < cols; ++j)
    for (index_t b = 0; b < f; ++b) dst[j * f + b] = phases[b][j];
}

// transform_output_shuffled's way for a transform with no paired store: lane group's f column
// phases (channels phases[b] of M) to the buffer `staged` (f x lanes tiles, in L1: the transform
// stores a tile's row as contiguous values), then each lane's rows interleaved into y's, which
// start at targets[l].dst, row_step apart. `row`: f pointers of the caller's.
template <class T, class Transform>
void interleave_through_buffer(const Blocking<T, Transform>& bk, const T* const* phases, const TileTarget<T>* targets,
                               index_t row_step, const T* bias, bool relu, T* staged, T* work, const T** row) {
  const index_t f = bk.g.shuffle, lanes = bk.lanes, m_w = bk.tf.m_w, tile = bk.tf.m_h * m_w;
  TileTarget<T> in_buffer[kLanes];
  for (index_t b = 0; b < f; ++b) {
    for (index_t l = 0; l < lanes; ++l)
      in_buffer[l] = {staged + (b * lanes + l) * tile, targets[l].rows, targets[l].cols};
    bk.tf.output_tiles(phases[b], bk.ks.nr, bk.g.K / bk.g.groups * bk.row_stride, lanes, in_buffer, m_w,
                       bias ? bias[b] : T(0), relu, work);
  }
  for (index_t l = 0; l < lanes; ++l)
    for (index_t i = 0; i < targets[l].rows; ++i) {
      for (index_t b = 0; b < f; ++b) row[b] = staged + (b * lanes + l) * tile + i * m_w;
      interleave_phases(row, targets[l].cols, f, targets[l].dst + i * row_step);
    }
}

// transform_output for a pixel-shuffled output (TiledGeometry's `shuffle`, f): per channel of y,
// row phase a and group of lanes, the f column phases' tiles (output channels (k f + a) f + b)
// are interleaved into y's rows: by the transform itself where it can (output_tile_pairs:
// Winograd's vector transforms, f = 2), else through a buffer. Bias: per output channel of the
// convolution (K of them).
template <class T, class Transform>
void transform_output_shuffled(const Blocking<T, Transform>& bk, const T* m, const T* bias, bool relu, index_t t0,
                               index_t nt, T* y) {
  const TiledGeometry& g = bk.g;
  const index_t f = g.shuffle, Kg = g.K / g.groups, nr = bk.ks.nr, lanes = bk.lanes;
  const index_t m_h = bk.tf.m_h, m_w = bk.tf.m_w, ld = g.Q * f, plane = g.P * f * ld;
  std::vector<TileTarget<T>> place(round_up(nt, lanes), TileTarget<T>{y, 0, 0});  // in y's channel 0, row phase 0
  for (index_t t = 0; t < nt; ++t) {
    index_t n, p0, q0;
    bk.locate(t0 + t, n, p0, q0);
    place[t] = {y + n * (g.K / (f * f)) * plane + p0 * f * ld + q0 * f, std::min(m_h, g.P - p0),
                std::min(m_w, g.Q - q0)};
  }
  parallel_for(0, g.K / f, 1, [&](index_t lo, index_t hi) {  // (channel of y, row phase) pairs
    T* staged = thread_scratch<T>(f * lanes * m_h * m_w + bk.work_size(), ScratchSlot::transform_work);
    TileTarget<T> target[kLanes];
    std::vector<const T*> phase(f), row(f);
    for (index_t ka = lo; ka < hi; ++ka)
      for (index_t l0 = 0; l0 < nt; l0 += lanes) {
        for (index_t l = 0; l < lanes; ++l) {
          const TileTarget<T>& p = place[l0 + l];
          target[l] = {p.dst + ka / f * plane + ka % f * ld, p.rows, p.cols};
        }
        for (index_t b = 0; b < f; ++b) {
          const index_t k = ka * f + b;
          phase[b] = m + bk.m_row(k / Kg, l0 / nr) + (k % Kg) * bk.row_stride + l0 % nr;
        }
        const T* phase_bias = bias ? bias + ka * f : nullptr;
        if (f == 2 && bk.tf.output_tile_pairs(phase.data(), nr, lanes, target, f * ld, phase_bias, relu)) continue;
        interleave_through_buffer(bk, phase.data(), target, f * ld, phase_bias, relu, staged,
                                  staged + f * lanes * m_h * m_w, row.data());
      }
  });
}

// Asks for the lines of y that the lane group from tile `first` will write, in the output
// channel channel_offset values past place's (the group's span of y, when within 16 KiB: its
// tile rows in one image); the caller asks two groups ahead. Measured together with the input
// copy's prefetch: for_each_patch_group gives the figures. (A prefetch of each point's B operand
// while the point before was multiplied made resnet20_c16's forward 1.05x slower: removed.)
template <class T>
void prefetch_group_output(const std::vector<TileTarget<T>>& place, index_t first, index_t nt, index_t lanes,
                           index_t channel_offset, index_t ld) {
  if (first >= nt) return;
  const TileTarget<T>& last = place[std::min(nt, first + lanes) - 1];
  T* begin = place[first].dst + channel_offset;
  const T* end = last.dst + channel_offset + (last.rows - 1) * ld + last.cols;
  constexpr index_t kMostValues = (16 << 10) / static_cast<index_t>(sizeof(T));
  if (end > begin && end - begin <= kMostValues) prefetch_span(begin, end - begin);
}

// y[n, k] tiles of [t0, t0 + nt) from M (+ bias, residual, ReLU), an output channel at a time
// (its plane is written in order). `residual`: laid out as y, or nullptr.
template <class T, class Transform>
void transform_output(const Blocking<T, Transform>& bk, const T* m, const T* bias, const T* residual, bool relu,
                      index_t t0, index_t nt, T* y) {
  const TiledGeometry& g = bk.g;
  if (g.shuffle > 1) return transform_output_shuffled(bk, m, bias, relu, t0, nt, y);  // no residual there
  const index_t Kg = g.K / g.groups, nr = bk.ks.nr, plane = g.P * g.Q;
  std::vector<TileTarget<T>> place(round_up(nt, bk.lanes), TileTarget<T>{y, 0, 0});  // in output channel 0
  for (index_t t = 0; t < nt; ++t) {
    index_t n, p0, q0;
    bk.locate(t0 + t, n, p0, q0);
    const index_t at = n * g.K * plane + p0 * g.Q + q0;
    place[t] = {y + at, std::min(bk.tf.m_h, g.P - p0), std::min(bk.tf.m_w, g.Q - q0),
                residual ? residual + at : nullptr};
  }
  parallel_for(0, g.K, 1, [&](index_t lo, index_t hi) {
    T* work = thread_scratch<T>(bk.work_size(), ScratchSlot::transform_work);
    TileTarget<T> target[kLanes];
    for (index_t k = lo; k < hi; ++k)
      for (index_t l0 = 0; l0 < nt; l0 += bk.lanes) {
        for (index_t l = 0; l < bk.lanes; ++l) {
          const TileTarget<T>& p = place[l0 + l];
          target[l] = {p.dst + k * plane, p.rows, p.cols, p.residual ? p.residual + k * plane : nullptr};
        }
        prefetch_group_output(place, l0 + 2 * bk.lanes, nt, bk.lanes, k * plane, g.Q);
        const T* in = m + bk.m_row(k / Kg, l0 / nr) + (k % Kg) * bk.row_stride + l0 % nr;
        bk.tf.output_tiles(in, nr, Kg * bk.row_stride, bk.lanes, target, g.Q, bias ? bias[k] : T(0), relu, work);
      }
  });
}

// The weight gradient's per-point sums over every tile (see winograd.h): for each point and
// group, dU[pt] (Kg x Cg) = GY[pt] (Kg x tiles) V[pt]^T (tiles x Cg), where V holds the input
// patches' transforms (as in the forward) and GY the gradient tiles' (tf.gradient_tiles). A
// block's V and GY are [pt][part][channel][tile], so that V^T is a column-major B for the GEMM.
// Complex points (parts == 2) sum V conj(GY): four real GEMMs, (Gr Vr + Gi Vi) + i (Gr Vi - Gi Vr).
//
// Each thread takes an equal run of tiles, in blocks, and sums into its own dU (thread 0 into
// `du`, [pt][part][g][Kg][Cg]); the others' are added in thread order at the end, spread over the
// threads, so the result depends only on the thread count. (Blocks dealt out whole had left one
// thread a quarter more tiles on resnet50_3x3, and a per-call buffer per thread, merged under a
// lock, had cost page faults and a serial sum: a fifth of its time waiting.)
template <class T, class Transform>
void weight_gradient_points(const TiledGeometry& g, const Transform& tf, const T* x, const T* gy, T* du) {
  const index_t Kg = g.K / g.groups, Cg = g.C / g.groups, parts = tf.parts, du_size = tf.points * parts * g.K * Cg;
  if (g.N == 0 || g.P == 0 || g.Q == 0) return std::fill(du, du + du_size, T(0));
  // x as the forward reads it; grad_y in whole tiles, read in place where they cover its planes.
  const PlaneCut x_cut = input_planes(g, tf);
  PlaneCut gy_cut{g.P, g.Q, 0, 0, x_cut.tiles_h, x_cut.tiles_w, tf.m_h, tf.m_w, x_cut.tiles_h * tf.m_h,
                  x_cut.tiles_w * tf.m_w + kReadSlack};
  gy_cut.in_place = reads_in_place(gy_cut, tf.gradient_row_reads());
  const index_t tiles = g.N * x_cut.per_image(), threads = std::min<index_t>(num_threads(), tiles);
  const index_t tile_bytes = tf.points * parts * (g.C + g.K) * static_cast<index_t>(sizeof(T));
  const index_t most = std::max<index_t>(kWeightGradientBlockBytes / tile_bytes, kLanes);
  const index_t per_thread = ceil_div(tiles, threads);
  const index_t block = round_up(ceil_div(per_thread, ceil_div(per_thread, most)), kLanes);
  // A point's part is a [channel][tile] matrix.
  const index_t v_part = odd_lines<T>(g.C * block), gy_part = odd_lines<T>(g.K * block);
  const index_t work_size = tf.alpha_h * tf.alpha_w * kLanes * 2 + tf.work_size(kLanes);
  T* partials = threads > 1 ? thread_scratch<T>((threads - 1) * du_size, ScratchSlot::partial_sums) : nullptr;

  parallel_for(0, threads, 1, [&](index_t t_lo, index_t t_hi) {
    T* v = thread_scratch<T>(tf.points * parts * (v_part + gy_part), ScratchSlot::transformed_tiles);
    T* gt = v + tf.points * parts * v_part;
    for (index_t t = t_lo; t < t_hi; ++t) {
      T* sums = t == 0 ? du : partials + (t - 1) * du_size;  // every thread has tiles: written, not added to, first
      for (index_t begin = tiles * t / threads, end = tiles * (t + 1) / threads, t0 = begin; t0 < end; t0 += block) {
        const index_t nt = std::min(block, end - t0), count = round_up(nt, kLanes);
        for_each_patch_group(x_cut, x, g.C, t0, nt, count, kLanes, work_size,
                             [&](index_t c, index_t l0, const PatchSource<T>& patches, T* work) {
                               tf.input_tiles(patches, kLanes, v + c * block + l0, parts * v_part, v_part, work);
                             });
        for_each_patch_group(gy_cut, gy, g.K, t0, nt, count, kLanes, work_size,
                             [&](index_t k, index_t l0, const PatchSource<T>& patches, T* work) {
                               tf.gradient_tiles(patches, kLanes, gt + k * block + l0, parts * gy_part, gy_part, work);
                             });
        for (index_t i = 0; i < tf.points * g.groups; ++i) {
          const index_t pt = i / g.groups, grp = i % g.groups;
          // GY's part pg times V's part pv adds to dU's part pg ^ pv, negated for Gi Vr; each part's
          // first product (pg == 0) in the thread's first block overwrites.
          for (index_t pg = 0; pg < parts; ++pg)
            for (index_t pv = 0; pv < parts; ++pv) {
              const T* gy_tiles = gt + (pt * parts + pg) * gy_part + grp * Kg * block;
              const T* v_tiles = v + (pt * parts + pv) * v_part + grp * Cg * block;
              const MatrixView<const T> a{gy_tiles, Kg, nt, block, 1, 0, 0, 0, 0};
              const MatrixView<const T> bt{v_tiles, nt, Cg, 1, block, 0, 0, 0, 0};
              T* d = sums + ((pt * parts + (pg ^ pv)) * g.groups + grp) * Kg * Cg;
              const T beta = t0 == begin && pg == 0 ? T(0) : T(1);
              gemm::gemm<T>(a, bt, dense_matrix(d, Kg, Cg), gemm::Epilogue<T>{pg > pv ? T(-1) : T(1), beta});
            }
        }
      }
    }
  });
  parallel_for(0, du_size, 1 << 14, [&](index_t lo, index_t hi) {
    for (index_t t = 1; t < threads; ++t)
      for (index_t i = lo; i < hi; ++i) du[i] += partials[(t - 1) * du_size + i];
  });
}

}  // namespace tiled

// y = conv(x, w) (+ bias, residual, ReLU) through transform `tf`, for filters u already
// transformed by tiled::transform_filters (callers that reuse a weight transform it once:
// ops.conv_weight_cache). `residual`: laid out as y, or nullptr. Each stage is a parallel_for:
// inline when the blocks already run on every thread, spread over the threads when one block
// is all there is (a few tiles and many channels).
template <class T, class Transform>
void tiled_conv_transformed(const TiledGeometry& g, const Transform& tf, const T* x, const T* u, const T* bias,
                            const T* residual, bool relu, T* y) {
  if (g.N == 0 || g.P == 0 || g.Q == 0) return;
  const tiled::Blocking<T, Transform> bk(g, tf);
  parallel_for_dynamic(0, bk.blocks(), [&](index_t lo, index_t hi) {
    T* v = thread_scratch<T>(bk.v_size() + bk.m_size(), ScratchSlot::transformed_tiles);
    T* m = v + bk.v_size();
    for (index_t b = lo; b < hi; ++b) {
      const index_t t0 = b * bk.block, nt = std::min(bk.block, bk.tiles - t0);
      tiled::transform_input(bk, x, t0, nt, v);
      tiled::multiply_points(bk, u, v, nt, m);
      tiled::transform_output(bk, m, bias, residual, relu, t0, nt, y);
    }
  });
}

// y = conv(x, w) (+ bias, residual, ReLU) for weights w (K, C/G, R, S), through transform `tf`.
template <class T, class Transform>
void tiled_conv(const TiledGeometry& g, const Transform& tf, const T* x, const T* w, index_t R, index_t S,
                const T* bias, const T* residual, bool relu, T* y) {
  if (g.N == 0 || g.P == 0 || g.Q == 0) return;
  const std::unique_ptr<T[]> u(new T[tiled::transformed_filters_size(g, tf)]);  // transform_filters fills it
  tiled::transform_filters(g, tf, w, R, S, u.get());
  tiled_conv_transformed(g, tf, x, u.get(), bias, residual, relu, y);
}

}  // namespace fastconv::conv::cpu
