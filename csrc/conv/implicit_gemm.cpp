// conv2d as an implicit GEMM: the same GEMM as im2col.cpp, but the B-panel packer gathers
// image patches straight from the input, so no column matrix is ever materialised. Extra memory
// is the GEMM's packing buffers only (a kc x nc panel per thread and an mc x kc block).
// Bias and ReLU are applied by the micro-kernel while the output tile is in registers.
#include <cstring>

#include "conv/conv2d.h"
#include "gemm/gemm.h"

namespace fastconv::conv {

namespace {

// Packs B(k, j) = x[img, c, p*sh - pt + r*dh, q*sw - pl + s*dw] (0 in the padding), with
// k = (c, r, s) inside one group and j = (img, p, q) over a chunk of the batch.
template <class T>
struct PackImagePatches {
  const Conv2dShape& s;
  const T* x;             // first image of the batch
  index_t channel0;       // first input channel of the group

  void operator()(index_t k0, index_t kc, index_t j0, index_t cols, int nr, T* dst) const {
    // The panel's columns as runs of consecutive q within one output row.
    struct Run {
      index_t col, len, image_offset, p, q;
    };
    Run runs[gemm::kMaxNR];
    int n_runs = 0;
    for (index_t c = 0; c < cols;) {
      const index_t j = j0 + c, img = j / s.pixels(), pq = j % s.pixels();
      const index_t p = pq / s.Q, q = pq % s.Q, len = std::min(cols - c, s.Q - q);
      runs[n_runs++] = {c, len, img * s.C * s.H * s.W, p, q};
      c += len;
    }
    const auto& prm = s.p;
    for (index_t k = 0; k < kc; ++k) {
      const index_t row = k0 + k, RS = s.R * s.S;
      const index_t c = channel0 + row / RS, r = row / s.S % s.R, kw = row % s.S;
      T* out = dst + k * nr;
      for (int i = 0; i < n_runs; ++i) {
        const Run& run = runs[i];
        T* seg = out + run.col;
        const index_t ih = run.p * prm.stride[0] - prm.pad_begin[0] + r * prm.dilation[0];
        if (ih < 0 || ih >= s.H) {
          std::fill(seg, seg + run.len, T(0));
          continue;
        }
        const index_t w_offset = run.q * prm.stride[1] - prm.pad_begin[1] + kw * prm.dilation[1];
        const Range qs = valid_range(w_offset, prm.stride[1], s.W, run.len);
        const T* src = x + run.image_offset + (c * s.H + ih) * s.W + w_offset;
        std::fill(seg, seg + qs.lo, T(0));
        if (prm.stride[1] == 1) {
          std::memcpy(seg + qs.lo, src + qs.lo, sizeof(T) * (qs.hi - qs.lo));
        } else {
          for (index_t q = qs.lo; q < qs.hi; ++q) seg[q] = src[q * prm.stride[1]];
        }
        std::fill(seg + qs.hi, seg + run.len, T(0));
      }
      std::fill(out + cols, out + nr, T(0));
    }
  }
};

}  // namespace

template <class T>
void conv2d_forward_implicit_gemm(const Conv2dShape& s, const T* x, const T* w, const T* bias, bool relu, T* y) {
  const index_t G = s.groups(), Kg = s.K_per_group(), CRSg = s.column_rows() / G, PQ = s.pixels();
  // The whole batch is one GEMM: N * P * Q columns, output written in place as [K, N*P*Q].
  const MatrixView<T> out{y, s.K, s.N * PQ, PQ, 1, 0, 0, PQ, s.K * PQ};
  for (index_t g = 0; g < G; ++g) {
    const auto weight = as_const(dense_matrix(w + g * Kg * CRSg, Kg, CRSg));
    gemm::gemm_packed(Kg, s.N * PQ, CRSg, gemm::PackMatrixA<T>{weight},
                      PackImagePatches<T>{s, x, g * s.C_per_group()}, out.row_block(g * Kg, Kg),
                      gemm::Epilogue<T>{T(1), T(0), bias ? bias + g * Kg : nullptr, relu});
  }
}

template void conv2d_forward_implicit_gemm<float>(const Conv2dShape&, const float*, const float*, const float*, bool, float*);
template void conv2d_forward_implicit_gemm<double>(const Conv2dShape&, const double*, const double*, const double*, bool, double*);

}  // namespace fastconv::conv
