// The bodies of sampling_loops.h's loops, included by one file per ISA. Each includer names its
// own Isa tag in an anonymous namespace, so its instantiations are its own (internal linkage):
// the linker cannot swap an AVX-512 copy in for another ISA's callers. Raw loops, and the
// gathers over the tag's vector type (Isa::Vec<T>, a core/simd_*.h type the includer compiled
// for its ISA; void for the baseline): nothing here may instantiate an inline function that
// baseline code shares.
#pragma once
#include <type_traits>

#include "sampling/cpu/sampling_loops.h"

namespace fastconv::sampling::cpu::loop_bodies {

template <class Isa, class T>
using VecOf = typename Isa::template Vec<T>;

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

// One vector of a tap's values, src[index[l]] (0 where the index is negative), by its window
// where it has one, else by a gather.
template <class V, class T>
typename V::Reg tap_values(const T* src, const std::int32_t* index, const GatherWindow& window) {
  return window.count >= 0 ? V::gather_window(src, index, window.first, window.count) : V::gather_valid(src, index);
}

template <class Isa, class T>
void gather_blend2(const T* src, const std::int32_t* index, const T* weight, const GatherWindow* windows, index_t n,
                   T* dst) {
  const std::int32_t* index1 = index + n;
  const T* weight1 = weight + n;
  index_t i = 0;
  if constexpr (!std::is_void_v<VecOf<Isa, T>>) {
    using V = VecOf<Isa, T>;
    const GatherWindow* windows1 = windows + n / V::width;
    for (index_t b = 0; i + V::width <= n; i += V::width, ++b)
      V::storeu(dst + i, V::add(V::mul(tap_values<V>(src, index + i, windows[b]), V::loadu(weight + i)),
                                V::mul(tap_values<V>(src, index1 + i, windows1[b]), V::loadu(weight1 + i))));
  }
  for (; i < n; ++i) dst[i] = src[index[i]] * weight[i] + src[index1[i]] * weight1[i];
}

// A left-out tap adds nothing; in vector lanes it adds 0 * 0 (its weight is 0), which leaves the
// sum's bits alone unless the sum is -0 (then +0): the kernels' sums start from +0, and a sum
// from +0 is never -0.
template <class Isa, class T>
void gather_add(const T* src, const std::int32_t* index, const T* weight, const GatherWindow* windows, index_t taps,
                index_t n, T* dst) {
  index_t i = 0;
  if constexpr (!std::is_void_v<VecOf<Isa, T>>) {
    using V = VecOf<Isa, T>;
    const index_t blocks = n / V::width;
    for (index_t b = 0; i + V::width <= n; i += V::width, ++b) {
      typename V::Reg sum = V::loadu(dst + i);
      for (index_t k = 0; k < taps; ++k)
        sum = V::add(sum, V::mul(tap_values<V>(src, index + k * n + i, windows[k * blocks + b]),
                                 V::loadu(weight + k * n + i)));
      V::storeu(dst + i, sum);
    }
  }
  for (; i < n; ++i) {
    T sum = dst[i];
    for (index_t k = 0; k < taps; ++k)
      if (index[k * n + i] >= 0) sum += src[index[k * n + i]] * weight[k * n + i];
    dst[i] = sum;
  }
}

template <class Isa, class T>
void gather(const T* src, const std::int32_t* index, const GatherWindow* windows, index_t n, T* dst) {
  index_t i = 0;
  if constexpr (!std::is_void_v<VecOf<Isa, T>>) {
    using V = VecOf<Isa, T>;
    for (index_t b = 0; i + V::width <= n; i += V::width, ++b) V::storeu(dst + i, tap_values<V>(src, index + i, windows[b]));
  }
  for (; i < n; ++i) dst[i] = src[index[i]];
}

// The table of one ISA's loops (Isa: the including file's tag).
template <class Isa, class T>
SamplingLoops<T> table() {
  SamplingLoops<T> l{};
  if constexpr (!std::is_void_v<VecOf<Isa, T>>) l.lanes = VecOf<Isa, T>::width;
  l.blend2 = blend2<Isa, T>;
  l.width_blend = width_blend<Isa, T>;
  l.blend4 = blend4<Isa, T>;
  l.scale = scale<Isa, T>;
  l.add_scaled = add_scaled<Isa, T>;
  l.gather_blend2 = gather_blend2<Isa, T>;
  l.gather_add = gather_add<Isa, T>;
  l.gather = gather<Isa, T>;
  return l;
}

}  // namespace fastconv::sampling::cpu::loop_bodies
