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
  index_t kc;          // most depth of a packed panel: a B micro-panel (kc x nr) stays in L1
  index_t nc;          // most columns of a packed B block (kc x nc), one thread's, in L3
  index_t mc;          // most rows of a packed A block (mc x kc): half of one core's L2
};

// Per ISA and type: a wide tile for large M and a narrow one that wastes fewer padded rows
// when M is a small multiple of 8 (conv layers with 16, 32, 64 output channels); the two may
// be the same. Each is defined in the file compiled for that ISA.
template <class T>
struct KernelFamily {
  KernelSet<T> wide, narrow;
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

}  // namespace fastconv::gemm
