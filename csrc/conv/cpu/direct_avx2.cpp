// The AVX2 kernels of the direct convolution (direct.h): the row kernel of direct_rows.h and the
// weight-gradient kernel. Only raw loops and intrinsics here:
// anything inline shared with other files (STL included) would be compiled for AVX2 too, and
// the linker may keep that copy for the baseline callers.
#include "core/arch.h"
#if FASTCONV_X86  // the whole file: AVX2 and AVX-512 are x86 only
#pragma GCC target("avx2,fma")
#include "conv/cpu/direct.h"
#include "conv/cpu/direct_rows.h"
#include "core/simd_avx2.h"

namespace fastconv::conv::cpu::direct {

namespace {

// MB x SC accumulators + SC input vectors + 1 gradient vector: 16 registers at MB = 4, SC = 3.
template <class V, int MB, int SC>
void weight_kernel(const WeightJob<typename V::T>& job, index_t t0) {
  using T = typename V::T;
  using Reg = typename V::Reg;
  constexpr int W = V::width;
  Reg acc[MB][SC];
  for (int m = 0; m < MB; ++m)
    for (int s = 0; s < SC; ++s) acc[m][s] = V::zero();
  for (index_t i = 0; i < job.images; ++i) {
    const T* x = job.x + i * job.ld_x_i;
    const T* dy = job.dy + i * job.ld_dy_i;
    const T* tap_rows[SC];
    for (int s = 0; s < SC; ++s) tap_rows[s] = x + job.taps[t0 + s];
    for (index_t j = 0; j < job.length; j += W) {
      Reg xv[SC];
      for (int s = 0; s < SC; ++s) xv[s] = V::loadu(tap_rows[s] + j);
      for (int m = 0; m < MB; ++m) {
        const Reg g = V::loadu(dy + m * job.ld_dy_m + j);
        for (int s = 0; s < SC; ++s) acc[m][s] = V::fma(g, xv[s], acc[m][s]);
      }
    }
  }
  for (int m = 0; m < MB; ++m)
    for (int s = 0; s < SC; ++s) job.sums[m * job.ld_sums + t0 + s] += V::sum(acc[m][s]);
}

template <class V, int MB>
void run_weight_block(const WeightJob<typename V::T>& job) {
  for (index_t t0 = 0; t0 < job.tap_count; t0 += 3) {
    const index_t taps = job.tap_count - t0;
    if (taps >= 3) weight_kernel<V, MB, 3>(job, t0);
    else if (taps == 2) weight_kernel<V, MB, 2>(job, t0);
    else weight_kernel<V, MB, 1>(job, t0);
  }
}

template <class V>
void run_weight(const WeightJob<typename V::T>& job) {
  if (job.mb == 1) return run_weight_block<V, 1>(job);
  run_weight_block<V, kWeightBlock>(job);
}

}  // namespace

template <>
void run_row_avx2<float>(const RowJob<float>& job) { run_rows<simd::Avx2F32>(job); }
template <>
void run_row_avx2<double>(const RowJob<double>& job) { run_rows<simd::Avx2F64>(job); }
template <>
void run_weight_avx2<float>(const WeightJob<float>& job) { run_weight<simd::Avx2F32>(job); }
template <>
void run_weight_avx2<double>(const WeightJob<double>& job) { run_weight<simd::Avx2F64>(job); }

}  // namespace fastconv::conv::cpu::direct

#endif  // FASTCONV_X86
