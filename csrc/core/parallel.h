// Threading: one OpenMP pool for every kernel, sized by FASTCONV_NUM_THREADS or
// fastconv.set_num_threads().
#pragma once
#include <algorithm>
#include <cstdint>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace fastconv {

int num_threads();
void set_num_threads(int n);

// Calls fn(begin, end) on disjoint chunks of [begin, end) of at least `grain` items, one
// chunk per thread; runs inline when the range is too small to be worth a fork.
template <class Fn>
void parallel_for(std::int64_t begin, std::int64_t end, std::int64_t grain, const Fn& fn) {
  const std::int64_t n = end - begin;
  if (n <= 0) return;
  const std::int64_t max_chunks = std::max<std::int64_t>(1, n / std::max<std::int64_t>(grain, 1));
  const int threads = static_cast<int>(std::min<std::int64_t>(num_threads(), max_chunks));
  if (threads <= 1) {
    fn(begin, end);
    return;
  }
#ifdef _OPENMP
#pragma omp parallel num_threads(threads)
  {
    const std::int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    const std::int64_t lo = begin + n * t / nt, hi = begin + n * (t + 1) / nt;
    if (lo < hi) fn(lo, hi);
  }
#else
  fn(begin, end);
#endif
}

}  // namespace fastconv
