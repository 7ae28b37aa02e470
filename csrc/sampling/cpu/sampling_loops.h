// The inner loops of the channels_last interpolate and grid_sample kernels, over a pixel's
// channels (contiguous in NHWC memory), compiled once per ISA (sampling_loops.cpp
// for baseline x86-64 and aarch64, *_avx2.cpp, *_avx512.cpp) and chosen at run time by
// vector_isa(); and the gathers of the NCHW kernels' taps along a row, where each value reads
// its own columns (hardware gathers on AVX2 and AVX-512). The tap tables and threads stay in the
// kernels' files.
//
// Each loop is one expression of the kernels, in their order of operations and compiled without
// contraction into FMA, so every ISA gives the baseline's bits.
#pragma once
#include <cstdint>

#include "common/bilinear.h"
#include "common/index.h"

namespace fastconv::sampling::cpu {

// Where the lanes of one vector of a gather read for one tap: values [first, first + count) of
// the row, count <= 2 lanes (upsampling: 16 outputs read 9 or 10 inputs; a 2x backward's readers
// of 16 inputs 32 outputs), which one or two loads and a permute fetch; count -1: more (a
// downsampling's taps), a hardware gather. Tables of them come with the taps (interpolate_taps.h's
// GatherTable), one per tap and whole vector.
struct GatherWindow {
  std::int32_t first = 0, count = -1;
};

template <class T>
struct SamplingLoops {
  // Lanes of the gathers' vectors (1: scalar loops, which read no windows).
  index_t lanes = 1;
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
  // Gathers along a row, over tables of `taps` taps per value, tap k of value i at [k * n + i],
  // and their windows (GatherWindow), tap k's b-th vector at [k * (n / lanes) + b]:
  // dst[i] = src[index[i]] * weight[i] + src[index[n + i]] * weight[n + i] (two taps:
  // bilinear's width pass).
  void (*gather_blend2)(const T* src, const std::int32_t* index, const T* weight, const GatherWindow* windows,
                        index_t n, T* dst);
  // dst[i] += src[index[k * n + i]] * weight[k * n + i], tap by tap, taps whose index is negative
  // left out (a window's padding): filters along the width, and the backward's gather of each
  // input value's readers.
  void (*gather_add)(const T* src, const std::int32_t* index, const T* weight, const GatherWindow* windows,
                     index_t taps, index_t n, T* dst);
  // dst[i] = src[index[i]]: nearest's row.
  void (*gather)(const T* src, const std::int32_t* index, const GatherWindow* windows, index_t n, T* dst);
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
