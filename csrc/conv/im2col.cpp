// conv2d as im2col + GEMM, with its two backward kernels.
//
// The batch is processed in chunks of images whose columns fit kColumnBudgetBytes. For a
// chunk of nb images the column matrix is [C*R*S, nb*P*Q]; the GEMM reads the output and
// output-gradient tensors in place as [K, nb*P*Q] matrices with grouped columns
// (core/view.h), so no layout transform is ever copied.
//
// Threads: when the batch splits evenly enough, each thread takes its own images through
// im2col and a single-threaded GEMM (one fork/join per call). Otherwise the chunks run one
// after another, each im2col and GEMM threaded inside (two fork/joins per chunk). On a busy
// machine every join waits for the slowest thread's next time slice, so the first way ran
// resnet20's 16-channel layers 3-4x faster there; on a quiet one the two are within ~10%.
#include <algorithm>
#include <cstring>
#include <vector>

#include "conv/conv2d.h"
#include "core/parallel.h"
#include "core/scratch.h"
#include "gemm/gemm.h"

namespace fastconv::conv {

namespace {

// col[(c, r, s), img * P * Q + p * Q + q] = x[img, c, p*sh - pt + r*dh, q*sw - pl + s*dw], or 0.
template <class T>
void im2col(const Conv2dShape& s, const T* x, index_t nb, T* col) {
  const index_t PQ = s.pixels(), ld = nb * PQ, RS = s.R * s.S;
  const auto& p = s.p;
  parallel_for(0, s.C * RS, 1, [&](index_t lo, index_t hi) {
    for (index_t row = lo; row < hi; ++row) {
      const index_t c = row / RS, r = row / s.S % s.R, k = row % s.S;
      const index_t w_offset = k * p.dilation[1] - p.pad_begin[1];
      const Range qs = valid_range(w_offset, p.stride[1], s.W, s.Q);
      const Range ps = valid_range(r * p.dilation[0] - p.pad_begin[0], p.stride[0], s.H, s.P);
      for (index_t img = 0; img < nb; ++img) {
        const T* plane = x + (img * s.C + c) * s.H * s.W;
        T* dst = col + row * ld + img * PQ;
        std::fill(dst, dst + ps.lo * s.Q, T(0));
        for (index_t op = ps.lo; op < ps.hi; ++op) {
          const T* src = plane + (op * p.stride[0] - p.pad_begin[0] + r * p.dilation[0]) * s.W + w_offset;
          T* out = dst + op * s.Q;
          std::fill(out, out + qs.lo, T(0));
          if (p.stride[1] == 1) {
            std::memcpy(out + qs.lo, src + qs.lo, sizeof(T) * (qs.hi - qs.lo));
          } else {
            for (index_t q = qs.lo; q < qs.hi; ++q) out[q] = src[q * p.stride[1]];
          }
          std::fill(out + qs.hi, out + s.Q, T(0));
        }
        std::fill(dst + ps.hi * s.Q, dst + PQ, T(0));
      }
    }
  });
}

// The adjoint of im2col: x[img, c, ...] = sum of the column entries that read it.
template <class T>
void col2im(const Conv2dShape& s, const T* col, index_t nb, T* x) {
  const index_t PQ = s.pixels(), ld = nb * PQ;
  const auto& p = s.p;
  parallel_for(0, nb * s.C, 1, [&](index_t lo, index_t hi) {
    for (index_t plane_index = lo; plane_index < hi; ++plane_index) {
      const index_t img = plane_index / s.C, c = plane_index % s.C;
      T* plane = x + plane_index * s.H * s.W;
      std::fill(plane, plane + s.H * s.W, T(0));
      for (index_t r = 0; r < s.R; ++r)
        for (index_t k = 0; k < s.S; ++k) {
          const index_t w_offset = k * p.dilation[1] - p.pad_begin[1];
          const Range qs = valid_range(w_offset, p.stride[1], s.W, s.Q);
          const Range ps = valid_range(r * p.dilation[0] - p.pad_begin[0], p.stride[0], s.H, s.P);
          const T* src = col + ((c * s.R + r) * s.S + k) * ld + img * PQ;
          for (index_t op = ps.lo; op < ps.hi; ++op) {
            T* dst = plane + (op * p.stride[0] - p.pad_begin[0] + r * p.dilation[0]) * s.W + w_offset;
            const T* row = src + op * s.Q;
            for (index_t q = qs.lo; q < qs.hi; ++q) dst[q * p.stride[1]] += row[q];
          }
        }
    }
  });
}

// Images per chunk: as many as keep the column matrix within budget, at least one.
template <class T>
index_t images_per_chunk(const Conv2dShape& s) {
  if (s.is_pointwise()) return s.N;
  const index_t per_image = s.column_rows() * s.pixels() * static_cast<index_t>(sizeof(T));
  return std::clamp<index_t>(static_cast<index_t>(kColumnBudgetBytes) / per_image, 1, s.N);
}

// Whether the batch is split over threads (each thread whole images, its GEMMs serial): the
// images must divide evenly, or be many enough that one image more is a small imbalance.
inline bool split_batch_over_threads(const Conv2dShape& s) {
  const index_t t = num_threads();
  return t > 1 && s.N >= t && (s.N % t == 0 || s.N >= 4 * t);
}

// Calls chunk_fn(thread, n0, nb) on chunks of at most images_per_chunk images that cover the
// batch: split over the threads when split_batch_over_threads, else in order on this thread
// (each chunk's kernels are then threaded inside). `thread` is in [0, num_threads()).
template <class T, class ChunkFn>
void for_each_chunk(const Conv2dShape& s, const ChunkFn& chunk_fn) {
  // Split: the threads' column buffers together keep to the budget (8 MiB apiece measured
  // 10-15% slower on a quiet machine: twice the columns streaming through the shared L3).
  const bool split = split_batch_over_threads(s);
  const index_t chunk = split ? std::max<index_t>(images_per_chunk<T>(s) / num_threads(), 1) : images_per_chunk<T>(s);
  const auto run = [&](index_t t, index_t lo, index_t hi) {
    for (index_t n0 = lo; n0 < hi; n0 += chunk) chunk_fn(t, n0, std::min(chunk, hi - n0));
  };
  if (!split) return run(0, 0, s.N);
  const int threads = num_threads();
  parallel_for(0, threads, 1, [&](index_t t_lo, index_t t_hi) {
    for (index_t t = t_lo; t < t_hi; ++t) run(t, s.N * t / threads, s.N * (t + 1) / threads);
  });
}

// An NCHW tensor's images [n0, n0 + nb) as a [channels, nb * pixels] matrix.
template <class T>
MatrixView<T> batch_matrix(T* data, index_t channels, index_t pixels, index_t n0, index_t nb) {
  return {data + n0 * channels * pixels, channels, nb * pixels, pixels, 1, 0, 0, pixels, channels * pixels};
}

// The column matrix of images [n0, n0 + nb): the input itself for pointwise convolutions,
// else im2col into the thread's scratch.
template <class T>
MatrixView<const T> columns(const Conv2dShape& s, const T* x, index_t n0, index_t nb) {
  if (s.is_pointwise()) return as_const(batch_matrix(const_cast<T*>(x), s.C, s.pixels(), n0, nb));
  T* col = thread_scratch<T>(s.column_rows() * nb * s.pixels(), ScratchSlot::columns);
  im2col(s, x + n0 * s.C * s.H * s.W, nb, col);
  return as_const(dense_matrix(col, s.column_rows(), nb * s.pixels()));
}

}  // namespace

template <class T>
void conv2d_forward_im2col(const Conv2dShape& s, const T* x, const T* w, const T* bias, bool relu, T* y) {
  const index_t G = s.groups(), Kg = s.K_per_group(), CRSg = s.column_rows() / G;
  for_each_chunk<T>(s, [&](index_t, index_t n0, index_t nb) {
    const MatrixView<const T> col = columns(s, x, n0, nb);
    const MatrixView<T> out = batch_matrix(y, s.K, s.pixels(), n0, nb);
    for (index_t g = 0; g < G; ++g) {
      const auto weight = dense_matrix(w + g * Kg * CRSg, Kg, CRSg);
      gemm::gemm<T>(as_const(weight), col.row_block(g * CRSg, CRSg), out.row_block(g * Kg, Kg),
                    {T(1), T(0), bias ? bias + g * Kg : nullptr, relu});
    }
  });
}

template <class T>
void conv2d_backward_input_im2col(const Conv2dShape& s, const T* grad_y, const T* w, T* grad_x) {
  const index_t G = s.groups(), Kg = s.K_per_group(), CRSg = s.column_rows() / G;
  for_each_chunk<T>(s, [&](index_t, index_t n0, index_t nb) {
    const auto dy = as_const(batch_matrix(const_cast<T*>(grad_y), s.K, s.pixels(), n0, nb));
    // Pointwise: the column gradient is the input gradient itself.
    T* col = s.is_pointwise() ? nullptr
                              : thread_scratch<T>(s.column_rows() * nb * s.pixels(), ScratchSlot::columns);
    const MatrixView<T> dcol = col ? dense_matrix(col, s.column_rows(), nb * s.pixels())
                                   : batch_matrix(grad_x, s.C, s.pixels(), n0, nb);
    for (index_t g = 0; g < G; ++g) {
      const auto weight_t = dense_matrix(w + g * Kg * CRSg, Kg, CRSg).transposed();
      gemm::gemm<T>(as_const(weight_t), dy.row_block(g * Kg, Kg), dcol.row_block(g * CRSg, CRSg));
    }
    if (col) col2im(s, col, nb, grad_x + n0 * s.C * s.H * s.W);
  });
}

// With the batch split over threads, each thread sums its images' weight gradient into a
// buffer of its own, and the buffers are added in thread order afterwards: no two threads
// write one value, and the result depends only on the thread count.
template <class T>
void conv2d_backward_weight_im2col(const Conv2dShape& s, const T* x, const T* grad_y, T* grad_w,
                                   T* grad_bias) {
  const index_t G = s.groups(), Kg = s.K_per_group(), CRSg = s.column_rows() / G, size = s.K * CRSg;
  const index_t parts = split_batch_over_threads(s) ? num_threads() : 1;
  // Thread t > 0 sums into partials + (t - 1) * size: taken here, by the calling thread, so the
  // buffers stay distinct even if OpenMP runs several t on one thread.
  T* partials = parts > 1 ? thread_scratch<T>((parts - 1) * size, ScratchSlot::partial_sums) : nullptr;
  std::vector<char> started(parts, 0);
  for_each_chunk<T>(s, [&](index_t t, index_t n0, index_t nb) {
    T* sums = t == 0 ? grad_w : partials + (t - 1) * size;
    const MatrixView<const T> col = columns(s, x, n0, nb);
    const auto dy = as_const(batch_matrix(const_cast<T*>(grad_y), s.K, s.pixels(), n0, nb));
    for (index_t g = 0; g < G; ++g) {
      const auto dw = dense_matrix(sums + g * Kg * CRSg, Kg, CRSg);
      gemm::gemm<T>(dy.row_block(g * Kg, Kg), col.row_block(g * CRSg, CRSg).transposed(), dw,
                    {T(1), started[t] ? T(1) : T(0)});
    }
    started[t] = 1;
  });
  if (!started[0]) std::fill(grad_w, grad_w + size, T(0));  // an empty batch
  parallel_for(0, size, 1 << 14, [&](index_t lo, index_t hi) {
    for (index_t t = 1; t < parts; ++t)
      if (started[t])
        for (index_t i = lo; i < hi; ++i) grad_w[i] += partials[(t - 1) * size + i];
  });
  if (grad_bias) conv2d_bias_grad(s, grad_y, grad_bias);
}

template <class T>
void conv2d_bias_grad(const Conv2dShape& s, const T* grad_y, T* grad_bias) {
  const index_t PQ = s.pixels();
  parallel_for(0, s.K, 1, [&](index_t lo, index_t hi) {
    for (index_t k = lo; k < hi; ++k) {
      double sum = 0;  // N*P*Q terms: accumulate wide
      for (index_t n = 0; n < s.N; ++n) {
        const T* row = grad_y + (n * s.K + k) * PQ;
        for (index_t i = 0; i < PQ; ++i) sum += row[i];
      }
      grad_bias[k] = static_cast<T>(sum);
    }
  });
}

#define FASTCONV_INSTANTIATE(T)                                                                     \
  template void conv2d_forward_im2col<T>(const Conv2dShape&, const T*, const T*, const T*, bool, T*); \
  template void conv2d_backward_input_im2col<T>(const Conv2dShape&, const T*, const T*, T*);          \
  template void conv2d_backward_weight_im2col<T>(const Conv2dShape&, const T*, const T*, T*, T*);    \
  template void conv2d_bias_grad<T>(const Conv2dShape&, const T*, T*);
FASTCONV_INSTANTIATE(float)
FASTCONV_INSTANTIATE(double)
#undef FASTCONV_INSTANTIATE

}  // namespace fastconv::conv
