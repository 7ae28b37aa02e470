// conv2d on channels_last arrays: the input's memory is (N, H, W, C), the output's (N, P, Q, K),
// the weight as always (K, C/groups, R, S).
//
// On AVX2 and AVX-512, without groups or depthwise with multiplier 1, the forward and the
// stride-1 input gradient run the direct kernels of channels_last.h (and a depthwise weight
// gradient its own loop). Everything else runs im2col + GEMM with the output pixels as the
// GEMM's rows. Row m of the column matrix is one output pixel's patch: per group, R*S runs of the
// group's C/G adjacent input channels, one copy each (NCHW's im2col gathers a pixel at a time
// instead). The product col * W^T then has the pixels as rows and the K channels adjacent: the
// output's own memory, written in place. A pointwise convolution's column matrix is the input
// itself. The input gradient is the product's adjoint (dcol = dy * W, then added back into the
// patches: col2im), the weight gradient dy^T * col; neither operand is transposed in memory.
//
// Threads: chunks of pixels (of whole images for the input gradient, whose col2im adds into
// neighbouring windows) split over the threads, each running a serial GEMM, when there are
// enough of them; else one after another with the GEMM threaded inside.
#include <algorithm>
#include <vector>

#include "conv/cpu/channels_last.h"
#include "conv/cpu/kernels.h"
#include "core/isa.h"
#include "core/parallel.h"
#include "core/scratch.h"
#include "gemm/gemm.h"

namespace fastconv::conv::cpu {

namespace {

template <class T>
MatrixView<T> rows_of(T* data, index_t rows, index_t cols, index_t row_stride) {
  return {data, rows, cols, row_stride, 1, 0, 0, 0, 0};
}

// Columns [j0, j0 + n) of a matrix: a group's block.
template <class T>
MatrixView<T> col_block(MatrixView<T> v, index_t j0, index_t n) {
  v.data += v.col_offset(j0);
  v.cols = n;
  return v;
}

// The layout of one patch (a row of the column matrix): group g's tap (r, s) holds its C/G
// channels at g * R*S*C/G + (r * S + s) * C/G. Weights in the same order, [K, R*S*C/G], are
// what the GEMMs multiply by.
struct PatchLayout {
  index_t G, Cg, RS, width;  // width: values per patch, R*S*C
  explicit PatchLayout(const Conv2dShape& s)
      : G(s.groups()), Cg(s.C_per_group()), RS(s.R * s.S), width(s.column_rows()) {}
  index_t group_width() const { return RS * Cg; }
};

// w (K, C/G, R, S) -> [K, R*S*C/G] in patch order (r, s, c).
template <class T>
std::vector<T> patch_ordered_weights(const Conv2dShape& s, const T* w) {
  const PatchLayout L(s);
  std::vector<T> out(static_cast<std::size_t>(s.K * L.group_width()));
  for (index_t k = 0; k < s.K; ++k)
    for (index_t c = 0; c < L.Cg; ++c)
      for (index_t rs = 0; rs < L.RS; ++rs) out[(k * L.RS + rs) * L.Cg + c] = w[(k * L.Cg + c) * L.RS + rs];
  return out;
}

// Output pixel m of the batch as (image, row, column).
struct Pixel {
  index_t n, p, q;
  Pixel(const Conv2dShape& s, index_t m) : n(m / s.pixels()), p(m / s.Q % s.P), q(m % s.Q) {}
};

// The input pixel tap (r, k) of output pixel `px` reads, or nullptr in the padding; its channels
// follow at unit stride. x is the batch's (N, H, W, C) memory.
template <class T>
T* tap_source(const Conv2dShape& s, T* x, const Pixel& px, index_t r, index_t k) {
  const auto& p = s.p;
  const index_t h = px.p * p.stride[0] - p.pad_begin[0] + r * p.dilation[0];
  const index_t w = px.q * p.stride[1] - p.pad_begin[1] + k * p.dilation[1];
  if (h < 0 || h >= s.H || w < 0 || w >= s.W) return nullptr;
  return x + ((px.n * s.H + h) * s.W + w) * s.C;
}

// fn(patch, pixel) for each tap of output pixels [m0, m0 + rows): `patch` is the tap's place in
// row i of the column matrix (group 0's; group g's at + g * R*S*C/G), `pixel` the input pixel
// it reads in x, or nullptr in the padding.
template <class T, class U, class Fn>
void for_each_tap(const Conv2dShape& s, T* x, U* col, index_t m0, index_t rows, const Fn& fn) {
  const PatchLayout L(s);
  for (index_t i = 0; i < rows; ++i) {
    const Pixel px(s, m0 + i);
    for (index_t r = 0; r < s.R; ++r)
      for (index_t k = 0; k < s.S; ++k) fn(col + i * L.width + (r * s.S + k) * L.Cg, tap_source(s, x, px, r, k));
  }
}

// col rows [0, rows) = the patches of output pixels [m0, m0 + rows), zeros where a tap falls in
// the padding.
template <class T>
void im2col_rows(const Conv2dShape& s, const T* x, index_t m0, index_t rows, T* col) {
  const PatchLayout L(s);
  for_each_tap(s, x, col, m0, rows, [&](T* patch, const T* pixel) {
    for (index_t g = 0; g < L.G; ++g) {
      T* out = patch + g * L.group_width();
      if (pixel)
        std::copy_n(pixel + g * L.Cg, L.Cg, out);
      else
        std::fill_n(out, L.Cg, T(0));
    }
  });
}

// The adjoint of im2col_rows: each patch entry of dcol added into the input pixel it was read
// from. dx holds the images of pixels [m0, m0 + rows), already zeroed.
template <class T>
void col2im_rows(const Conv2dShape& s, const T* dcol, index_t m0, index_t rows, T* dx) {
  const PatchLayout L(s);
  for_each_tap(s, dx, dcol, m0, rows, [&](const T* patch, T* pixel) {
    if (!pixel) return;
    for (index_t g = 0; g < L.G; ++g) {
      const T* in = patch + g * L.group_width();
      T* out = pixel + g * L.Cg;
      for (index_t c = 0; c < L.Cg; ++c) out[c] += in[c];
    }
  });
}

// Pixels per chunk: as many patches as fit kColumnBudgetBytes, at least one.
template <class T>
index_t chunk_pixels(const Conv2dShape& s) {
  const index_t row_bytes = std::max<index_t>(s.column_rows() * static_cast<index_t>(sizeof(T)), 1);
  return std::max<index_t>(static_cast<index_t>(kColumnBudgetBytes) / row_bytes, 1);
}

// Calls fn(thread, first, count) over [0, items) in pieces of at most `piece` items: split over
// the threads (their GEMMs then serial) when there are at least as many pieces as threads,
// rounded to a multiple of them so that none idles at the end; else in order on this thread.
template <class Fn>
void for_each_piece(index_t items, index_t piece, const Fn& fn) {
  const index_t threads = num_threads();
  index_t pieces = ceil_div(items, std::max<index_t>(piece, 1));
  if (threads <= 1 || pieces < threads) {
    for (index_t i = 0; i < pieces; ++i) fn(0, i * piece, std::min(piece, items - i * piece));
    return;
  }
  pieces = round_up(pieces, threads);
  const index_t size = ceil_div(items, pieces);
  parallel_for(0, threads, 1, [&](index_t t_lo, index_t t_hi) {
    for (index_t t = t_lo; t < t_hi; ++t)
      for (index_t i = pieces * t / threads; i < pieces * (t + 1) / threads; ++i) {
        const index_t first = i * size;
        if (first < items) fn(t, first, std::min(size, items - first));
      }
  });
}

// y rows [m0, m0 + rows) = col * W^T (+ bias, ReLU), group by group. The bias is written first
// and the product added to it (beta = 1): the GEMM's epilogue adds a bias per row of its result,
// and here the channels are its columns.
template <class T>
void forward_product(const Conv2dShape& s, const MatrixView<const T>& col, const std::vector<T>& wt, const T* bias,
                     bool relu, T* y, index_t m0, index_t rows) {
  const PatchLayout L(s);
  const index_t Kg = s.K_per_group();
  const MatrixView<T> out = rows_of(y + m0 * s.K, rows, s.K, s.K);
  if (bias)
    for (index_t i = 0; i < rows; ++i) std::copy_n(bias, s.K, out.data + i * s.K);
  for (index_t g = 0; g < L.G; ++g) {
    const auto weight_t = dense_matrix(wt.data() + g * Kg * L.group_width(), Kg, L.group_width()).transposed();
    gemm::gemm<T>(col_block(col, g * L.group_width(), L.group_width()), as_const(weight_t),
                  col_block(out, g * Kg, Kg), gemm::Epilogue<T>{T(1), bias ? T(1) : T(0), nullptr, relu});
  }
}

// Each thread sums into its own [K, R*S*C/G] buffer (in patch order); these are added in thread
// order, so the result depends only on the thread count.
template <class T>
struct PartialSums {
  index_t size, parts;
  T* data;
  std::vector<char> started;
  PartialSums(index_t size, index_t parts)
      : size(size), parts(parts), data(thread_scratch<T>(size * parts, ScratchSlot::partial_sums)), started(parts, 0) {}
  T* part(index_t t) { return data + t * size; }
  // out[i] = the sum of the started parts at i, zero when none started (an empty batch).
  void sum_into(T* out) const {
    parallel_for(0, size, 1 << 14, [&](index_t lo, index_t hi) {
      for (index_t i = lo; i < hi; ++i) {
        T sum = T(0);
        for (index_t t = 0; t < parts; ++t)
          if (started[t]) sum += data[t * size + i];
        out[i] = sum;
      }
    });
  }
};

// grad_bias[k] = the sum of column k of the [M, K] grad_y, in double, per thread then in order.
template <class T>
void bias_gradient(const Conv2dShape& s, const T* grad_y, T* grad_bias) {
  const index_t M = s.N * s.pixels(), threads = num_threads();
  std::vector<double> sums(static_cast<std::size_t>(threads * s.K), 0.0);
  parallel_for(0, threads, 1, [&](index_t t_lo, index_t t_hi) {
    for (index_t t = t_lo; t < t_hi; ++t) {
      double* acc = sums.data() + t * s.K;
      for (index_t m = M * t / threads; m < M * (t + 1) / threads; ++m)
        for (index_t k = 0; k < s.K; ++k) acc[k] += grad_y[m * s.K + k];
    }
  });
  for (index_t k = 0; k < s.K; ++k) {
    double sum = 0;
    for (index_t t = 0; t < threads; ++t) sum += sums[t * s.K + k];
    grad_bias[k] = static_cast<T>(sum);
  }
}

// ---- the direct kernels (channels_last.h) ----

// Which direct kernel runs shape s here: none (im2col + GEMM), dense (no groups) or depthwise (a
// channel per group, multiplier 1).
enum class Direct { none, dense, depthwise };
Direct direct_kind(const Conv2dShape& s) {
  if (vector_isa() < Isa::avx2) return Direct::none;
  if (s.groups() == 1) return Direct::dense;
  return s.groups() == s.C && s.K == s.C ? Direct::depthwise : Direct::none;
}

// The weights of a direct pass: [K blocks][taps][channels][block] with weight(k, c, tap) in
// place, zeros past K; `channels`: the input channels each output channel reads (1: depthwise).
template <class T, class Weight>
std::vector<T> packed_for_blocks(index_t K, index_t channels, index_t taps, index_t block, const Weight& weight) {
  std::vector<T> packed(static_cast<std::size_t>(ceil_div(K, block) * taps * channels * block), T(0));
  for (index_t k = 0; k < K; ++k)
    for (index_t tap = 0; tap < taps; ++tap)
      for (index_t c = 0; c < channels; ++c)
        packed[((k / block * taps + tap) * channels + c) * block + k % block] = weight(k, c, tap);
  return packed;
}

// y = the convolution `g` of x with weight(k, c, tap) (+ bias, ReLU), on the active ISA's kernel
// of `kind` (depthwise: weight(k, 0, tap) is channel k's).
template <class T, class Weight>
void run_direct(const channels_last::Geometry& g, Direct kind, const T* x, const Weight& weight, const T* bias,
                bool relu, T* y) {
#if FASTCONV_X86
  namespace cl = channels_last;
  const bool avx512 = vector_isa() >= Isa::avx512, depthwise = kind == Direct::depthwise;
  index_t mr = 0, block = 0;
  (avx512 ? cl::block_shape_avx512<T> : cl::block_shape_avx2<T>)(g.K, &mr, &block);
  const bool by_rows = depthwise && cl::depthwise_row_fits(g);
  if (by_rows) block = (avx512 ? 64 : 32) / static_cast<index_t>(sizeof(T));  // one vector
  const std::vector<T> packed = packed_for_blocks<T>(g.K, depthwise ? 1 : g.C, g.R * g.S, block, weight);
  const std::vector<T> zeros(static_cast<std::size_t>(g.C), T(0));
  const cl::DirectPass<T> pass{g, x, packed.data(), block, bias, relu, y, zeros.data()};
  if (by_rows)
    return parallel_for_dynamic(0, g.N * g.P, [&](index_t lo, index_t hi) {
      (avx512 ? cl::depthwise_rows_avx512<T> : cl::depthwise_rows_avx2<T>)(pass, lo, hi);
    });
  parallel_for_dynamic(0, ceil_div(g.N * g.P * g.Q, mr), [&](index_t lo, index_t hi) {
    if (depthwise) {
      std::vector<const T*> sources(static_cast<std::size_t>(cl::kDepthwiseSources * g.R * g.S));
      (avx512 ? cl::depthwise_pixels_avx512<T> : cl::depthwise_pixels_avx2<T>)(pass, lo, hi, sources.data());
    } else {
      (avx512 ? cl::pixels_avx512<T> : cl::pixels_avx2<T>)(pass, lo, hi);
    }
  });
#endif
}

// The forward's geometry for the direct kernels.
inline channels_last::Geometry forward_geometry(const Conv2dShape& s) {
  const auto& p = s.p;
  return {s.N, s.H, s.W, s.C, s.P, s.Q, s.K, s.R, s.S, p.stride[0], p.stride[1],
          p.dilation[0], p.dilation[1], -p.pad_begin[0], -p.pad_begin[1]};
}

// sums holds `parts` runs of `width` doubles, one per thread: the first becomes their sum, added
// in thread order (so the result depends only on the thread count), and the rest is dropped.
inline void fold_parts_in_order(std::vector<double>& sums, index_t parts, index_t width) {
  for (index_t i = 0; i < width; ++i)
    for (index_t t = 1; t < parts; ++t) sums[i] += sums[t * width + i];
  sums.resize(static_cast<std::size_t>(width));
}

// sums[tap * C + c] (and sums[R*S * C + c], the bias's) of a depthwise convolution with
// multiplier 1: the sum over pixels of dy[m, c] * x[tap's input pixel of m, c], a run of
// adjacent channels at a time, which the compiler vectorises. Each thread sums its images (each
// image in T, added into double, as the NCHW depthwise kernel sums), the threads' sums added in
// order. Any geometry.
template <class T>
std::vector<double> depthwise_weight_sums(const Conv2dShape& s, const T* x, const T* grad_y) {
  const index_t C = s.C, RS = s.R * s.S, PQ = s.pixels(), width = (RS + 1) * C;
  const index_t threads = std::max<index_t>(1, std::min<index_t>(num_threads(), s.N));
  std::vector<double> sums(static_cast<std::size_t>(threads * width), 0.0);
  parallel_for(0, threads, 1, [&](index_t t_lo, index_t t_hi) {
    std::vector<T> image_sums(static_cast<std::size_t>(width));
    for (index_t t = t_lo; t < t_hi; ++t)
      for (index_t n = s.N * t / threads; n < s.N * (t + 1) / threads; ++n) {
        std::fill(image_sums.begin(), image_sums.end(), T(0));
        for (index_t m = n * PQ; m < (n + 1) * PQ; ++m) {
          const Pixel px(s, m);
          const T* dy = grad_y + m * C;
          for (index_t tap = 0; tap < RS; ++tap) {
            const T* src = tap_source(s, x, px, tap / s.S, tap % s.S);
            if (!src) continue;
            T* acc = image_sums.data() + tap * C;
            for (index_t c = 0; c < C; ++c) acc[c] += dy[c] * src[c];
          }
          T* bias_acc = image_sums.data() + RS * C;
          for (index_t c = 0; c < C; ++c) bias_acc[c] += dy[c];
        }
        double* into = sums.data() + t * width;
        for (index_t i = 0; i < width; ++i) into[i] += image_sums[i];
      }
  });
  fold_parts_in_order(sums, threads, width);
  return sums;
}

// dw[c, tap] (and db[c]) of a depthwise convolution with multiplier 1: 3x3 kernels with unit
// stride along the width by the vector kernel, the rest by depthwise_weight_sums. The vector
// kernel's threads take images, each summing into its own doubles (added in thread order), or
// with fewer images than threads, channel vectors of the shared sums.
template <class T>
void depthwise_weight_gradient(const Conv2dShape& s, const T* x, const T* grad_y, T* grad_w, T* grad_bias) {
  const index_t C = s.C, RS = s.R * s.S;
  std::vector<double> sums;
#if FASTCONV_X86
  if (const channels_last::Geometry g = forward_geometry(s); channels_last::depthwise_weight_rows_fit(g)) {
    const index_t width = (RS + 1) * C;
    const bool avx512 = vector_isa() >= Isa::avx512;
    const auto rows =
        avx512 ? channels_last::depthwise_weight_rows_avx512<T> : channels_last::depthwise_weight_rows_avx2<T>;
    const index_t lanes = (avx512 ? 64 : 32) / static_cast<index_t>(sizeof(T)), vectors = ceil_div(C, lanes);
    const std::vector<T> zeros(static_cast<std::size_t>(C), T(0));
    // The calling thread's room for an image's sums of `count` channel vectors: 10 vectors each.
    const auto image_sums = [&](index_t count) {
      return thread_scratch<T>(count * 10 * lanes, ScratchSlot::partial_sums);
    };
    const index_t parts = std::min<index_t>(num_threads(), s.N);
    if (parts > 1) {
      sums.assign(static_cast<std::size_t>(parts * width), 0.0);
      parallel_for(0, parts, 1, [&](index_t lo, index_t hi) {
        for (index_t t = lo; t < hi; ++t) {
          const channels_last::DepthwiseWeightPart images{s.N * t / parts, s.N * (t + 1) / parts, 0, vectors};
          rows(g, x, grad_y, zeros.data(), images, image_sums(vectors), sums.data() + t * width);
        }
      });
      fold_parts_in_order(sums, parts, width);
    } else {
      sums.assign(static_cast<std::size_t>(width), 0.0);
      parallel_for(0, vectors, 1, [&](index_t lo, index_t hi) {
        rows(g, x, grad_y, zeros.data(), {0, s.N, lo, hi}, image_sums(hi - lo), sums.data());
      });
    }
  }
#endif
  if (sums.empty()) sums = depthwise_weight_sums(s, x, grad_y);
  for (index_t c = 0; c < C; ++c)
    for (index_t tap = 0; tap < RS; ++tap) grad_w[c * RS + tap] = static_cast<T>(sums[tap * C + c]);
  if (grad_bias)
    for (index_t c = 0; c < C; ++c) grad_bias[c] = static_cast<T>(sums[RS * C + c]);
}

}  // namespace

template <class T>
void conv2d_forward_channels_last(const Conv2dShape& s, const T* x, const T* w, const T* bias, bool relu, T* y) {
  if (const Direct kind = direct_kind(s); kind != Direct::none) {
    const channels_last::Geometry g = forward_geometry(s);
    const index_t RS = s.R * s.S, Cg = s.C_per_group();
    return run_direct(g, kind, x, [&](index_t k, index_t c, index_t tap) { return w[(k * Cg + c) * RS + tap]; },
                      bias, relu, y);
  }
  const index_t M = s.N * s.pixels();
  const std::vector<T> wt = patch_ordered_weights(s, w);
  if (s.is_pointwise()) return forward_product(s, as_const(rows_of(const_cast<T*>(x), M, s.C, s.C)), wt, bias, relu, y, 0, M);
  const index_t width = s.column_rows();
  for_each_piece(M, chunk_pixels<T>(s), [&](index_t, index_t m0, index_t rows) {
    T* col = thread_scratch<T>(rows * width, ScratchSlot::columns);
    im2col_rows(s, x, m0, rows, col);
    forward_product(s, as_const(dense_matrix(col, rows, width)), wt, bias, relu, y, m0, rows);
  });
}

// A strided input gradient without dilation by sub-pixel phases: the pixels of grad_x in phase
// (a, b) sum dy over that phase's taps only, a stride-1 convolution of dy which the direct kernel
// runs, storing every stride-th row and column of grad_x (Geometry::placed). No column matrix
// and no col2im scatter, no products with the zeros a strided gradient inserts. A phase without
// taps (kernel smaller than the stride) is zero.
template <class T>
void input_gradient_by_phases(const Conv2dShape& s, const T* grad_y, const T* w, T* grad_x) {
  const index_t sh = s.p.stride[0], sw = s.p.stride[1], RS = s.R * s.S;
  if (s.R < sh || s.S < sw) std::fill_n(grad_x, s.N * s.H * s.W * s.C, T(0));
  for (index_t a = 0; a < sh; ++a)
    for (index_t b = 0; b < sw; ++b) {
      const AxisPhase pa = axis_phase(a, s.H, s.R, sh, s.p.pad_begin[0]);
      const AxisPhase pb = axis_phase(b, s.W, s.S, sw, s.p.pad_begin[1]);
      if (pa.taps == 0 || pb.taps == 0 || pa.outputs == 0 || pb.outputs == 0) continue;
      channels_last::Geometry g{s.N, s.P, s.Q, s.K, pa.outputs, pb.outputs, s.C, pa.taps, pb.taps, 1, 1, 1, 1,
                                pa.offset - pa.taps + 1, pb.offset - pb.taps + 1};
      g.placed = true;
      g.out_H = s.H, g.out_W = s.W, g.out_sh = sh, g.out_sw = sw, g.out_top = a, g.out_left = b;
      // tap (i, j) reads dy at offset - m for m = taps - 1 - i: kernel tap first + m * stride
      const auto phase_weight = [&](index_t c, index_t k, index_t tap) {
        const index_t r = pa.first + sh * (pa.taps - 1 - tap / pb.taps);
        const index_t t = pb.first + sw * (pb.taps - 1 - tap % pb.taps);
        return w[(k * s.C + c) * RS + r * s.S + t];
      };
      run_direct(g, Direct::dense, grad_y, phase_weight, static_cast<const T*>(nullptr), false, grad_x);
    }
}

// dcol = dy * W per group, then col2im; whole images per thread, each in bands of pixels.
template <class T>
void conv2d_backward_input_channels_last(const Conv2dShape& s, const T* grad_y, const T* w, T* grad_x) {
  const auto& p = s.p;
  const Direct kind = direct_kind(s);
  if (kind == Direct::dense && s.is_strided() && p.dilation[0] == 1 && p.dilation[1] == 1)
    return input_gradient_by_phases(s, grad_y, w, grad_x);
  if (kind != Direct::none && !s.is_strided()) {
    // dx[h, w] sums dy[h + r' * dh + top, w + s' * dw + left] * w[k, c, R-1-r', S-1-s'] over taps
    // (r', s'), top = pad - (R-1) * dh: a stride-1 convolution of dy with the rotated,
    // channel-transposed weights.
    const channels_last::Geometry g{s.N, s.P, s.Q, s.K, s.H, s.W, s.C, s.R, s.S, 1, 1, p.dilation[0], p.dilation[1],
                                    p.pad_begin[0] - (s.R - 1) * p.dilation[0], p.pad_begin[1] - (s.S - 1) * p.dilation[1]};
    const index_t RS = s.R * s.S;
    const auto rotated = [&](index_t c, index_t k, index_t tap) {
      return kind == Direct::depthwise ? w[c * RS + RS - 1 - tap] : w[(k * s.C + c) * RS + RS - 1 - tap];
    };
    return run_direct(g, kind, grad_y, rotated, static_cast<const T*>(nullptr), false, grad_x);
  }
  const PatchLayout L(s);
  const index_t Kg = s.K_per_group(), PQ = s.pixels(), width = L.width;
  const std::vector<T> wt = patch_ordered_weights(s, w);
  const auto product = [&](index_t m0, index_t rows, const MatrixView<T>& dcol) {
    const auto dy = as_const(rows_of(const_cast<T*>(grad_y) + m0 * s.K, rows, s.K, s.K));
    for (index_t g = 0; g < L.G; ++g)
      gemm::gemm<T>(col_block(dy, g * Kg, Kg), as_const(dense_matrix(wt.data() + g * Kg * L.group_width(), Kg, L.group_width())),
                    col_block(dcol, g * L.group_width(), L.group_width()));
  };
  if (s.is_pointwise()) return product(0, s.N * PQ, rows_of(grad_x, s.N * PQ, s.C, s.C));
  const index_t band = std::min(chunk_pixels<T>(s), PQ), image = s.H * s.W * s.C;
  for_each_piece(s.N, 1, [&](index_t, index_t n, index_t) {
    std::fill_n(grad_x + n * image, image, T(0));
    for (index_t m0 = n * PQ; m0 < (n + 1) * PQ; m0 += band) {
      const index_t rows = std::min(band, (n + 1) * PQ - m0);
      T* dcol = thread_scratch<T>(rows * width, ScratchSlot::columns);
      product(m0, rows, dense_matrix(dcol, rows, width));
      col2im_rows(s, dcol, m0, rows, grad_x);
    }
  });
}

// Threads take runs of images, each summing into doubles of its own, added in thread order.
template <class T>
bool conv2d_backward_weight_taps(const Conv2dShape& s, bool channels_last, const T* x, const T* grad_y, T* grad_w) {
#if FASTCONV_X86
  if (!weight_taps_fit(s) || s.N < num_threads()) return false;
  const channels_last::Geometry g = forward_geometry(s);
  const index_t RS = s.R * s.S, width = s.K * RS * s.C;
  const index_t threads = num_threads();  // at most N (above)
  std::vector<double> sums(static_cast<std::size_t>(threads * width), 0.0);
  const auto images = vector_isa() >= Isa::avx512 ? channels_last::weight_images_avx512<T>
                                                  : channels_last::weight_images_avx2<T>;
  parallel_for(0, threads, 1, [&](index_t t_lo, index_t t_hi) {
    for (index_t t = t_lo; t < t_hi; ++t)
      images(g, !channels_last, x, grad_y, sums.data() + t * width, s.N * t / threads, s.N * (t + 1) / threads);
  });
  for (index_t k = 0; k < s.K; ++k)
    for (index_t c = 0; c < s.C; ++c)
      for (index_t tap = 0; tap < RS; ++tap) {
        double sum = 0;
        for (index_t t = 0; t < threads; ++t) sum += sums[t * width + (k * RS + tap) * s.C + c];
        grad_w[(k * s.C + c) * RS + tap] = static_cast<T>(sum);
      }
  return true;
#else
  return false;
#endif
}

// grad_w = dy^T * col per group, summed over the chunks of pixels, then put back in (c, r, s)
// order.
template <class T>
void conv2d_backward_weight_channels_last(const Conv2dShape& s, const T* x, const T* grad_y, T* grad_w,
                                          T* grad_bias) {
  if (direct_kind(s) == Direct::depthwise) return depthwise_weight_gradient(s, x, grad_y, grad_w, grad_bias);
  if (conv2d_backward_weight_taps(s, true, x, grad_y, grad_w)) {
    if (grad_bias) bias_gradient(s, grad_y, grad_bias);
    return;
  }
  const PatchLayout L(s);
  const index_t M = s.N * s.pixels(), Kg = s.K_per_group(), width = L.width, gw = L.group_width();
  const index_t piece = s.is_pointwise() ? M : chunk_pixels<T>(s);
  const index_t parts = s.is_pointwise() || ceil_div(M, piece) < num_threads() ? 1 : num_threads();
  PartialSums<T> sums(s.K * gw, parts);
  for_each_piece(M, piece, [&](index_t t, index_t m0, index_t rows) {
    MatrixView<const T> col = as_const(rows_of(const_cast<T*>(x) + m0 * s.C, rows, s.C, s.C));
    if (!s.is_pointwise()) {
      T* buffer = thread_scratch<T>(rows * width, ScratchSlot::columns);
      im2col_rows(s, x, m0, rows, buffer);
      col = as_const(dense_matrix(buffer, rows, width));
    }
    const auto dy = as_const(rows_of(const_cast<T*>(grad_y) + m0 * s.K, rows, s.K, s.K));
    const gemm::Epilogue<T> accumulate{T(1), sums.started[t] ? T(1) : T(0)};
    for (index_t g = 0; g < L.G; ++g)
      gemm::gemm<T>(col_block(dy, g * Kg, Kg).transposed(), col_block(col, g * gw, gw),
                    dense_matrix(sums.part(t) + g * Kg * gw, Kg, gw), accumulate);
    sums.started[t] = 1;
  });
  // [K, (r, s, c)] -> (K, C/G, R, S)
  T* patch_order = thread_scratch<T>(s.K * gw, ScratchSlot::transform_work);
  sums.sum_into(patch_order);
  for (index_t k = 0; k < s.K; ++k)
    for (index_t c = 0; c < L.Cg; ++c)
      for (index_t rs = 0; rs < L.RS; ++rs) grad_w[(k * L.Cg + c) * L.RS + rs] = patch_order[(k * L.RS + rs) * L.Cg + c];
  if (grad_bias) bias_gradient(s, grad_y, grad_bias);
}

#define FASTCONV_INSTANTIATE(T)                                                                          \
  template void conv2d_forward_channels_last<T>(const Conv2dShape&, const T*, const T*, const T*, bool, T*); \
  template void conv2d_backward_input_channels_last<T>(const Conv2dShape&, const T*, const T*, T*);          \
  template void conv2d_backward_weight_channels_last<T>(const Conv2dShape&, const T*, const T*, T*, T*); \
  template bool conv2d_backward_weight_taps<T>(const Conv2dShape&, bool, const T*, const T*, T*);
FASTCONV_INSTANTIATE(float)
FASTCONV_INSTANTIATE(double)
#undef FASTCONV_INSTANTIATE

}  // namespace fastconv::conv::cpu
