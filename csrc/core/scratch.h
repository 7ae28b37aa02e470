// Per-thread scratch memory, 64-byte aligned, kept between calls and grown on demand. Kernels
// need packing and column buffers on every call; fresh pages would cost a page fault each.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>

#include "core/errors.h"
#include "core/view.h"

namespace fastconv {

inline index_t ceil_div(index_t a, index_t b) { return (a + b - 1) / b; }
inline index_t round_up(index_t a, index_t b) { return ceil_div(a, b) * b; }

// One slot per concurrent use on a thread, so that nested users never share a buffer.
enum class ScratchSlot { gemm_a, gemm_b, columns, band_output, transformed_tiles, transform_work, partial_sums, col2im_phases, masked_grad, count };

namespace detail {
struct FreeScratch {
  void operator()(void* p) const { std::free(p); }
};
struct ThreadScratch {
  static constexpr int kSlots = static_cast<int>(ScratchSlot::count);
  std::unique_ptr<void, FreeScratch> buffers[kSlots];
  std::size_t capacity[kSlots] = {};
};
// Every thread's buffers share one slot table (float and double users alike).
inline ThreadScratch& thread_scratch_state() {
  thread_local ThreadScratch state;
  return state;
}
// Bytes held by every thread's buffers together: the benchmark reads it to report each
// algorithm's extra memory (release_scratch, run once, read).
inline std::atomic<std::int64_t>& scratch_bytes_held() {
  static std::atomic<std::int64_t> held{0};
  return held;
}
}  // namespace detail

template <class T>
T* thread_scratch(index_t n, ScratchSlot slot) {
  auto& state = detail::thread_scratch_state();
  const int s = static_cast<int>(slot);
  index_t wanted;  // n values, rounded up to 64 bytes; a count that overflows cannot be had
  if (n < 0 || __builtin_mul_overflow(std::max<index_t>(n, 1), index_t(sizeof(T)), &wanted) || wanted > INT64_MAX - 63)
    throw OutOfMemory("scratch: cannot allocate " + std::to_string(n) + " values of " + std::to_string(sizeof(T)) +
                      " bytes");
  const std::size_t bytes = static_cast<std::size_t>(round_up(wanted, 64));
  if (bytes > state.capacity[s]) {
    detail::scratch_bytes_held() -= static_cast<std::int64_t>(state.capacity[s]);
    state.buffers[s].reset();
    state.capacity[s] = 0;
    state.buffers[s].reset(std::aligned_alloc(64, bytes));
    if (!state.buffers[s]) throw OutOfMemory("scratch: cannot allocate " + std::to_string(bytes) + " bytes");
    state.capacity[s] = bytes;
    detail::scratch_bytes_held() += static_cast<std::int64_t>(bytes);
  }
  return static_cast<T*>(state.buffers[s].get());
}

// Frees the calling thread's buffers (the next user allocates afresh).
inline void release_thread_scratch() {
  auto& state = detail::thread_scratch_state();
  for (int s = 0; s < detail::ThreadScratch::kSlots; ++s) {
    detail::scratch_bytes_held() -= static_cast<std::int64_t>(state.capacity[s]);
    state.buffers[s].reset();
    state.capacity[s] = 0;
  }
}

}  // namespace fastconv
