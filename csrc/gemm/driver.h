// The blocked, threaded GEMM driver (Goto/BLIS loop nest), generic over how A and B are
// packed:  C[M x N] = alpha * A[M x K] B[K x N] + beta * C  (+ row bias, residual, ReLU).
//
//   threads split C into units (an nc-column block, and a row range when N is small); per unit:
//   for each kc slice of K:
//     pack the kc x nc B block (half of L2), row by row
//     for each mr rows of the unit (A micro-panel, mr x kc, in L1):
//       pack the micro-panel, unless A came packed whole (PackedA)
//       for each nr columns (B micro-panel, streamed from L2): micro-kernel
#pragma once
#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "core/isa.h"
#include "core/parallel.h"
#include "core/prefetch.h"
#include "core/scratch.h"
#include "core/view.h"
#include "gemm/kernels.h"
#include "gemm/pack.h"

namespace fastconv::gemm {

template <class T>
struct Epilogue {
  T alpha = 1, beta = 0;
  const T* row_bias = nullptr;  // M values added to each row, or nullptr
  bool relu = false;
  // Values added before the ReLU, laid out as C (the same strides from here), or nullptr: a
  // ResNet block's shortcut, added where the product is stored rather than in a pass of its own.
  const T* residual = nullptr;
};

// dst[0, n) = epilogue(alpha * src[0, n)) for row `row` of a tile, dst contiguous; `residual`
// the run's values to add (nullptr: none).
template <class T>
void merge_run(const T* __restrict src, T* dst, index_t n, const TileEpilogue<T>& ep, index_t row,
               const T* residual) {
  const T alpha = ep.alpha, beta = ep.beta, bias = ep.bias ? ep.bias[row] : T(0);
  for (index_t j = 0; j < n; ++j) {
    T v = alpha * src[j];
    if (beta != T(0)) v += beta * dst[j];  // dst not read when beta is 0: it may be garbage
    v += bias;
    if (residual) v += residual[j];
    dst[j] = ep.relu && v < T(0) ? T(0) : v;
  }
}

// The epilogue of the tile at rows [i0, i0 + rows) for one k slice, whose first value lies
// `offset` values into C: the first slice scales C by beta, later ones add to it; bias, the
// residual and ReLU come with the last.
template <class T>
TileEpilogue<T> tile_epilogue(const Epilogue<T>& ep, index_t i0, index_t rows, bool first_slice, bool last_slice,
                              index_t offset) {
  return {ep.alpha, first_slice ? ep.beta : T(1), last_slice && ep.row_bias ? ep.row_bias + i0 : nullptr,
          last_slice && ep.relu, static_cast<int>(rows),
          last_slice && ep.residual ? ep.residual + offset : nullptr};
}

// C's columns [j0, j0 + cols) when they are a whole tile's, in one unit-stride run, else
// nullptr. gemm_packed finds it once per unit for each B micro-panel, not per tile.
template <class T>
T* whole_tile_columns(const KernelSet<T>& ks, const MatrixView<T>& c, index_t j0, index_t cols) {
  return cols == ks.nr && c.unit_stride_run(j0, cols) ? c.data + c.col_offset(j0) : nullptr;
}

// A tile that cannot go straight to C: computed into a small buffer whose valid part is merged
// with the tile's epilogue. Tiles that straddle two images of a grouped C (pointwise convs: 196
// pixels, one tile in twelve) merge each side as a contiguous run, so the loops vectorise.
// Kept out of line: its buffer's stack frame, set up for every tile, had cost 2% of pointwise.
// `residual`: the epilogue's, laid out as C, or nullptr (none, or not the last k slice).
template <class T>
__attribute__((noinline)) void store_tile_through_buffer(const KernelSet<T>& ks, index_t kc, const T* a, const T* b,
                                                         const MatrixView<T>& c, index_t i0, index_t j0, index_t rows,
                                                         index_t cols, const TileEpilogue<T>& tile_ep,
                                                         const T* residual) {
  alignas(64) T tile[kMaxMR * kMaxNR];
  // C's lines are asked for before the kernel runs, every line of each run: the merge's stores
  // had waited on them (pointwise 0.98-0.99x the time).
  for (index_t j = 0; j < cols;) {
    const index_t run = c.unit_run(j0 + j, cols - j);
    for (index_t i = 0; i < rows; ++i) prefetch_span(c.data + c.row_offset(i0 + i) + c.col_offset(j0 + j), run);
    j += run;
  }
  ks.kernel(kc, a, b, ks.nr, tile, ks.nr, TileEpilogue<T>{T(1), T(0), nullptr, false, static_cast<int>(rows)});
  for (index_t j = 0; j < cols;) {
    const index_t run = c.unit_run(j0 + j, cols - j);
    for (index_t i = 0; i < rows; ++i) {
      const index_t at = c.row_offset(i0 + i) + c.col_offset(j0 + j);
      merge_run(tile + i * ks.nr + j, c.data + at, run, tile_ep, i, residual ? residual + at : nullptr);
    }
    j += run;
  }
}

// One output tile: straight into C when its columns are whole (`columns`, from
// whole_tile_columns) and its rows equally spaced, else through a buffer. A partial last row
// panel goes straight to C too (the kernel stores only its first `rows` rows): 16-channel
// layers have one in every three.
template <class T>
inline void store_tile(const KernelSet<T>& ks, index_t kc, const T* a, const T* b, const MatrixView<T>& c,
                       T* columns, index_t i0, index_t j0, index_t rows, index_t cols, const Epilogue<T>& ep,
                       bool first_slice, bool last_slice) {
  const index_t origin = ep.residual ? c.row_offset(i0) + c.col_offset(j0) : 0;
  const TileEpilogue<T> tile_ep = tile_epilogue(ep, i0, rows, first_slice, last_slice, origin);
  if (columns && c.regular_rows(i0, rows))
    ks.kernel(kc, a, b, ks.nr, columns + c.row_offset(i0), c.row_stride, tile_ep);
  else
    store_tile_through_buffer(ks, kc, a, b, c, i0, j0, rows, cols, tile_ep, last_slice ? ep.residual : nullptr);
}

// One entry of C, in row i and `at` values into C, finished from its scaled product (alpha * A
// B's entry): + beta * out (out not read when beta is 0: it may be garbage) + bias + residual,
// then ReLU.
template <class T>
T finished(const Epilogue<T>& ep, index_t i, index_t at, T scaled, T out) {
  T v = scaled;
  if (ep.beta != T(0)) v += ep.beta * out;
  if (ep.row_bias) v += ep.row_bias[i];
  if (ep.residual) v += ep.residual[at];
  return ep.relu && v < T(0) ? T(0) : v;
}

// C = beta * C (+ bias, residual, ReLU): the whole product when K == 0.
template <class T>
void apply_epilogue_only(const MatrixView<T>& c, const Epilogue<T>& ep) {
  for (index_t i = 0; i < c.rows; ++i)
    for (index_t j = 0; j < c.cols; ++j) {
      const index_t at = c.row_offset(i) + c.col_offset(j);
      c.data[at] = finished(ep, i, at, T(0), c.data[at]);
    }
}

// Whether the dot tile (kernels.h) computes A B: A's rows and B's columns contiguous along the
// depth K, no groups, and K long enough that packing both operands ((M + N) K values) would cost
// more than the dot tiles' work per output (summing lanes, the epilogue): K >= 10 M N / (M + N),
// fitted to one core's timings of both (64 x 64 crossed near K = 330, 32 x 32 near 160; 128 x 128
// lost at every depth tried, hence the bound on the short side).
template <class T>
bool dot_fits(const DotSet<T>& dot, const MatrixView<const T>& a, const MatrixView<const T>& b) {
  const index_t M = a.rows, N = b.cols, K = a.cols;
  const bool ungrouped = a.row_group == 0 && a.col_group == 0 && b.row_group == 0 && b.col_group == 0;
  return dot.kernel && ungrouped && a.col_stride == 1 && b.row_stride == 1 && std::min(M, N) <= kDotMaxShortSide &&
         K >= kDotMinDepth && K * (M + N) >= 10 * M * N;
}

// C = epilogue(A B) by dot tiles: row blocks of A outermost, so that a block's rows stay in L1
// while the columns of B stream past them.
template <class T>
void gemm_dot(const DotSet<T>& dot, const MatrixView<const T>& a, const MatrixView<const T>& b,
              const MatrixView<T>& c, const Epilogue<T>& ep) {
  const index_t M = a.rows, N = b.cols, K = a.cols;
  const index_t col_blocks = ceil_div(N, dot.nb), blocks = ceil_div(M, dot.mb) * col_blocks;
  constexpr double kMinFlopsPerThread = 4e6;  // as gemm_packed's
  const index_t grain = std::max<index_t>(1, static_cast<index_t>(kMinFlopsPerThread / (2.0 * dot.mb * dot.nb * K)));
  const bool plain = c.row_group == 0 && c.col_group == 0;  // C's entries addressed directly
  const bool scaled_only = plain && c.col_stride == 1 && !ep.row_bias && !ep.residual && !ep.relu;
  parallel_for(0, blocks, grain, [&](index_t lo, index_t hi) {
    T sums[kMaxDotTile];
    for (index_t block = lo; block < hi; ++block) {
      const index_t i0 = block / col_blocks * dot.mb, j0 = block % col_blocks * dot.nb;
      const index_t rows = std::min<index_t>(dot.mb, M - i0), cols = std::min<index_t>(dot.nb, N - j0);
      // C's block is read after the sums: fetched while they are computed (a Winograd weight
      // gradient adds each block of tiles into C, by then long gone from L1).
      if (scaled_only && ep.beta != T(0))
        for (index_t i = 0; i < rows; ++i) prefetch_line(c.data + (i0 + i) * c.row_stride + j0);
      dot.kernel(K, a.data + i0 * a.row_stride, a.row_stride, rows, b.data + j0 * b.col_stride, b.col_stride, cols,
                 sums);
      if (scaled_only) {
        for (index_t i = 0; i < rows; ++i) {
          T* out = c.data + (i0 + i) * c.row_stride + j0;
          const T* s = sums + i * dot.nb;
          if (ep.beta == T(0))
            for (index_t j = 0; j < cols; ++j) out[j] = ep.alpha * s[j];
          else
            for (index_t j = 0; j < cols; ++j) out[j] = ep.alpha * s[j] + ep.beta * out[j];
        }
        continue;
      }
      for (index_t i = 0; i < rows; ++i) {
        for (index_t j = 0; j < cols; ++j) {
          const index_t at = plain ? (i0 + i) * c.row_stride + (j0 + j) * c.col_stride
                                   : c.row_offset(i0 + i) + c.col_offset(j0 + j);
          c.data[at] = finished(ep, i0 + i, at, ep.alpha * sums[i * dot.nb + j], c.data[at]);
        }
      }
    }
  });
}

// The depth of each k slice of a product of depth K for a kernel set: K in equal slices of at
// most ks.kc (K = 576 runs 2 x 288, not 384 + 192).
template <class T>
index_t slice_depth(const KernelSet<T>& ks, index_t K) {
  return ceil_div(K, ceil_div(K, ks.kc));
}

// Columns per block of C for about `wanted` blocks (a multiple of `threads`), whole tiles of nr
// and at most nc_max: of the block counts from `wanted` down, the one whose busiest thread has
// the fewest tiles. 6,272 columns (a pointwise conv over 32 images of 14 x 14) in 16 blocks of
// 13 tiles end in a block of one tile, and one thread gets 8 full blocks to the other's 7; in
// 14 blocks of 14 tiles each gets 7.
inline index_t balanced_block_columns(index_t N, index_t nr, index_t nc_max, index_t wanted, index_t threads) {
  const index_t tiles = ceil_div(N, nr);
  // The busiest thread's tiles with blocks of `per_block` tiles.
  const auto load = [&](index_t per_block) { return ceil_div(ceil_div(tiles, per_block), threads) * per_block; };
  index_t best = ceil_div(tiles, wanted);
  for (index_t blocks = wanted - threads; blocks >= threads; blocks -= threads) {
    const index_t per_block = ceil_div(tiles, blocks);
    if (per_block * nr > nc_max) break;
    if (load(per_block) < load(best)) best = per_block;
  }
  return best * nr;
}

// An A packed before the ISA was switched has panels of another height: refused, not read wrong.
template <class T>
void check_packed_for(const PackedA<T>& a, const KernelSet<T>& ks) {
  if (a.mr != ks.mr) throw std::logic_error("gemm: A was packed for another micro-kernel");
}

template <class T, class PackA, class PackB>
void gemm_packed(index_t M, index_t N, index_t K, const PackA& pack_a, const PackB& pack_b,
                 const MatrixView<T>& c, const Epilogue<T>& ep) {
  if (M == 0 || N == 0) return;
  if (K == 0) return apply_epilogue_only(c, ep);
  const KernelSet<T>& ks = active_kernels<T>(M);
  const index_t mr = ks.mr, nr = ks.nr;
  constexpr bool a_prepacked = std::is_same_v<PackA, PackedA<T>>;
  if constexpr (a_prepacked) check_packed_for(pack_a, ks);
  const index_t kc_max = slice_depth(ks, K);

  // Split N into at least one block per thread when N allows; when it does not, also split
  // the rows, so that small-N products still use every core. A thread packs the A rows of its
  // units and the B block of each: with A the larger operand (M > N: a pointwise conv's weight
  // gradient, 512 x 256 over 6,272 pixels), splitting N would pack all of A once per thread,
  // a fifth of that product's time, so the rows are split instead.
  // A thread gets at least kMinFlopsPerThread of work: a fork/join costs tens of microseconds,
  // more on a busy machine, which small products cannot repay.
  constexpr double kMinFlopsPerThread = 4e6;
  const int threads = static_cast<int>(std::clamp<double>(2.0 * M * N * K / kMinFlopsPerThread, 1, num_threads()));
  // The B block takes half of L2 and every A micro-panel, held in L1, sweeps it: the kernel
  // streams the wide B steps (nr values) from L2 and broadcasts the narrow A steps from L1. The
  // other way round (a B micro-panel in L1 sweeping an A block in L2, A's steps streamed) one
  // AVX-512 core ran the 12 x 32 tile at 73-85% of its FMA peak; this way at 91-94%, as long as
  // the B block stays in L2 (a block twice as large: 75%).
  const index_t l2_columns = static_cast<index_t>(l2_cache_bytes()) / 2 / (kc_max * static_cast<index_t>(sizeof(T)));
  const index_t nc_max = std::clamp<index_t>(l2_columns / nr * nr, nr, ks.nc);
  // Block counts are a multiple of the thread count so that no core idles at the end.
  // With A packed beforehand a unit costs only its B block, so there are eight per thread,
  // taken from a shared counter: a thread slowed by another tenant takes fewer.
  const index_t units_per_thread = a_prepacked && threads > 1 ? 8 : 1;
  const index_t m_panels = ceil_div(M, mr);
  const bool split_rows = !a_prepacked && M > N && m_panels >= threads;
  const index_t n_blocks_wanted =
      split_rows ? ceil_div(N, nc_max) : round_up(ceil_div(N, nc_max), threads * units_per_thread);
  const index_t nc = split_rows ? round_up(ceil_div(N, n_blocks_wanted), nr)
                                 : balanced_block_columns(N, nr, nc_max, n_blocks_wanted, threads);
  const index_t n_blocks = ceil_div(N, nc);
  const index_t row_splits = split_rows ? threads : std::max<index_t>(1, threads / n_blocks);
  const index_t units = n_blocks * row_splits;

  const int team = static_cast<int>(std::min<index_t>(threads, units));

  // Each thread takes whole units (a column block and a range of row panels) from a shared
  // counter and packs what it needs itself: no shared buffer, so no barrier between k slices.
  // (A barrier per slice cost a scheduler time slice each whenever the machine was
  // oversubscribed.) A unit's results do not depend on the thread that computes it. Per unit
  // and k slice the B block is packed once, and each A micro-panel of the unit's rows sweeps it.
  std::atomic<index_t> next_unit{0};
  if (team > 1) note_threads_started();
#pragma omp parallel num_threads(team)
  {
    T* const a_packed = a_prepacked ? nullptr : thread_scratch<T>(mr * kc_max, ScratchSlot::gemm_a);
    T* const b_packed = thread_scratch<T>(ceil_div(nc, nr) * b_panel_stride<T>(kc_max, nr), ScratchSlot::gemm_b);
    // Where each B micro-panel's tiles go in C (whole_tile_columns), found once per unit: for a
    // grouped C it takes divisions, which taken per tile had cost a pointwise conv 4%.
    std::vector<T*> columns(ceil_div(nc, nr));
    for (index_t u; (u = next_unit.fetch_add(1, std::memory_order_relaxed)) < units;) {
      const index_t j0 = (u / row_splits) * nc, ncur = std::min(nc, N - j0);
      const index_t split = u % row_splits;
      const index_t row_lo = m_panels * split / row_splits * mr;
      const index_t row_hi = std::min(M, m_panels * (split + 1) / row_splits * mr);
      for (index_t jr = 0; jr < ncur; jr += nr)
        columns[jr / nr] = whole_tile_columns(ks, c, j0 + jr, std::min(nr, ncur - jr));
      for (index_t pc = 0; pc < K; pc += kc_max) {
        const index_t kc = std::min(kc_max, K - pc);
        const bool first = pc == 0, last = pc + kc == K;
        pack_b_block(pack_b, pc, kc, j0, ncur, ks.nr, b_packed);
        const index_t tiles = ceil_div(ncur, nr), b_panel = b_panel_stride<T>(kc, nr);
        for (index_t i0 = row_lo; i0 < row_hi; i0 += mr) {
          const index_t rows = std::min(mr, row_hi - i0);
          const T* a_panel = a_packed;
          if constexpr (a_prepacked) a_panel = pack_a.panel(i0, pc);
          else pack_a(i0, rows, pc, kc, ks.mr, a_packed);
          for (index_t jr = 0; jr < ncur; jr += nr) {
            store_tile(ks, kc, a_panel, b_packed + jr / nr * b_panel, c, columns[jr / nr], i0, j0 + jr, rows,
                       std::min(nr, ncur - jr), ep, first, last);
            // A row-major A's next micro-panel is packed from rows a multiple of 4 KiB apart
            // (an sgemm's), whose lines the hardware does not guess: they are asked for a
            // share per tile while this panel sweeps. (Packed as a whole block before the
            // sweep, unasked, the packing waited on them: 5.7% of sgemm 2048's time, now 2.6%.)
            if (!a_prepacked && i0 + mr < row_hi)
              prefetch_a_rows(pack_a, i0 + mr, std::min(mr, row_hi - i0 - mr), pc, kc, jr / nr, tiles);
          }
        }
      }
    }
  }
}

// Where the columns of a gathered product lie: `runs` runs of `tiles` whole tiles each. Tile t
// of run r reads its B rows at b + r * b_stride + t * nr and writes its C columns at
// c + r * c_stride + t * nr. One run is a dense product of tiles * nr columns.
struct TileRuns {
  index_t runs, tiles, b_stride = 0, c_stride = 0;
};

// C[M x columns] = alpha * A B + beta * C (+ row bias, residual, ReLU) on the calling thread, with A
// packed whole and B read in place, not packed: row k of the tile at b + j is the nr values
// from b + j + rows[k] (implicit GEMM's phase planes, where that row is one tap's). C's rows
// are ldc apart. As in gemm_packed, each A micro-panel (L1) sweeps every tile column: the
// caller sizes B (its band of planes) to L2. `between(step, steps)` runs after each of the
// `steps` tile columns: the caller interleaves its memory traffic with the arithmetic.
template <class T, class Between>
void gemm_gathered(index_t M, const TileRuns& columns, index_t K, const PackedA<T>& a, const T* b,
                   const index_t* rows, T* c, index_t ldc, const Epilogue<T>& ep, const Between& between) {
  const KernelSet<T>& ks = active_kernels<T>(M);
  const index_t mr = ks.mr, nr = ks.nr;
  check_packed_for(a, ks);
  const index_t kc_max = slice_depth(ks, K);
  const index_t steps = ceil_div(K, kc_max) * ceil_div(M, mr) * columns.runs * columns.tiles;
  index_t step = 0;
  for (index_t pc = 0; pc < K; pc += kc_max) {
    const index_t kc = std::min(kc_max, K - pc);
    for (index_t i0 = 0; i0 < M; i0 += mr) {
      const T* a_panel = a.panel(i0, pc);
      TileEpilogue<T> tile_ep = tile_epilogue(ep, i0, std::min(mr, M - i0), pc == 0, pc + kc == K, 0);
      for (index_t r = 0; r < columns.runs; ++r)
        for (index_t t = 0; t < columns.tiles; ++t) {
          const index_t at = r * columns.c_stride + t * nr + i0 * ldc;
          if (tile_ep.residual) tile_ep.residual = ep.residual + at;  // set in the last k slice only
          ks.gathered_kernel(kc, a_panel, b + r * columns.b_stride + t * nr, rows + pc, c + at, ldc, tile_ep);
          between(step++, steps);
        }
    }
  }
}

}  // namespace fastconv::gemm
