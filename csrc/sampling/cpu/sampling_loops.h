// The inner loops of the channels_last interpolate and grid_sample kernels, over a pixel's
// channels (contiguous in NHWC memory), compiled once per ISA (sampling_loops.cpp
// for baseline x86-64 and aarch64, *_avx2.cpp, *_avx512.cpp) and chosen at run time by
// vector_isa(). The tap tables and threads stay in the kernels' files, and so do the NCHW
// kernels: their taps gather one value each, bound by the loads, not by the vector width (and
// their one contiguous loop, bilinear's row blend, measured no faster called through a table).
//
// Each loop is one expression of the kernels, in their order of operations and compiled without
// contraction into FMA, so every ISA gives the baseline's bits.
#pragma once
#include "common/bilinear.h"
#include "common/index.h"

namespace fastconv::sampling::cpu {

template <class T>
struct SamplingLoops {
  // dst[i] = a[i] * wa + b[i] * wb: bilinear's blend of two rows.
  void (*blend2)(const T* a, const T* b, index_t n, T wa, T wb, T* dst);
  // An NHWC row of pixels (`channels` values each) interpolated along the width: out's pixel i
  // blends the row's pixels columns[i].i0 and i0 + step as blend2 does, for i < count.
  void (*width_blend)(const T* row, const bilinear::LinearTap<T>* columns, index_t count, index_t channels, T* out);
  // dst[i] = w[0] * p[0][i] + w[1] * p[1][i] + w[2] * p[2][i] + w[3] * p[3][i]: grid_sample's
  // bilinear sample of a 2x2 block, over the channels.
  void (*blend4)(const T* const* p, const T* w, index_t n, T* dst);
  // dst[i] = w * p[i]: grid_sample's nearest sample.
  void (*scale)(const T* p, index_t n, T w, T* dst);
  // y[i] += x[i] * w: a tap's share added in (filters, backward spreads).
  void (*add_scaled)(const T* x, index_t n, T w, T* y);
};

// The loops for vector_isa(), the level set_isa() chose.
template <class T>
const SamplingLoops<T>& sampling_loops();

// Each ISA's table (sampling_loops.cpp, sampling_loops_avx2.cpp, sampling_loops_avx512.cpp).
template <class T>
SamplingLoops<T> sampling_loops_baseline();
template <class T>
SamplingLoops<T> sampling_loops_avx2();
template <class T>
SamplingLoops<T> sampling_loops_avx512();

}  // namespace fastconv::sampling::cpu
