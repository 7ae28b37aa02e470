// The register-blocked micro-kernel, written once over a vector type V and instantiated by
// each microkernel_<isa>.cpp after its `#pragma GCC target`. Include it from nowhere else:
// code in this header is compiled for the including file's ISA, so it calls no inline STL
// function (the linker could keep that ISA's copy for baseline callers too).
//
// V provides: T, Reg, width, registers (vector register count), zero(), set1(x), load(p) (aligned),
// loadu(p), storeu(p, v), fma(a, b, c) = a * b + c, mul, add, max.
#pragma once
#include "core/isa.h"
#include "core/prefetch.h"
#include "gemm/kernels.h"

namespace fastconv::gemm {

// C[R x NV*width] from kc rank-1 updates: each step loads NV vectors of B and broadcasts R
// values of the A panel; R * NV accumulators stay in registers throughout. The A panel holds MR
// values per step; R < MR computes only the first R rows of a partial last panel. B's step k is
// the packed panel's row (b + k * ldb) or, gathered, a row read in place (b + rows[k]).
template <class V, int MR, int NV, bool Gathered, int R = MR>
inline __attribute__((always_inline)) void micro_kernel_body(index_t kc, const typename V::T* a,
                                                             const typename V::T* b, index_t ldb,
                                                             const index_t* rows, typename V::T* c, index_t ldc,
                                                             const TileEpilogue<typename V::T>& ep) {
  using Reg = typename V::Reg;
  constexpr int W = V::width;
  Reg acc[R][NV];
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) {
    prefetch_line(c + i * ldc);
    prefetch_line(c + i * ldc + NV * W - 1);
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) acc[i][j] = V::zero();
  }

#pragma GCC unroll 4
  for (index_t k = 0; k < kc; ++k) {
    // The A micro-panel stays in L1 across the tile columns it sweeps; B's wide steps stream
    // from L2 (driver.h). (A prefetch of A's next steps, left from the opposite arrangement, was
    // level or slower: sgemm 2048, the 7x7 layer, pointwise, on AVX-512 and AVX2.)
    const typename V::T* b_row = Gathered ? b + rows[k] : b + k * ldb;
    Reg bv[NV];
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) bv[j] = Gathered ? V::loadu(b_row + j * W) : V::load(b_row + j * W);
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      const Reg av = V::set1(a[i]);
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) acc[i][j] = V::fma(av, bv[j], acc[i][j]);
    }
    a += MR;
  }

  const Reg alpha = V::set1(ep.alpha), beta = V::set1(ep.beta), zero = V::zero();
  // A plain store needs none of the epilogue's vector operations: with a short depth (a Winograd
  // point's 16 channels: 16 FMAs per accumulator) the scaling and bias had taken an eighth of the
  // FMA ports' time.
  const bool plain = ep.alpha == 1 && ep.beta == 0 && !ep.bias && !ep.relu && !ep.residual;
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) {
    if (i == ep.rows) break;
    const Reg bias = ep.bias ? V::set1(ep.bias[i]) : zero;
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) {
      typename V::T* p = c + i * ldc + j * W;
      if (plain) {
        V::storeu(p, acc[i][j]);
        continue;
      }
      Reg v = V::mul(acc[i][j], alpha);
      if (ep.beta != 0) v = V::fma(V::loadu(p), beta, v);
      v = V::add(v, bias);
      if (ep.residual) v = V::add(v, V::loadu(ep.residual + i * ldc + j * W));
      if (ep.relu) v = V::max(zero, v);  // zero first: maxps returns its second operand, NaN, as torch.relu
      V::storeu(p, v);
    }
  }
}

// Partial last panels (ep.rows < MR: 64 channels on 6-row tiles end in a 4-row one) run a body
// with fewer rows, in steps of a third of MR (else of 4 rows), so that they skip the padded rows'
// FMAs: 16- and 32-channel products had computed 11% padding. (A 2-row body is bound by FMA
// latency, not throughput, so it saves a third of the tile, not two thirds: measured in one
// process against padded tiles, 16/32/64-row GEMMs ran 6%/4%/1% faster, the stem 3%.)
constexpr int edge_rows_step(int mr) { return mr % 3 == 0 ? mr / 3 : 4; }

template <class V, int MR, int NV, bool Gathered, int R = edge_rows_step(MR)>
inline __attribute__((always_inline)) void micro_kernel_rows(index_t kc, const typename V::T* a,
                                                             const typename V::T* b, index_t ldb,
                                                             const index_t* rows, typename V::T* c, index_t ldc,
                                                             const TileEpilogue<typename V::T>& ep) {
  if constexpr (R >= MR) {
    micro_kernel_body<V, MR, NV, Gathered>(kc, a, b, ldb, rows, c, ldc, ep);
  } else {
    if (ep.rows <= R) return micro_kernel_body<V, MR, NV, Gathered, R>(kc, a, b, ldb, rows, c, ldc, ep);
    micro_kernel_rows<V, MR, NV, Gathered, R + edge_rows_step(MR)>(kc, a, b, ldb, rows, c, ldc, ep);
  }
}

template <class V, int MR, int NV>
void micro_kernel(index_t kc, const typename V::T* a, const typename V::T* b, index_t ldb, typename V::T* c,
                  index_t ldc, const TileEpilogue<typename V::T>& ep) {
  micro_kernel_rows<V, MR, NV, false>(kc, a, b, ldb, nullptr, c, ldc, ep);
}

template <class V, int MR, int NV>
void gathered_micro_kernel(index_t kc, const typename V::T* a, const typename V::T* b, const index_t* rows,
                           typename V::T* c, index_t ldc, const TileEpilogue<typename V::T>& ep) {
  micro_kernel_rows<V, MR, NV, true>(kc, a, b, 0, rows, c, ldc, ep);
}

// kernels.h's dot tile: each step loads a vector of depth from MB rows of A and NB columns of B
// and adds their MB x NB products lane by lane; the lanes are summed once, at the end (V provides
// sum(v) and sums(v): lane i the sum of v[i], for `width` vectors). The last partial vector of
// depth is read through a lane mask (nothing past the rows is touched).
template <class V, int MB, int NB>
void dot_kernel(index_t depth, const typename V::T* a, index_t lda, index_t rows, const typename V::T* b,
                index_t ldb, index_t cols, typename V::T* sums) {
  using T = typename V::T;
  using Reg = typename V::Reg;
  constexpr int W = V::width;
  const T* ap[MB];
  const T* bp[NB];
#pragma GCC unroll 8
  for (int i = 0; i < MB; ++i) ap[i] = a + (i < rows ? i : rows - 1) * lda;
#pragma GCC unroll 8
  for (int j = 0; j < NB; ++j) bp[j] = b + (j < cols ? j : cols - 1) * ldb;
  Reg acc[MB][NB];
#pragma GCC unroll 8
  for (int i = 0; i < MB; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < NB; ++j) acc[i][j] = V::zero();
  const auto step = [&](index_t d, unsigned lanes) {
    Reg av[MB];
#pragma GCC unroll 8
    for (int i = 0; i < MB; ++i) av[i] = lanes == V::all_lanes ? V::loadu(ap[i] + d) : V::load_lanes(ap[i] + d, lanes);
#pragma GCC unroll 8
    for (int j = 0; j < NB; ++j) {
      const Reg bv = lanes == V::all_lanes ? V::loadu(bp[j] + d) : V::load_lanes(bp[j] + d, lanes);
#pragma GCC unroll 8
      for (int i = 0; i < MB; ++i) acc[i][j] = V::fma(av[i], bv, acc[i][j]);
    }
  };
  index_t d = 0;
#pragma GCC unroll 2
  for (; d + W <= depth; d += W) step(d, V::all_lanes);
  if (d < depth) step(d, (1u << (depth - d)) - 1);
  // Whole groups of `width` accumulators summed together (V::sums), the rest one by one.
  constexpr int kSums = MB * NB;
  const Reg* flat = &acc[0][0];
  int q = 0;
#pragma GCC unroll 4
  for (; q + W <= kSums; q += W) V::storeu(sums + q, V::sums(flat + q));
#pragma GCC unroll 16
  for (; q < kSums; ++q) sums[q] = V::sum(flat[q]);
}

template <class V, int MB, int NB>
DotSet<typename V::T> make_dot_set() {
  return {&dot_kernel<V, MB, NB>, MB, NB};
}

// The FMA peak this ISA reaches on one core: independent FMA chains, no memory traffic.
// The benchmark reports every kernel as a fraction of it. Returns flops executed.
template <class V>
double fma_loop(index_t iterations) {
  using Reg = typename V::Reg;
  // Enough independent chains to hide FMA latency on both ports, but no more than the register
  // file holds beside a and b: a spilled chain measures the stack, not the FMA units.
  constexpr int kChains = V::registers - 4 < 24 ? V::registers - 4 : 24;
  Reg acc[kChains];
  const Reg a = V::set1(typename V::T(0.999)), b = V::set1(typename V::T(1e-3));
#pragma GCC unroll 28
  for (int i = 0; i < kChains; ++i) acc[i] = V::set1(typename V::T(i));
  for (index_t it = 0; it < iterations; ++it)
#pragma GCC unroll 28
    for (int i = 0; i < kChains; ++i) acc[i] = V::fma(acc[i], a, b);
  Reg sum = V::zero();
  for (int i = 0; i < kChains; ++i) sum = V::add(sum, acc[i]);
  volatile typename V::T sink = reinterpret_cast<typename V::T*>(&sum)[0];
  (void)sink;
  return 2.0 * kChains * V::width * static_cast<double>(iterations);
}

template <class V, int MR, int NV>
KernelSet<typename V::T> make_kernel_set(index_t kc, index_t nc) {
  constexpr int nr = NV * V::width;
  return {&micro_kernel<V, MR, NV>, &gathered_micro_kernel<V, MR, NV>, &fma_loop<V>, MR, nr, kc, nc};
}

}  // namespace fastconv::gemm
