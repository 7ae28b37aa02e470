// Software prefetch that the compiler keeps. __builtin_prefetch has no side effects, so GCC
// (12, -O2 and up, which assumes loops finish) deletes a loop whose body holds nothing else:
// a loop over rows around prefetch_span's loop over lines compiled to no instruction at all.
// An asm volatile statement is never deleted, whatever surrounds it. The address goes in as a
// register, not a memory operand: nothing is read, and no tool counts it as an access (the
// micro-kernel asks for C rows a partial tile does not store).
//
// No includes and no vector code: the per-ISA files include this after their `#pragma GCC
// target`, and the instructions below are the same for every ISA.
#pragma once

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

}  // namespace fastconv
