// conv2d as an implicit GEMM: the same GEMM as im2col.cpp, but the B-panel packer gathers
// image patches straight from the input, so no column matrix is ever materialised. Extra memory
// is the GEMM's packing buffers only (a kc x nc panel per thread and an mc x kc block).
// Bias and ReLU are applied by the micro-kernel while the output tile is in registers.
#include <vector>

#include "conv/conv2d.h"
#include "gemm/gemm.h"

namespace fastconv::conv {

namespace {

// Where row k = (c, r, s) of the virtual column matrix reads: the channel plane and the
// kernel tap's offsets. Tabulated once per call so that packing does no division per row.
struct PatchRow {
  index_t plane;  // (c * H) * W: start of the input channel in one image
  index_t dy;     // r * dilation_h - pad_top
  index_t dx;     // s * dilation_w - pad_left
};

// Packs B(k, j) = x[img, c, p*sh + dy(k), q*sw + dx(k)] (0 in the padding), with k = (c, r, s)
// inside one group and j = (img, p, q) over the batch.
template <class T>
struct PackImagePatches {
  const Conv2dShape& s;
  const T* x;
  const PatchRow* rows;  // one per k of this group

  void operator()(index_t k0, index_t kc, index_t j0, index_t cols, int nr, T* dst) const {
    // The panel's columns as runs of consecutive q within one output row.
    struct Run {
      index_t col, len, image_offset, ih0, iw0;
    };
    Run runs[gemm::kMaxNR];
    int n_runs = 0;
    const index_t sh = s.p.stride[0], sw = s.p.stride[1];
    for (index_t c = 0; c < cols;) {
      const index_t j = j0 + c, img = j / s.pixels(), pq = j % s.pixels();
      const index_t p = pq / s.Q, q = pq % s.Q, len = std::min(cols - c, s.Q - q);
      runs[n_runs++] = {c, len, img * s.C * s.H * s.W, p * sh, q * sw};
      c += len;
    }
    for (index_t k = 0; k < kc; ++k) {
      const PatchRow& row = rows[k0 + k];
      T* out = dst + k * nr;
      for (int i = 0; i < n_runs; ++i) {
        const Run& run = runs[i];
        T* seg = out + run.col;
        const index_t ih = run.ih0 + row.dy, iw = run.iw0 + row.dx;
        if (ih < 0 || ih >= s.H) {
          for (index_t q = 0; q < run.len; ++q) seg[q] = T(0);
          continue;
        }
        const T* src = x + run.image_offset + row.plane + ih * s.W + iw;
        if (sw == 1 && iw >= 0 && iw + run.len <= s.W) {  // the common case: wholly inside
          for (index_t q = 0; q < run.len; ++q) seg[q] = src[q];
          continue;
        }
        const Range qs = valid_range(iw, sw, s.W, run.len);
        for (index_t q = 0; q < qs.lo; ++q) seg[q] = T(0);
        for (index_t q = qs.lo; q < qs.hi; ++q) seg[q] = src[q * sw];
        for (index_t q = qs.hi; q < run.len; ++q) seg[q] = T(0);
      }
      for (index_t c = cols; c < nr; ++c) out[c] = T(0);
    }
  }
};

std::vector<PatchRow> patch_rows(const Conv2dShape& s, index_t group) {
  const index_t rows = s.column_rows() / s.groups();
  std::vector<PatchRow> table(rows);
  for (index_t k = 0; k < rows; ++k) {
    const index_t c = group * s.C_per_group() + k / (s.R * s.S), r = k / s.S % s.R, kw = k % s.S;
    table[k] = {c * s.H * s.W, r * s.p.dilation[0] - s.p.pad_begin[0], kw * s.p.dilation[1] - s.p.pad_begin[1]};
  }
  return table;
}

}  // namespace

template <class T>
void conv2d_forward_implicit_gemm(const Conv2dShape& s, const T* x, const T* w, const T* bias, bool relu, T* y) {
  const index_t G = s.groups(), Kg = s.K_per_group(), CRSg = s.column_rows() / G, PQ = s.pixels();
  // The whole batch is one GEMM: N * P * Q columns, output written in place as [K, N*P*Q].
  const MatrixView<T> out{y, s.K, s.N * PQ, PQ, 1, 0, 0, PQ, s.K * PQ};
  for (index_t g = 0; g < G; ++g) {
    const auto weight = as_const(dense_matrix(w + g * Kg * CRSg, Kg, CRSg));
    const std::vector<PatchRow> rows = patch_rows(s, g);
    gemm::gemm_packed(Kg, s.N * PQ, CRSg, gemm::PackMatrixA<T>{weight},
                      PackImagePatches<T>{s, x, rows.data()}, out.row_block(g * Kg, Kg),
                      gemm::Epilogue<T>{T(1), T(0), bias ? bias + g * Kg : nullptr, relu});
  }
}

template void conv2d_forward_implicit_gemm<float>(const Conv2dShape&, const float*, const float*, const float*, bool, float*);
template void conv2d_forward_implicit_gemm<double>(const Conv2dShape&, const double*, const double*, const double*, bool, double*);

}  // namespace fastconv::conv
