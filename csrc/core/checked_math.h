// Size arithmetic that refuses to overflow: the checked dispatch computes output sizes, padded
// sizes and element counts from user-given numbers (a stride of 2^62, a padding of 2^63 - 1),
// where a wrapped int64 would become a small allocation and a heap overflow. Each helper
// returns the exact result, or throws ValueError with the caller's description of what
// overflowed ("padding: the padded input height") followed by the operands.
#pragma once
#include <array>
#include <cstddef>

#include "core/errors.h"
#include "core/tensor_arg.h"

namespace fastconv {

// a + b, a - b and a * b, or ValueError("<what...> overflows 64-bit sizes (a op b)").
template <class... What>
index_t checked_add(index_t a, index_t b, const What&... what) {
  index_t r;
  if (__builtin_add_overflow(a, b, &r)) fail<ValueError>(what..., " overflows 64-bit sizes (", a, " + ", b, ")");
  return r;
}

template <class... What>
index_t checked_sub(index_t a, index_t b, const What&... what) {
  index_t r;
  if (__builtin_sub_overflow(a, b, &r)) fail<ValueError>(what..., " overflows 64-bit sizes (", a, " - ", b, ")");
  return r;
}

template <class... What>
index_t checked_mul(index_t a, index_t b, const What&... what) {
  index_t r;
  if (__builtin_mul_overflow(a, b, &r)) fail<ValueError>(what..., " overflows 64-bit sizes (", a, " * ", b, ")");
  return r;
}

// Whether a * b overflows, for callers that turn it into a reason rather than an exception.
inline bool mul_overflows(index_t a, index_t b, index_t* r) { return __builtin_mul_overflow(a, b, r); }

// The element count of an array of `shape` whose bytes (8 per element, the widest dtype) fit in
// int64, or ValueError naming `name` and the shape.
template <std::size_t N>
index_t checked_numel(const std::array<index_t, N>& shape, const char* name) {
  index_t n = 8;
  for (std::size_t d = 0; d < N; ++d) {
    if (shape[d] < 0) fail<ValueError>(name, ": sizes must be >= 0, got ", shape_str(shape));
    if (__builtin_mul_overflow(n, shape[d], &n))
      fail<ValueError>(name, ": an array of shape ", shape_str(shape), " has more bytes than 64-bit sizes hold");
  }
  return n / 8;
}

}  // namespace fastconv
