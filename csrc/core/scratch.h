// Per-thread scratch memory, 64-byte aligned, kept between calls and grown on demand. Kernels
// need packing and column buffers on every call; fresh pages would cost a page fault each.
#pragma once
#include <cstdlib>
#include <memory>
#include <new>

#include "core/view.h"

namespace fastconv {

inline index_t ceil_div(index_t a, index_t b) { return (a + b - 1) / b; }
inline index_t round_up(index_t a, index_t b) { return ceil_div(a, b) * b; }

// One slot per concurrent use on a thread, so that nested users never share a buffer.
enum class ScratchSlot { gemm_a, gemm_b, columns, transformed_tiles, transform_work, count };

template <class T>
T* thread_scratch(index_t n, ScratchSlot slot) {
  struct Free {
    void operator()(void* p) const { std::free(p); }
  };
  constexpr int kSlots = static_cast<int>(ScratchSlot::count);
  thread_local std::unique_ptr<void, Free> buffers[kSlots];
  thread_local std::size_t capacity[kSlots] = {};
  const int s = static_cast<int>(slot);
  const std::size_t bytes = round_up(std::max<index_t>(n, 1) * sizeof(T), 64);
  if (bytes > capacity[s]) {
    buffers[s].reset();
    buffers[s].reset(std::aligned_alloc(64, bytes));
    if (!buffers[s]) {
      capacity[s] = 0;
      throw std::bad_alloc();
    }
    capacity[s] = bytes;
  }
  return static_cast<T*>(buffers[s].get());
}

}  // namespace fastconv
