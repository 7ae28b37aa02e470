#include "core/output_cache.h"

#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <unordered_map>

namespace fastconv::output_cache {

namespace {

constexpr std::size_t kPage = 4096;

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
      std::free(last->second);
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
  void* block = std::aligned_alloc(64, size);
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
    std::free(block);
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
