// The bodies of sampling_loops.h's loops, included by one file per ISA. Each includer names its
// own Isa tag in an anonymous namespace, so its instantiations are its own (internal linkage):
// the linker cannot swap an AVX-512 copy in for another ISA's callers. Raw loops only: nothing
// here may instantiate an inline function that baseline code shares.
#pragma once
#include "sampling/cpu/sampling_loops.h"

namespace fastconv::sampling::cpu::loop_bodies {

template <class Isa, class T>
void blend2(const T* __restrict a, const T* __restrict b, index_t n, T wa, T wb, T* __restrict dst) {
#pragma omp simd
  for (index_t i = 0; i < n; ++i) dst[i] = a[i] * wa + b[i] * wb;
}

template <class Isa, class T>
void width_blend(const T* row, const bilinear::LinearTap<T>* columns, index_t count, index_t channels, T* out) {
  for (index_t i = 0; i < count; ++i, out += channels) {
    const bilinear::LinearTap<T>& c = columns[i];
    blend2<Isa>(row + c.i0 * channels, row + (c.i0 + c.step) * channels, channels, c.w0, c.w1, out);
  }
}

template <class Isa, class T>
void blend4(const T* const* p, const T* w, index_t n, T* __restrict dst) {
  const T* __restrict p0 = p[0];
  const T* __restrict p1 = p[1];
  const T* __restrict p2 = p[2];
  const T* __restrict p3 = p[3];
  const T w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3];
#pragma omp simd
  for (index_t i = 0; i < n; ++i) dst[i] = w0 * p0[i] + w1 * p1[i] + w2 * p2[i] + w3 * p3[i];
}

template <class Isa, class T>
void scale(const T* __restrict p, index_t n, T w, T* __restrict dst) {
#pragma omp simd
  for (index_t i = 0; i < n; ++i) dst[i] = w * p[i];
}

template <class Isa, class T>
void add_scaled(const T* __restrict x, index_t n, T w, T* __restrict y) {
#pragma omp simd
  for (index_t i = 0; i < n; ++i) y[i] += x[i] * w;
}

// The table of one ISA's loops (Isa: the including file's tag).
template <class Isa, class T>
SamplingLoops<T> table() {
  SamplingLoops<T> l{};
  l.blend2 = blend2<Isa, T>;
  l.width_blend = width_blend<Isa, T>;
  l.blend4 = blend4<Isa, T>;
  l.scale = scale<Isa, T>;
  l.add_scaled = add_scaled<Isa, T>;
  return l;
}

}  // namespace fastconv::sampling::cpu::loop_bodies
