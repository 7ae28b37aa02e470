// Packing: copies a block of an operand into the order the micro-kernel reads it, zero-padding
// partial panels so that the kernel never needs an edge case.
//   A panel: kc steps of mr values  (dst[k * mr + r] = A(i0 + r, k0 + k))
//   B panel: kc steps of nr values  (dst[k * nr + c] = B(k0 + k, j0 + c))
// Any object with these two call shapes can feed the driver; conv/ uses that to gather
// image patches straight into a B panel.
#pragma once
#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "core/isa.h"
#include "core/prefetch.h"
#include "core/view.h"
#include "gemm/kernels.h"

namespace fastconv::gemm {

// Calls f(std::integral_constant<int, W>) for the W in Ws equal to w and returns true, or
// returns false: a run-time panel width turned into a compile-time one.
template <int... Ws, class F>
bool with_width(int w, F&& f) {
  return ((w == Ws ? (f(std::integral_constant<int, Ws>{}), true) : false) || ...);
}

// Calls f(i, n) for the pieces [i, i + n) of [0, count) that each lie in one group of `group`
// indices, counted from index `first` (group 0: no groups, one piece).
template <class F>
void for_each_group_run(index_t first, index_t count, index_t group, const F& f) {
  for (index_t i = 0; i < count;) {
    const index_t n = group ? std::min(count - i, group - (first + i) % group) : count - i;
    f(i, n);
    i += n;
  }
}

// dst[k * ld + j] = src[j][k] for k < kc: n sequences, each contiguous along k, interleaved into
// rows of ld values, lanes [n, ld) zero. A panel packed from rows of A, or from the columns of a
// transposed B, is this transpose. The AVX2 entry (pack_avx2.cpp) moves 8 x 8 blocks through
// registers; the others unroll a compile-time width.
void interleave_avx2(const float* const* src, index_t n, index_t kc, index_t ld, float* dst);
template <class T>
void interleave(const T* const* src, index_t n, index_t kc, index_t ld, T* dst) {
#if FASTCONV_X86
  if constexpr (std::is_same_v<T, float>)
    if (kc >= 8 && active_isa() >= Isa::avx2) return interleave_avx2(src, n, kc, ld, dst);
#endif
  const bool unrolled = n == ld && with_width<6, 8, 12>(static_cast<int>(ld), [&](auto W) {
    for (index_t k = 0; k < kc; ++k)
      for (int j = 0; j < W; ++j) dst[k * W + j] = src[j][k];
  });
  if (unrolled) return;
  for (index_t k = 0; k < kc; ++k) {
    for (index_t j = 0; j < n; ++j) dst[k * ld + j] = src[j][k];
    for (index_t j = n; j < ld; ++j) dst[k * ld + j] = T(0);
  }
}

template <class T>
struct PackMatrixB {
  MatrixView<const T> b;

  void operator()(index_t k0, index_t kc, index_t j0, index_t cols, int nr, T* dst) const {
    if (b.unit_stride_run(j0, cols)) {  // each row of the panel is one contiguous run
      const T* src = b.data + b.col_offset(j0);
      // A whole panel row of a compile-time width is a few vector moves (an A panel of a
      // transposed weight: 6 values); a call per 32-float row costs more than the copy.
      const bool fixed = cols == nr && with_width<6, 8, 12, 16, 32>(nr, [&](auto W) {
        for (index_t k = 0; k < kc; ++k) std::memcpy(dst + k * W, src + b.row_offset(k0 + k), W * sizeof(T));
      });
      if (fixed) return;
      for (index_t k = 0; k < kc; ++k) {
        const T* row = src + b.row_offset(k0 + k);
        T* out = dst + k * nr;
        for (index_t c = 0; c < cols; ++c) out[c] = row[c];
        for (index_t c = cols; c < nr; ++c) out[c] = T(0);
      }
      return;
    }
    if (b.row_stride == 1) {  // columns contiguous within each row group (a transposed matrix)
      const T* src[kMaxNR];
      for_each_group_run(k0, kc, b.row_group, [&](index_t k, index_t run) {
        for (index_t c = 0; c < cols; ++c) src[c] = &b.at(k0 + k, j0 + c);
        interleave(src, cols, run, nr, dst + k * nr);
      });
      return;
    }
    index_t offset[kMaxNR];
    for (index_t c = 0; c < cols; ++c) offset[c] = b.col_offset(j0 + c);
    for (index_t k = 0; k < kc; ++k) {
      const T* row = b.data + b.row_offset(k0 + k);
      for (index_t c = 0; c < cols; ++c) dst[k * nr + c] = row[offset[c]];
      std::fill(dst + k * nr + cols, dst + (k + 1) * nr, T(0));
    }
  }
};

// A panel of A is a panel of the transposed B: dst[k * mr + r] = A(i0 + r, k0 + k) = A^T(k0 + k, i0 + r).
template <class T>
struct PackMatrixA {
  MatrixView<const T> a;

  void operator()(index_t i0, index_t rows, index_t k0, index_t kc, int mr, T* dst) const {
    PackMatrixB<T>{a.transposed()}(k0, kc, i0, rows, mr, dst);
  }
};

// A whole A packed once, for products that share it (a convolution's weights over all its
// chunks): panel i0 (rows [i0, i0 + mr)) holds every k step, so the block of any k slice is a
// pointer into it and the driver packs nothing. Packed for the kernel set the driver picks for
// the same row count (active_kernels(rows)).
template <class T>
struct PackedA {
  std::vector<T> data;
  index_t depth = 0;
  int mr = 0;

  explicit PackedA(const MatrixView<const T>& a) : depth(a.cols), mr(active_kernels<T>(a.rows).mr) {
    data.resize(static_cast<std::size_t>((a.rows + mr - 1) / mr * mr * depth));
    const PackMatrixA<T> pack{a};
    for (index_t i0 = 0; i0 < a.rows; i0 += mr)
      pack(i0, std::min<index_t>(mr, a.rows - i0), 0, depth, mr, &data[i0 * depth]);
  }
  const T* panel(index_t i0, index_t k0) const { return data.data() + i0 * depth + k0 * mr; }
};

// Values from one packed B panel to the next in a block: kc steps of nr values and a cache
// line more. Panels of 32 floats over 256 steps are 32 KiB long, L1's size: unpadded, step k
// of every panel falls in one L1 set, more panels than its 8 ways, and packing a row across a
// block's panels evicts the lines it has just written. (Measured on pointwise: 0.997x the time,
// within this machine's noise; kept because the conflict is certain on any 8-way L1.)
template <class T>
constexpr index_t b_panel_stride(index_t kc, index_t nr) {
  return kc * nr + index_t(64 / sizeof(T));
}

// Packs the B block [k0, k0 + kc) x [j0, j0 + cols) as nr-wide panels b_panel_stride apart,
// asking the packer for one panel at a time.
template <class PackB, class T>
void pack_b_panels(const PackB& pack, index_t k0, index_t kc, index_t j0, index_t cols, int nr, T* dst) {
  for (index_t jr = 0; jr < cols; jr += nr)
    pack(k0, kc, j0 + jr, std::min<index_t>(nr, cols - jr), nr, dst + jr / nr * b_panel_stride<T>(kc, nr));
}

// The same block, however the packer does it best: panel by panel unless overloaded below.
template <class PackB, class T>
void pack_b_block(const PackB& pack, index_t k0, index_t kc, index_t j0, index_t cols, int nr, T* dst) {
  pack_b_panels(pack, k0, kc, j0, cols, nr, dst);
}

// A plain matrix whose block rows are unit-stride runs is walked row by row across every panel:
// panel by panel, each of kc rows would start on its own page (a 2048-wide B puts rows 8 KiB
// apart), and the copy ran at TLB-miss speed, 7% of a single-threaded sgemm 2048.
template <int NR, class T>
void pack_rows_across_panels(const MatrixView<const T>& b, index_t k0, index_t kc, index_t j0, index_t cols, T* dst) {
  const index_t first_col = b.col_offset(j0), full = cols / NR * NR, panel = b_panel_stride<T>(kc, NR);
  for (index_t k = 0; k < kc; ++k) {
    const T* src = b.data + b.row_offset(k0 + k) + first_col;
    for (index_t jr = 0; jr < full; jr += NR) {
      T* out = dst + jr / NR * panel + k * NR;
      std::memcpy(out, src + jr, NR * sizeof(T));  // a fixed size: a few vector moves
    }
    if (full < cols) {
      T* out = dst + full / NR * panel + k * NR;
      for (index_t c = 0; c < cols - full; ++c) out[c] = src[full + c];
      for (index_t c = cols - full; c < NR; ++c) out[c] = T(0);
    }
  }
}

// Grouped columns (an NCHW batch read as [channels, images * pixels]) at any alignment: each
// row is walked across the block in pieces contiguous in both the source (one group) and the
// destination (one panel). Gathering panel by panel, value by value, had cost a pointwise
// convolution over 14x14 maps (196 columns per image, 16 per panel) a fifth of its time.
template <int NR, class T>
void pack_grouped_rows_across_panels(const MatrixView<const T>& b, index_t k0, index_t kc, index_t j0, index_t cols,
                                     T* dst) {
  const index_t tail = cols % NR, panel = b_panel_stride<T>(kc, NR);
  for (index_t k = 0; k < kc; ++k) {
    const T* row = b.data + b.row_offset(k0 + k);
    for (index_t j = 0; j < cols;) {
      const index_t run = std::min(cols - j, b.col_group - (j0 + j) % b.col_group);
      const T* src = row + b.col_offset(j0 + j);
      for (index_t end = j + run; j < end;) {  // the run, a panel row at a time
        const index_t c = j % NR, piece = std::min(NR - c, end - j);
        T* out = dst + (j - c) / NR * panel + k * NR + c;
        if (piece == NR) std::memcpy(out, src, NR * sizeof(T));  // a fixed size: a few vector moves
        else for (index_t i = 0; i < piece; ++i) out[i] = src[i];
        src += piece;
        j += piece;
      }
    }
    if (tail) {
      T* last = dst + (cols - tail) / NR * panel + k * NR;
      std::fill(last + tail, last + NR, T(0));
    }
  }
}

template <int NR, class T>
bool pack_runs_across_panels(const MatrixView<const T>& b, index_t k0, index_t kc, index_t j0, index_t cols, T* dst) {
  if (b.unit_stride_run(j0, cols)) {
    pack_rows_across_panels<NR>(b, k0, kc, j0, cols, dst);
    return true;
  }
  if (b.col_group == 0 || b.col_stride != 1) return false;
  pack_grouped_rows_across_panels<NR>(b, k0, kc, j0, cols, dst);
  return true;
}

// Asks for share `part` of `parts` of the lines that packing A's rows [i0, i0 + rows) over
// the depth [k0, k0 + kc) will read, where each row's values are contiguous (a row-major A).
// Other packers, and other layouts, ask for nothing.
template <class PackA>
void prefetch_a_rows(const PackA&, index_t, index_t, index_t, index_t, index_t, index_t) {}

template <class T>
void prefetch_a_rows(const PackMatrixA<T>& pack, index_t i0, index_t rows, index_t k0, index_t kc, index_t part,
                     index_t parts) {
  const MatrixView<const T>& a = pack.a;
  if (a.col_stride != 1 || a.col_group != 0) return;
  for (index_t i = i0 + rows * part / parts; i < i0 + rows * (part + 1) / parts; ++i)
    prefetch_span(a.data + a.row_offset(i) + k0, kc);
}

template <class T>
void pack_b_block(const PackMatrixB<T>& pack, index_t k0, index_t kc, index_t j0, index_t cols, int nr, T* dst) {
  bool done = false;
  with_width<8, 16, 32>(nr, [&](auto NR) { done = pack_runs_across_panels<NR>(pack.b, k0, kc, j0, cols, dst); });
  if (!done) pack_b_panels(pack, k0, kc, j0, cols, nr, dst);
}

}  // namespace fastconv::gemm
