// The micro-kernel interface between the GEMM driver (driver.h) and the per-ISA kernels
// (microkernel_*.cpp). A micro-kernel computes one MR x NR tile of C from packed panels:
//   a: kc steps of MR values (packed A panel), b: kc steps of NR values (packed B panel),
// and stores alpha * (a b) + beta * c + bias[row], then ReLU if asked.
#pragma once
#include "core/view.h"

namespace fastconv::gemm {

template <class T>
struct TileEpilogue {
  T alpha = 1, beta = 0;      // beta == 0: C is not read (it may hold garbage or NaN)
  const T* bias = nullptr;    // MR per-row values, or nullptr
  bool relu = false;
};

template <class T>
using MicroKernel = void (*)(index_t kc, const T* a, const T* b, T* c, index_t ldc,
                             const TileEpilogue<T>& ep);

// A micro-kernel with the cache blocking chosen for it.
template <class T>
struct KernelSet {
  MicroKernel<T> kernel;
  double (*fma_loop)(index_t iterations);  // peak probe for the benchmark; returns flops done
  int mr, nr;          // register tile
  index_t kc;          // depth of a packed panel: an A micro-panel (mr x kc) stays in L1
  index_t nc;          // columns of a packed B block (kc x nc): stays in one core's L2
  index_t mc;          // rows of A packed at once (shared by the threads, L3)
};

// One set per ISA and type; each is defined in the file compiled for that ISA.
const KernelSet<float>& generic_kernels_f32();
const KernelSet<double>& generic_kernels_f64();
const KernelSet<float>& avx2_kernels_f32();
const KernelSet<double>& avx2_kernels_f64();
const KernelSet<float>& avx512_kernels_f32();
const KernelSet<double>& avx512_kernels_f64();

// The set for the active ISA (core/isa.h).
template <class T>
const KernelSet<T>& active_kernels();
template <>
const KernelSet<float>& active_kernels<float>();
template <>
const KernelSet<double>& active_kernels<double>();

constexpr int kMaxMR = 16, kMaxNR = 64;  // bounds on every set's tile, for edge buffers

}  // namespace fastconv::gemm
