// Per-thread scratch memory, 64-byte aligned, kept between calls and grown on demand. Kernels
// need packing and column buffers on every call; fresh pages would cost a page fault each.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <iterator>
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
  std::int64_t call = -1;              // the call that asked[] counts for
  std::size_t asked[kSlots] = {};      // the most this thread has asked of each slot in that call
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

// The workspace limit: the most scratch one call may ask for, over every thread and slot
// (0: none), and what the current call has asked for so far. A call's workspace is the most
// each thread asked of each slot since the call began: what it needs, whatever buffers earlier
// calls left allocated. `algo="auto"` skips a candidate that runs into the limit.
inline std::atomic<std::int64_t>& workspace_limit() {
  static std::atomic<std::int64_t> limit{0};
  return limit;
}
inline std::atomic<std::int64_t>& current_call() {
  static std::atomic<std::int64_t> call{0};
  return call;
}
inline std::atomic<std::int64_t>& call_workspace() {
  static std::atomic<std::int64_t> bytes{0};
  return bytes;
}

// Counts `bytes` of `slot` against the current call; throws OutOfMemory past the limit.
inline void charge_workspace(ThreadScratch& state, int slot, std::size_t bytes) {
  const std::int64_t call = current_call().load(std::memory_order_relaxed);
  if (state.call != call) {
    state.call = call;
    std::fill(std::begin(state.asked), std::end(state.asked), std::size_t(0));
  }
  if (bytes <= state.asked[slot]) return;
  const auto more = static_cast<std::int64_t>(bytes - state.asked[slot]);
  state.asked[slot] = bytes;
  const std::int64_t total = call_workspace().fetch_add(more) + more;
  const std::int64_t limit = workspace_limit().load(std::memory_order_relaxed);
  if (limit > 0 && total > limit)
    throw OutOfMemory("workspace: the call needs more than " + std::to_string(total) +
                      " bytes of scratch, over the limit of " + std::to_string(limit) +
                      " (fastconv.set_workspace_limit)");
}
}  // namespace detail

// Starts a call's workspace count (the bindings do, before each kernel call).
inline void begin_call_workspace() {
  detail::call_workspace().store(0);
  detail::current_call().fetch_add(1);
}

// The workspace limit in bytes (0: none).
inline void set_workspace_limit(std::int64_t bytes) {
  if (bytes < 0) throw ValueError("workspace limit: expected bytes >= 0 (0: no limit), got " + std::to_string(bytes));
  detail::workspace_limit().store(bytes);
}
inline std::int64_t workspace_limit() { return detail::workspace_limit().load(); }

template <class T>
T* thread_scratch(index_t n, ScratchSlot slot) {
  auto& state = detail::thread_scratch_state();
  const int s = static_cast<int>(slot);
  index_t wanted;  // n values, rounded up to 64 bytes; a count that overflows cannot be had
  if (n < 0 || __builtin_mul_overflow(std::max<index_t>(n, 1), index_t(sizeof(T)), &wanted) || wanted > INT64_MAX - 63)
    throw OutOfMemory("scratch: cannot allocate " + std::to_string(n) + " values of " + std::to_string(sizeof(T)) +
                      " bytes");
  const std::size_t bytes = static_cast<std::size_t>(round_up(wanted, 64));
  detail::charge_workspace(state, s, bytes);
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

// thread_scratch for the per-ISA kernel files, which are compiled under their own target
// pragmas: thread_scratch instantiated there is emitted with that ISA's instructions, and the
// linker may keep that copy for every caller, baseline code included. These are instantiated
// in core/scratch.cpp, compiled for the baseline.
template <class T>
T* kernel_scratch(index_t n, ScratchSlot slot);
extern template float* kernel_scratch<float>(index_t, ScratchSlot);
extern template double* kernel_scratch<double>(index_t, ScratchSlot);

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
