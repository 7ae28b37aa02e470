// conv2d as im2col + GEMM, with its two backward kernels.
//
// The batch is processed in chunks whose column matrix fits kColumnBudgetBytes: several whole
// images when an image's columns are small, else a band of output rows of one image. For a
// chunk the column matrix is [C*R*S, columns]; the GEMM reads the output and output-gradient
// tensors in place as [K, columns] matrices with grouped columns (core/view.h), so no layout
// transform is ever copied. The input gradient's col2im needs whole images (neighbouring
// bands add into the same input rows), so it never splits one.
//
// Threads: when the chunks split evenly enough, each thread takes its own chunks through
// im2col and a single-threaded GEMM (one fork/join per call). Otherwise the chunks run one
// after another, each im2col and GEMM threaded inside (two fork/joins per chunk). On a busy
// machine every join waits for the slowest thread's next time slice, so the first way ran
// resnet20's 16-channel layers 3-4x faster there; on a quiet one the two are within ~10%.
#include <algorithm>
#include <cstring>
#include <vector>

#include "conv/cpu/kernels.h"
#include "conv/cpu/packing.h"
#include "core/parallel.h"
#include "core/scratch.h"
#include "gemm/gemm.h"

namespace fastconv::conv::cpu {

namespace {

// Output rows [p0, p0 + rows) of images [n0, n0 + nb): the columns built at once. A chunk
// of several images has rows == P.
struct Chunk {
  index_t n0, nb, p0, rows;
};

// col[(c, r, s), img * rows * Q + (p - p0) * Q + q] = x[img, c, p*sh - pt + r*dh, q*sw - pl + s*dw],
// or 0, for the chunk's images and output rows p; x points at image 0 of the batch.
template <class T>
FASTCONV_NO_LIBRARY_CALLS void im2col(const Conv2dShape& s, const T* x, const Chunk& chunk, T* col) {
  const index_t band = chunk.rows * s.Q, ld = chunk.nb * band, RS = s.R * s.S;
  const index_t p_end = chunk.p0 + chunk.rows;
  const auto& p = s.p;
  parallel_for(0, s.C * RS, 1, [&](index_t lo, index_t hi) {
    for (index_t row = lo; row < hi; ++row) {
      const index_t c = row / RS, r = row / s.S % s.R, k = row % s.S;
      const index_t w_offset = k * p.dilation[1] - p.pad_begin[1];
      const Range qs = valid_range(w_offset, p.stride[1], s.W, s.Q);
      const Range valid = valid_range(r * p.dilation[0] - p.pad_begin[0], p.stride[0], s.H, s.P);
      const index_t p_lo = std::clamp(valid.lo, chunk.p0, p_end), p_hi = std::clamp(valid.hi, p_lo, p_end);
      for (index_t img = 0; img < chunk.nb; ++img) {
        const T* plane = x + ((chunk.n0 + img) * s.C + c) * s.H * s.W;
        T* dst = col + row * ld + img * band - chunk.p0 * s.Q;  // indexed by absolute output row
        std::fill(dst + chunk.p0 * s.Q, dst + p_lo * s.Q, T(0));
        for (index_t op = p_lo; op < p_hi; ++op) {
          const T* src = plane + (op * p.stride[0] - p.pad_begin[0] + r * p.dilation[0]) * s.W + w_offset;
          copy_row_padded(dst + op * s.Q, src, qs, s.Q, p.stride[1]);
        }
        std::fill(dst + p_hi * s.Q, dst + p_end * s.Q, T(0));
      }
    }
  });
}

// The phases' extent: every tap's block, and every pixel (rows past the last window, which
// no tap reaches, read zeros).
struct PhaseLayout {
  index_t sh, sw, I, M;  // sh * sw phases of I x M cells
  explicit PhaseLayout(const Conv2dShape& s)
      : sh(s.p.stride[0]),
        sw(s.p.stride[1]),
        I(std::max(s.P + (s.R - 1) / sh, ceil_div(s.H + s.p.pad_begin[0], sh))),
        M(std::max(s.Q + (s.S - 1) / sw, ceil_div(s.W + s.p.pad_begin[1], sw))) {}
  index_t size() const { return sh * sw * I * M; }
};

// col2im for one plane when the stride is > 1 (dilation 1), the transposed convolution's
// upsampling case. Adding each tap's row into the plane strides its stores and adds every
// pixel R*S/(sh*sw) times. Instead: tap (r, k) lands on one phase (r % sh, k % sw) of the
// plane, at (op + r / sh, q + k / sw) in that phase's sub-plane, so the taps are summed there
// with contiguous adds (the phases fit in L1), and the plane is written once from its phases
// (an interleave of two rows when sw == 2). Each tap adds its whole P x Q block: entries that
// fall in the padding land in phase cells that no pixel reads, which spares the bounds.
template <class T>
void col2im_plane_by_phase(const Conv2dShape& s, const T* __restrict col, index_t ld, T* __restrict plane,
                           T* __restrict phases) {
  const PhaseLayout L(s);
  const index_t phase_size = L.I * L.M, pt = s.p.pad_begin[0], pl = s.p.pad_begin[1];
  std::fill(phases, phases + L.size(), T(0));
  for (index_t r = 0; r < s.R; ++r)
    for (index_t k = 0; k < s.S; ++k) {
      const T* __restrict src = col + (r * s.S + k) * ld;
      T* __restrict phase = phases + ((r % L.sh) * L.sw + k % L.sw) * phase_size + (r / L.sh) * L.M + k / L.sw;
      for (index_t op = 0; op < s.P; ++op)
        for (index_t q = 0; q < s.Q; ++q) phase[op * L.M + q] += src[op * s.Q + q];
    }
  for (index_t h = 0; h < s.H; ++h) {
    const index_t eh = h + pt;
    const T* rows = phases + (eh % L.sh) * L.sw * phase_size + (eh / L.sh) * L.M;  // phase b at + b * phase_size
    T* out = plane + h * s.W;
    index_t w = 0;
    if (L.sw == 2) {  // the plain interleave of two rows vectorises
      for (; w < s.W && (w + pl) % 2; ++w) out[w] = rows[phase_size + (w + pl) / 2];
      const T* even = rows + (w + pl) / 2;
      const T* odd = even + phase_size;
      T* o = out + w;
      const index_t pairs = (s.W - w) / 2;
      for (index_t j = 0; j < pairs; ++j) {
        o[2 * j] = even[j];
        o[2 * j + 1] = odd[j];
      }
      w += 2 * pairs;
    }
    for (; w < s.W; ++w) out[w] = rows[((w + pl) % L.sw) * phase_size + (w + pl) / L.sw];
  }
}

// The adjoint of im2col for channels [c0, c0 + channels) of nb images: x[img, c, ...] = sum of
// the column entries that read it. col holds those channels' rows, [channels * R * S, nb * P * Q];
// x points at image 0 of the chunk.
template <class T>
void col2im(const Conv2dShape& s, const T* col, index_t nb, index_t c0, index_t channels, T* x) {
  const index_t PQ = s.pixels(), ld = nb * PQ;
  const auto& p = s.p;
  const bool by_phase = (p.stride[0] > 1 || p.stride[1] > 1) && p.dilation[0] == 1 && p.dilation[1] == 1;
  parallel_for(0, nb * channels, 1, [&](index_t lo, index_t hi) {
    T* phases = by_phase ? thread_scratch<T>(PhaseLayout(s).size(), ScratchSlot::col2im_phases) : nullptr;
    for (index_t i = lo; i < hi; ++i) {
      const index_t img = i / channels, c = i % channels;
      T* plane = x + (img * s.C + c0 + c) * s.H * s.W;
      const T* taps = col + c * s.R * s.S * ld + img * PQ;  // tap (r, k) at taps + (r * S + k) * ld
      if (by_phase) {
        col2im_plane_by_phase(s, taps, ld, plane, phases);
        continue;
      }
      std::fill(plane, plane + s.H * s.W, T(0));
      for (index_t r = 0; r < s.R; ++r)
        for (index_t k = 0; k < s.S; ++k) {
          const index_t w_offset = k * p.dilation[1] - p.pad_begin[1];
          const Range qs = valid_range(w_offset, p.stride[1], s.W, s.Q);
          const Range ps = valid_range(r * p.dilation[0] - p.pad_begin[0], p.stride[0], s.H, s.P);
          const T* src = taps + (r * s.S + k) * ld;
          for (index_t op = ps.lo; op < ps.hi; ++op) {
            T* dst = plane + (op * p.stride[0] - p.pad_begin[0] + r * p.dilation[0]) * s.W + w_offset;
            const T* row = src + op * s.Q;
            if (p.stride[1] == 1) {
              for (index_t q = qs.lo; q < qs.hi; ++q) dst[q] += row[q];
            } else {
              for (index_t q = qs.lo; q < qs.hi; ++q) dst[q * p.stride[1]] += row[q];
            }
          }
        }
    }
  });
}

// Chunks of `images` whole images (the last may have fewer) covering the batch, in order.
inline std::vector<Chunk> image_chunks(const Conv2dShape& s, index_t images) {
  images = std::clamp<index_t>(images, 1, std::max<index_t>(s.N, 1));
  std::vector<Chunk> chunks;
  for (index_t n0 = 0; n0 < s.N; n0 += images) chunks.push_back({n0, std::min(images, s.N - n0), 0, s.P});
  return chunks;
}

// The chunks that cover the batch, in order: as many whole images as keep the column matrix
// within budget, or when one image's columns exceed it, bands of output rows within budget, at
// least one row. Pointwise convolutions read the input as their columns: one chunk.
template <class T>
std::vector<Chunk> column_chunks(const Conv2dShape& s) {
  if (s.is_pointwise()) return {{0, s.N, 0, s.P}};
  const index_t per_row = s.column_rows() * s.Q * static_cast<index_t>(sizeof(T));
  const index_t budget = static_cast<index_t>(kColumnBudgetBytes);
  if (per_row * s.P <= budget) return image_chunks(s, budget / (per_row * s.P));
  const index_t rows = std::clamp<index_t>(budget / per_row, 1, s.P);
  const index_t per_image = ceil_div(s.P, rows), even_rows = ceil_div(s.P, per_image);  // equal bands
  std::vector<Chunk> chunks;
  for (index_t n = 0; n < s.N; ++n)
    for (index_t p0 = 0; p0 < s.P; p0 += even_rows) chunks.push_back({n, 1, p0, std::min(even_rows, s.P - p0)});
  return chunks;
}

// The weight gradient's chunks: column_chunks', except that a pointwise layer's images are
// shared out between the threads, each summing its share by a GEMM of its own. As one GEMM
// threaded inside (a 512 x 256 gradient over 6,272 pixels, rows split between the threads),
// each thread had packed all of the input's transpose (packing: 18% of a profile, 15% after).
template <class T>
std::vector<Chunk> weight_gradient_chunks(const Conv2dShape& s) {
  const index_t threads = num_threads();
  if (s.is_pointwise() && threads > 1 && s.N % threads == 0) return image_chunks(s, s.N / threads);
  return column_chunks<T>(s);
}

// The input gradient's chunks: col2im needs whole images, and its columns are made a block of
// channels at a time (below), so a chunk takes just enough images for a GEMM of at least
// kMinColumns columns. Each block's GEMM packs the chunk's grad_y again: fewer columns per chunk
// mean more channels per block and fewer packings (conv_transpose2d's 16x16 maps: 2 blocks of
// 16 channels per image instead of 4 blocks of 8 per pair of images). Pointwise layers write
// the gradient directly: one chunk.
inline std::vector<Chunk> input_gradient_chunks(const Conv2dShape& s) {
  constexpr index_t kMinColumns = 256;
  if (s.is_pointwise()) return {{0, s.N, 0, s.P}};
  return image_chunks(s, ceil_div(kMinColumns, std::max<index_t>(s.pixels(), 1)));
}

// Whether the chunks are split over threads (each thread its own chunks, its GEMMs serial):
// they must divide evenly, or be many enough that one chunk more is a small imbalance.
inline bool split_over_threads(index_t chunks) {
  const index_t t = num_threads();
  return t > 1 && chunks >= t && (chunks % t == 0 || chunks >= 4 * t);
}

// Calls chunk_fn(thread, chunk) on every chunk: split over the threads when
// split_over_threads, else in order on this thread (each chunk's kernels are then threaded
// inside). `thread` is in [0, num_threads()).
template <class ChunkFn>
void for_each_chunk(const std::vector<Chunk>& chunks, const ChunkFn& chunk_fn) {
  const index_t count = static_cast<index_t>(chunks.size());
  if (!split_over_threads(count)) {
    for (const Chunk& c : chunks) chunk_fn(0, c);
    return;
  }
  const int threads = num_threads();
  parallel_for(0, threads, 1, [&](index_t t_lo, index_t t_hi) {
    for (index_t t = t_lo; t < t_hi; ++t)
      for (index_t i = count * t / threads; i < count * (t + 1) / threads; ++i) chunk_fn(t, chunks[i]);
  });
}

// An NCHW tensor's part for a chunk, as a [channels, nb * rows * Q] matrix: each image's band
// of rows is one run of columns.
template <class T>
MatrixView<T> chunk_matrix(T* data, index_t channels, const Conv2dShape& s, const Chunk& c) {
  const index_t PQ = s.pixels(), band = c.rows * s.Q;
  return {data + c.n0 * channels * PQ + c.p0 * s.Q, channels, c.nb * band, PQ, 1, 0, 0, band, channels * PQ};
}

// The column matrix of a chunk: the input itself for pointwise convolutions, else im2col into
// the thread's scratch.
template <class T>
MatrixView<const T> columns(const Conv2dShape& s, const T* x, const Chunk& c) {
  if (s.is_pointwise()) return as_const(chunk_matrix(const_cast<T*>(x), s.C, s, c));
  const index_t cols = c.nb * c.rows * s.Q;
  T* col = thread_scratch<T>(s.column_rows() * cols, ScratchSlot::columns);
  im2col(s, x, c, col);
  return as_const(dense_matrix(col, s.column_rows(), cols));
}

// out = w col (+ bias, residual, ReLU) for one chunk, group by group; `residual` laid out as
// out (the same view of another array), or nullptr.
template <class T>
void forward_gemm(const Conv2dShape& s, const MatrixView<const T>& col, const std::vector<gemm::PackedA<T>>& weights,
                  const T* bias, const T* residual, bool relu, const MatrixView<T>& out) {
  const index_t G = s.groups(), Kg = s.K_per_group(), CRSg = s.column_rows() / G;
  for (index_t g = 0; g < G; ++g) {
    const MatrixView<T> out_g = out.row_block(g * Kg, Kg);
    const T* residual_g = residual ? residual + (out_g.data - out.data) : nullptr;
    gemm::gemm_packed(Kg, col.cols, CRSg, weights[g], gemm::PackMatrixB<T>{col.row_block(g * CRSg, CRSg)}, out_g,
                      gemm::Epilogue<T>{T(1), T(0), bias ? bias + g * Kg : nullptr, relu, residual_g});
  }
}

// With the chunks split over threads, each thread sums its chunks' weight gradient into a
// buffer of its own, and the buffers are added in thread order afterwards: no two threads
// write one value, and the result depends only on the thread count.
//
// The GEMM packs its pixel-major operand by transposing it; that should be the smaller one.
// With more column rows than output channels (conv_transpose2d's 4x4 stride-2 equivalent has
// 512 against 64) each thread instead sums dw^T = col dy^T into a [C*R*S, K] buffer, and the
// final reduction transposes.
//
// `with_columns(chunk, col)` runs on each chunk's column matrix while it is still in cache.
template <class T, class ColumnsFn>
void weight_gradient_im2col(const Conv2dShape& s, const T* x, const T* grad_y, T* grad_w,
                            const ColumnsFn& with_columns) {
  const index_t G = s.groups(), Kg = s.K_per_group(), CRSg = s.column_rows() / G, size = s.K * CRSg;
  const std::vector<Chunk> chunks = weight_gradient_chunks<T>(s);
  const index_t parts = split_over_threads(static_cast<index_t>(chunks.size())) ? num_threads() : 1;
  const bool transposed = CRSg > Kg;
  // Thread t sums into grad_w (t == 0, not transposed) or its part of the partials: taken here,
  // by the calling thread, so the buffers stay distinct even if OpenMP runs several t on one thread.
  const index_t own = transposed ? 0 : 1;  // threads that sum into grad_w itself
  T* partials = parts > own ? thread_scratch<T>((parts - own) * size, ScratchSlot::partial_sums) : nullptr;
  std::vector<char> started(parts, 0);
  for_each_chunk(chunks, [&](index_t t, const Chunk& chunk) {
    T* sums = t < own ? grad_w : partials + (t - own) * size;
    const MatrixView<const T> col = columns(s, x, chunk);
    with_columns(chunk, col);
    const auto dy = as_const(chunk_matrix(const_cast<T*>(grad_y), s.K, s, chunk));
    const gemm::Epilogue<T> accumulate{T(1), started[t] ? T(1) : T(0)};
    for (index_t g = 0; g < G; ++g) {
      if (transposed)
        gemm::gemm<T>(col.row_block(g * CRSg, CRSg), dy.row_block(g * Kg, Kg).transposed(),
                      dense_matrix(sums + g * Kg * CRSg, CRSg, Kg), accumulate);
      else
        gemm::gemm<T>(dy.row_block(g * Kg, Kg), col.row_block(g * CRSg, CRSg).transposed(),
                      dense_matrix(sums + g * Kg * CRSg, Kg, CRSg), accumulate);
    }
    started[t] = 1;
  });
  // grad_w[g, k, i] = sum over t of part t at [g, k, i], or at [g, i, k] when transposed.
  parallel_for(0, size, 1 << 14, [&](index_t lo, index_t hi) {
    if (own == 1 && !started[0]) std::fill(grad_w + lo, grad_w + hi, T(0));  // an empty batch
    for (index_t i = lo; i < hi; ++i) {
      const index_t g = i / (Kg * CRSg), k = i / CRSg % Kg, c = i % CRSg;
      const index_t at = transposed ? (g * CRSg + c) * Kg + k : i;
      T sum = own == 1 ? grad_w[i] : T(0);
      for (index_t t = own; t < parts; ++t)
        if (started[t]) sum += partials[(t - own) * size + at];
      grad_w[i] = sum;
    }
  });
}

}  // namespace

template <class T>
void conv2d_forward_im2col(const Conv2dShape& s, const T* x, const T* w, const T* bias, const T* residual, bool relu,
                           T* y) {
  const auto weights = packed_weights(s, w);
  for_each_chunk(column_chunks<T>(s), [&](index_t, const Chunk& chunk) {
    const MatrixView<T> out = chunk_matrix(y, s.K, s, chunk);
    forward_gemm(s, columns(s, x, chunk), weights, bias, residual ? residual + (out.data - y) : nullptr, relu, out);
  });
}

// Per chunk and group, the column gradient is made a block of channels at a time, small enough
// that col2im finds it still in L2: read back from L3, the columns had cost col2im as much as
// the GEMM that wrote them (conv_transpose2d's forward).
template <class T>
void conv2d_backward_input_im2col(const Conv2dShape& s, const T* grad_y, const T* w, T* grad_x) {
  const index_t G = s.groups(), Kg = s.K_per_group(), Cg = s.C / G, RS = s.R * s.S, CRSg = Cg * RS;
  for_each_chunk(input_gradient_chunks(s), [&](index_t, const Chunk& chunk) {
    const index_t cols = chunk.nb * s.pixels();
    const auto dy = as_const(chunk_matrix(const_cast<T*>(grad_y), s.K, s, chunk));
    T* dx = grad_x + chunk.n0 * s.C * s.H * s.W;
    if (s.is_pointwise()) {  // the column gradient is the input gradient itself
      // w^T packed once: packed per column block instead, each thread had packed all of it four
      // times (256 x 512 over 6,272 pixels).
      const MatrixView<T> dcol = chunk_matrix(grad_x, s.C, s, chunk);
      for (index_t g = 0; g < G; ++g) {
        const gemm::PackedA<T> weight_t(as_const(dense_matrix(w + g * Kg * CRSg, Kg, CRSg).transposed()));
        gemm::gemm_packed(CRSg, cols, Kg, weight_t, gemm::PackMatrixB<T>{dy.row_block(g * Kg, Kg)},
                          dcol.row_block(g * CRSg, CRSg), gemm::Epilogue<T>{});
      }
      return;
    }
    const index_t block = std::clamp<index_t>(
        static_cast<index_t>(kCol2imBlockBytes / sizeof(T)) / (RS * cols), 1, Cg);
    T* col = thread_scratch<T>(block * RS * cols, ScratchSlot::columns);
    for (index_t g = 0; g < G; ++g) {
      const auto weight_t = dense_matrix(w + g * Kg * CRSg, Kg, CRSg).transposed();
      for (index_t c = 0; c < Cg; c += block) {
        const index_t channels = std::min(block, Cg - c);
        gemm::gemm<T>(as_const(weight_t.row_block(c * RS, channels * RS)), dy.row_block(g * Kg, Kg),
                      dense_matrix(col, channels * RS, cols));
        col2im(s, col, chunk.nb, g * Cg + c, channels, dx);
      }
    }
  });
}

template <class T>
void conv2d_backward_weight_im2col(const Conv2dShape& s, const T* x, const T* grad_y, T* grad_w,
                                   T* grad_bias) {
  weight_gradient_im2col(s, x, grad_y, grad_w, [](const Chunk&, const MatrixView<const T>&) {});
  if (grad_bias) conv2d_bias_grad(s, grad_y, grad_bias);
}

template <class T>
void conv2d_forward_and_backward_weight_im2col(const Conv2dShape& s, const T* x, const T* w, T* y,
                                               const T* grad_y, T* grad_w) {
  const auto weights = packed_weights(s, w);
  weight_gradient_im2col(s, x, grad_y, grad_w, [&](const Chunk& chunk, const MatrixView<const T>& col) {
    forward_gemm<T>(s, col, weights, nullptr, nullptr, false, chunk_matrix(y, s.K, s, chunk));
  });
}

namespace {

// The sum of n values in double, as 8 interleaved partial sums: independent lanes the compiler
// vectorises (one running sum would be a chain of dependent additions, 4 cycles each: it took
// as long as a depthwise layer's whole weight gradient).
template <class T>
double wide_sum(const T* x, index_t n) {
  double part[8] = {};
  index_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) part[l] += x[i + l];
  double sum = 0;
  for (; i < n; ++i) sum += x[i];
  for (int l = 0; l < 8; ++l) sum += part[l];
  return sum;
}

}  // namespace

template <class T>
void conv2d_bias_grad(const Conv2dShape& s, const T* grad_y, T* grad_bias) {
  const index_t PQ = s.pixels();
  parallel_for(0, s.K, 1, [&](index_t lo, index_t hi) {
    for (index_t k = lo; k < hi; ++k) {
      double sum = 0;  // N*P*Q terms: accumulate wide
      for (index_t n = 0; n < s.N; ++n) sum += wide_sum(grad_y + (n * s.K + k) * PQ, PQ);
      grad_bias[k] = static_cast<T>(sum);
    }
  });
}

#define FASTCONV_INSTANTIATE(T)                                                                     \
  template void conv2d_forward_im2col<T>(const Conv2dShape&, const T*, const T*, const T*, const T*, bool, T*); \
  template void conv2d_backward_input_im2col<T>(const Conv2dShape&, const T*, const T*, T*);          \
  template void conv2d_backward_weight_im2col<T>(const Conv2dShape&, const T*, const T*, T*, T*);    \
  template void conv2d_forward_and_backward_weight_im2col<T>(const Conv2dShape&, const T*, const T*, T*,  \
                                                             const T*, T*);                           \
  template void conv2d_bias_grad<T>(const Conv2dShape&, const T*, T*);
FASTCONV_INSTANTIATE(float)
FASTCONV_INSTANTIATE(double)
#undef FASTCONV_INSTANTIATE

}  // namespace fastconv::conv::cpu
