#include "core/output_cache.h"

#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <unordered_map>

#if __has_include(<sys/mman.h>)
#include <sys/mman.h>
#endif

namespace fastconv::output_cache {

namespace {

constexpr std::size_t kPage = 4096;

// A fresh block's pages are filled in by the system in one call where it can (Linux's
// MAP_POPULATE), not by one fault each as the kernel first writes the output: a layer's first
// call pays for its outputs' pages (measured on a 1.8 MB block, allocated and written: 0.6-0.65 ms
// populated, against 0.8-0.9 ms of faults). Transparent huge pages (2 MiB-aligned blocks,
// MADV_HUGEPAGE) made a warm ResNet-20 step 0.96x the time on a Zen 4 VM, but a fresh huge page
// there came from memory the host had not yet backed, about 6 ms each to clear: conv7x7_stem's first
// forward+backward (51 MB output) took 134-252 ms against 101-120 with small pages.
// Only up to kPopulateMaxBytes: a larger block is left to the allocator, whose pages come as
// written, so that a size the machine cannot hold is refused (a MemoryError) rather than taken
// up front and killed for (a 16 GB output under the sanitizers' allocation cap was so).
constexpr std::size_t kPopulateMaxBytes = std::size_t(64) << 20;

bool populated(std::size_t size) {
#ifdef MAP_POPULATE
  return size <= kPopulateMaxBytes;
#else
  return false;
#endif
}

void* allocate_block(std::size_t size) {
#ifdef MAP_POPULATE
  if (populated(size)) {
    void* block = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    return block == MAP_FAILED ? nullptr : block;
  }
#endif
  return std::aligned_alloc(64, size);
}

void free_block(void* block, std::size_t size) {
#ifdef MAP_POPULATE
  if (populated(size)) {
    munmap(block, size);
    return;
  }
#endif
  std::free(block);
}

struct Cache {
  std::mutex mutex;
  std::unordered_map<void*, std::size_t> live;  // block -> its size, while an array holds it
  std::multimap<std::size_t, void*> idle;       // size -> block
  std::size_t idle_bytes = 0, limit = std::size_t(512) << 20, hits = 0, misses = 0;

  // The smallest idle block that fits and is at most twice the size asked: a block of the same
  // size when there is one (a loop's steady state), else a larger one whose pages are already
  // there. A shape's first call then reuses what earlier layers freed instead of faulting in
  // fresh pages (~1 us each: 12.8 MB outputs cost a depthwise layer's first call 6,000 faults,
  // twice its warm time). In a loop, once each size has had a block of its own, every step finds
  // it again: the smallest fitting block is taken first.
  void* take_idle(std::size_t bytes) {
    auto it = idle.lower_bound(bytes);
    if (it == idle.end() || it->first > 2 * bytes) return nullptr;
    void* block = it->second;
    live.emplace(block, it->first);
    idle_bytes -= it->first;
    idle.erase(it);
    return block;
  }

  void shrink_to(std::size_t bytes) {  // frees the largest idle blocks first
    while (idle_bytes > bytes) {
      auto last = std::prev(idle.end());
      idle_bytes -= last->first;
      free_block(last->second, last->first);
      idle.erase(last);
    }
  }
};

// Never destroyed: arrays freed during interpreter shutdown still give their blocks back.
Cache& cache() {
  static Cache* c = new Cache;
  return *c;
}

}  // namespace

void* take(std::size_t bytes) {
  const std::size_t size = (bytes + kPage - 1) / kPage * kPage;
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    if (void* block = c.take_idle(size)) {
      ++c.hits;
      return block;
    }
    ++c.misses;
  }
  void* block = allocate_block(size);
  if (!block) throw OutOfMemory("empty: cannot allocate " + std::to_string(size) + " bytes");
  std::lock_guard<std::mutex> lock(c.mutex);
  c.live.emplace(block, size);
  return block;
}

void give_back(void* block) {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  auto it = c.live.find(block);
  if (it == c.live.end()) return;  // not ours: nothing to do (cannot happen through the bindings)
  const std::size_t size = it->second;
  c.live.erase(it);
  if (size > c.limit) {
    free_block(block, size);
    return;
  }
  c.shrink_to(c.limit - size);
  c.idle.emplace(size, block);
  c.idle_bytes += size;
}

void set_limit(std::size_t idle_bytes) {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  c.limit = idle_bytes;
  c.shrink_to(idle_bytes);
}

Stats stats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return {c.limit, c.idle_bytes, c.idle.size(), c.live.size(), c.hits, c.misses};
}

void release_idle() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  c.shrink_to(0);
}

}  // namespace fastconv::output_cache
