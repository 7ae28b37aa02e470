// A cache of large output buffers for the Python API (fastconv.ops allocates every large result
// through it).
//
// A fresh 16 MiB array costs whoever first writes it 4096 page faults, each clearing a page:
// on BN+ReLU's forward+backward (64x64x32x32) the kernel's clear_page was a fifth of the time.
// A training or inference loop asks for the same sizes every step, so a freed block is kept
// and handed out again (for an array of its size, or of down to half of it): no faults, and its
// pages are often still in cache. Like PyTorch's
// CUDA caching allocator, but on the host. Idle blocks are capped (set_limit); a block freed
// beyond the cap goes back to the system.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/errors.h"

namespace fastconv::output_cache {

// Blocks below this are left to numpy: malloc serves them from its heap without faults.
constexpr std::size_t kMinBytes = std::size_t(256) << 10;

// Bytes of an array of `shape` (a sequence of sizes) and `itemsize`; ValueError for a negative
// dimension or a size beyond int64 (numpy's own limit).
template <class Shape>
std::size_t array_bytes(const Shape& shape, std::size_t itemsize) {
  std::size_t bytes = itemsize;
  for (auto d : shape) {
    if (d < 0) fail<ValueError>("empty: negative dimension ", d);
    if (__builtin_mul_overflow(bytes, static_cast<std::size_t>(d), &bytes) || bytes > std::size_t(INT64_MAX))
      fail<ValueError>("empty: array is too big; its size in bytes does not fit in 64 bits");
  }
  return bytes;
}

void* take(std::size_t bytes);  // 64-byte aligned; throws OutOfMemory (a MemoryError) with the size
void give_back(void* block);    // a block from take()
void set_limit(std::size_t idle_bytes);

struct Stats {
  std::size_t limit, idle_bytes, idle_blocks, live_blocks, hits, misses;
};
Stats stats();
void release_idle();  // frees every idle block

}  // namespace fastconv::output_cache
