// Software prefetch that the compiler keeps. __builtin_prefetch has no side effects, so GCC
// (12, -O2 and up, which assumes loops finish) deletes a loop whose body holds nothing else:
// a loop over rows around prefetch_span's loop over lines compiled to no instruction at all.
// An asm volatile statement is never deleted, whatever surrounds it. The address goes in as a
// register, not a memory operand: nothing is read, and no tool counts it as an access (the
// micro-kernel asks for C rows a partial tile does not store).
//
// No vector code: the per-ISA files include this after their `#pragma GCC target`, and the
// instructions below are the same for every ISA.
#pragma once
#include <cstdint>

#include "common/index.h"

namespace fastconv {

// Asks for the cache line holding p (into L1, and so every level below), for reading.
__attribute__((always_inline)) inline void prefetch_line(const void* p) {
#if defined(__x86_64__) || defined(__i386__)
  asm volatile("prefetcht0 (%0)" : : "r"(p));
#elif defined(__aarch64__)
  asm volatile("prfm pldl1keep, [%0]" : : "r"(p));
#else
  __builtin_prefetch(p);
#endif
}

// Asks for every cache line of p[0, n) ahead of its use, the last one too when p is not at a
// line's start: for the next of many short runs far apart (a channel's planes), which the
// hardware prefetcher does not guess; for lines about to be written too, so that each store
// finds its line in cache rather than waiting for it.
template <class T>
inline void prefetch_span(const T* p, index_t n) {
  if (n <= 0) return;
  const std::uintptr_t first = reinterpret_cast<std::uintptr_t>(p) / 64 * 64;
  const std::uintptr_t last = reinterpret_cast<std::uintptr_t>(p + n) - 1;
  for (std::uintptr_t line = first; line <= last; line += 64) prefetch_line(reinterpret_cast<const void*>(line));
}

}  // namespace fastconv
