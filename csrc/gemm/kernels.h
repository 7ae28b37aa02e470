// The micro-kernel interface between the GEMM driver (driver.h) and the per-ISA kernels
// (microkernel_*.cpp). A micro-kernel computes one MR x NR tile of C from packed panels:
//   a: kc steps of MR values (packed A panel), b: kc steps of NR values (a packed B panel,
//   the steps ldb apart: nr in the GEMM driver, wider where B rows are interleaved with others),
// and stores alpha * (a b) + beta * c + bias[row], then ReLU if asked.
#pragma once
#include "core/view.h"

namespace fastconv::gemm {

template <class T>
struct TileEpilogue {
  T alpha = 1, beta = 0;      // beta == 0: C is not read (it may hold garbage or NaN)
  const T* bias = nullptr;    // MR per-row values, or nullptr
  bool relu = false;
  int rows = 1 << 30;         // rows of the tile to store (the first ones): a partial last panel
  const T* residual = nullptr;  // the tile's values added before the ReLU (row stride ldc), or nullptr
};

template <class T>
using MicroKernel = void (*)(index_t kc, const T* a, const T* b, index_t ldb, T* c, index_t ldc,
                             const TileEpilogue<T>& ep);

// The same tile with B read in place: step k's NR values start at b + rows[k] (any alignment).
// Implicit GEMM gathers a convolution's taps so, with no packed copy of B.
template <class T>
using GatheredMicroKernel = void (*)(index_t kc, const T* a, const T* b, const index_t* rows, T* c, index_t ldc,
                                     const TileEpilogue<T>& ep);

// A micro-kernel with the cache blocking chosen for it.
template <class T>
struct KernelSet {
  MicroKernel<T> kernel;
  GatheredMicroKernel<T> gathered_kernel;
  double (*fma_loop)(index_t iterations);  // peak probe for the benchmark; returns flops done
  int mr, nr;          // register tile
  index_t kc;          // most depth of a packed panel: an A micro-panel (mr x kc) stays in L1
  index_t nc;          // most columns of a packed B block (kc x nc), one thread's (gemm_packed: half of L2)
};

// The dot tile: sums[i * NB + j] = the dot product of A's row i and B's column j over `depth`
// values, both contiguous in memory (rows of a and of b, lda and ldb apart; a product A B^T of
// two row-major matrices). Rows past `rows` and columns past `cols` repeat the last ones and
// their sums are not wanted. MB x NB accumulators run along the depth, a vector of it at a time,
// so neither operand is packed: for small M x N over a long depth (a Winograd weight gradient's
// 16 x 16 channels over thousands of tiles) packing both would cost more than the arithmetic.
template <class T>
using DotKernel = void (*)(index_t depth, const T* a, index_t lda, index_t rows, const T* b, index_t ldb,
                           index_t cols, T* sums);
template <class T>
struct DotSet {
  DotKernel<T> kernel = nullptr;  // nullptr: the ISA has none, products go through packing
  int mb = 0, nb = 0;
};

// Per ISA and type: a wide tile for large M and a narrow one that wastes fewer padded rows
// when M is a small multiple of 8 (conv layers with 16, 32, 64 output channels); the two may
// be the same; and the dot tile. Each is defined in the file compiled for that ISA.
template <class T>
struct KernelFamily {
  KernelSet<T> wide, narrow;
  DotSet<T> dot;
};
const KernelFamily<float>& generic_kernels_f32();
const KernelFamily<double>& generic_kernels_f64();
const KernelFamily<float>& avx2_kernels_f32();
const KernelFamily<double>& avx2_kernels_f64();
const KernelFamily<float>& avx512_kernels_f32();
const KernelFamily<double>& avx512_kernels_f64();

// The family for the active ISA (core/isa.h).
template <class T>
const KernelFamily<T>& active_family();
template <>
const KernelFamily<float>& active_family<float>();
template <>
const KernelFamily<double>& active_family<double>();

// The active ISA's set for a product with M rows: the tile that computes the fewest padded
// rows, counting the narrow tile's rows ~10% dearer (it loads a B vector per fewer FMAs).
template <class T>
const KernelSet<T>& active_kernels(index_t M = 0) {
  const KernelFamily<T>& f = active_family<T>();
  if (M <= 0) return f.wide;
  const auto padded = [M](index_t mr) { return (M + mr - 1) / mr * mr; };
  return padded(f.narrow.mr) * 10 < padded(f.wide.mr) * 9 ? f.narrow : f.wide;
}

constexpr int kMaxMR = 16, kMaxNR = 64;  // bounds on every set's tile, for edge buffers
constexpr int kMaxDotTile = 64;         // bound on mb * nb
// Bounds on the products the dot tile takes (driver.h's dot_fits): the shorter side of the output,
// and the depth (below it the per-output sums cost more than packing saves).
constexpr index_t kDotMaxShortSide = 64, kDotMinDepth = 128;

}  // namespace fastconv::gemm
