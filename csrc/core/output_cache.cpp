#include "core/output_cache.h"

#include <cstdint>
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
constexpr std::size_t kHugePage = std::size_t(2) << 20;

// A fresh block's pages are filled in by the system in one call where it can, not by one fault
// each as the kernel first writes the output: a layer's first call pays for its outputs' pages
// (measured on a 1.8 MB block, allocated and written: 0.8-0.9 ms with one fault per page,
// 0.6-0.65 ms mapped with MAP_POPULATE where transparent huge pages were not granted).
// Only up to kPopulateMaxBytes: a larger block is left to the allocator, whose pages come as
// written, so that a size the machine cannot hold is refused (a MemoryError) rather than taken
// up front and killed for (a 16 GB output under the sanitizers' allocation cap was so).
constexpr std::size_t kPopulateMaxBytes = std::size_t(64) << 20;

// From 1.5 MiB to kPopulateMaxBytes, a block starts on a 2 MiB boundary and asks for
// transparent huge pages: one fault clears 2 MiB where 512 faults clear a page each (Zen 4,
// Linux 6.18, THP "madvise": a 1.8 MB block allocated and written in 0.24-0.40 ms against
// 0.84-1.0 ms with MAP_POPULATE). Where the system grants none, the same call fills in small
// pages. The block is rounded up to whole huge pages when that adds at most a third of its
// size; otherwise its tail past the last whole one comes in small pages.
constexpr std::size_t kHugeMinBytes = std::size_t(3) << 19;

bool populated(std::size_t size) {
#ifdef MAP_POPULATE
  return size <= kPopulateMaxBytes;
#else
  return false;
#endif
}

bool huge(std::size_t size) {
#ifdef MADV_HUGEPAGE
  return populated(size) && size >= kHugeMinBytes;
#else
  return false;
#endif
}

// The bytes a block of at least `bytes` takes: whole pages, whole huge pages where those cost
// little.
std::size_t block_size(std::size_t bytes) {
  const std::size_t size = (bytes + kPage - 1) / kPage * kPage;
  if (!huge(size)) return size;
  const std::size_t rounded = (size + kHugePage - 1) / kHugePage * kHugePage;
  return rounded - size <= size / 3 ? rounded : size;
}

#ifdef MAP_POPULATE
// `size` bytes starting on a huge page boundary: a mapping one huge page longer, trimmed.
void* map_huge_aligned(std::size_t size) {
  const std::size_t slack = kHugePage - kPage;
  char* mapped = static_cast<char*>(mmap(nullptr, size + slack, PROT_READ | PROT_WRITE,
                                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (mapped == MAP_FAILED) return nullptr;
  const auto address = reinterpret_cast<std::uintptr_t>(mapped);
  char* block = mapped + ((kHugePage - address % kHugePage) % kHugePage);
  if (block > mapped) munmap(mapped, block - mapped);
  if (mapped + size + slack > block + size) munmap(block + size, mapped + size + slack - (block + size));
  madvise(block, size, MADV_HUGEPAGE);
#ifdef MADV_POPULATE_WRITE
  madvise(block, size, MADV_POPULATE_WRITE);  // before Linux 5.14 it fails: pages come as written
#endif
  return block;
}
#endif

void* allocate_block(std::size_t size) {
#ifdef MAP_POPULATE
  if (huge(size)) return map_huge_aligned(size);
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
  const std::size_t size = block_size(bytes);
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
