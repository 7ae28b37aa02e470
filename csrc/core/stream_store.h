// Helpers for kernels that stream memory: non-temporal stores for outputs too large to stay in
// the last-level cache, and (from core/prefetch.h) software prefetch for runs far apart.
//
// An ordinary store first reads the line it overwrites: a kernel that reads x and writes y then
// moves three bytes per two over DRAM. Kernels compute a short block into an L1 buffer and
// stream it out; the data reaches memory without displacing the cache.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/isa.h"
#include "core/prefetch.h"
#include "core/view.h"

#if FASTCONV_X86
#include <emmintrin.h>  // SSE2: baseline x86-64
#endif

namespace fastconv {

enum class StreamPolicy { by_size, always, never };  // always / never: for the tests
StreamPolicy& stream_policy();
// The policy by its name, "by_size", "always" or "never" (ValueError otherwise): the tests run
// with "always" to cover the streamed path.
void set_stream_policy(const std::string& mode);

// Whether an output of `bytes`, written beside an input of as many, should bypass the cache:
// when the two cannot both stay in the last-level cache. (At 8 MiB, BN+ReLU's forward+backward
// ran 10% slower streamed: the backward found less of y in the L3; at 16 MiB, the same speed.)
inline bool stream_output(std::size_t bytes) {
  if (stream_policy() != StreamPolicy::by_size) return stream_policy() == StreamPolicy::always;
  const long llc = last_level_cache_bytes();
  return llc > 0 && 2 * bytes >= static_cast<std::size_t>(llc);
}

// dst[0, n) = src[0, n), streamed from the first 16-byte-aligned element on (x86; elsewhere
// an ordinary copy: the same values, through the cache).
template <class T>
inline void stream_copy(T* dst, const T* src, index_t n) {
#if !FASTCONV_X86
  for (index_t i = 0; i < n; ++i) dst[i] = src[i];
#else
  constexpr index_t lanes = 16 / sizeof(T);
  index_t i = 0;
  for (; i < n && reinterpret_cast<std::uintptr_t>(dst + i) % 16; ++i) dst[i] = src[i];
  for (; i + lanes <= n; i += lanes) {
    if constexpr (sizeof(T) == 4)
      _mm_stream_ps(reinterpret_cast<float*>(dst + i), _mm_loadu_ps(reinterpret_cast<const float*>(src + i)));
    else
      _mm_stream_pd(reinterpret_cast<double*>(dst + i), _mm_loadu_pd(reinterpret_cast<const double*>(src + i)));
  }
  for (; i < n; ++i) dst[i] = src[i];
#endif
}

// Writes dst[0, n) a block at a time: fill(out, i0, len) computes dst[i0, i0 + len) into out,
// which is dst + i0 itself, or when streaming an L1 buffer that is then streamed there.
template <class T, class Fill>
inline void write_blocks(T* dst, index_t n, bool stream, const Fill& fill) {
  if (!stream) return fill(dst, index_t(0), n);
  constexpr index_t kBlock = 2048 / sizeof(T);
  alignas(64) T block[kBlock];
  for (index_t i0 = 0; i0 < n; i0 += kBlock) {
    const index_t len = n - i0 < kBlock ? n - i0 : kBlock;
    fill(block, i0, len);
    stream_copy(dst + i0, block, len);
  }
}

// Orders this thread's streamed stores before anything it writes next (call before the thread
// leaves the parallel region whose results others read). Ordinary stores (other processors)
// need none: the region's end orders them.
inline void stream_fence() {
#if FASTCONV_X86
  _mm_sfence();
#endif
}

}  // namespace fastconv
