// Threading: one OpenMP pool for every kernel, sized by FASTCONV_NUM_THREADS or
// fastconv.set_num_threads().
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace fastconv {

int num_threads();
void set_num_threads(int n);

// Called before each parallel region of more than one thread: from then on the process has
// OpenMP threads, which a forked child does not inherit (parallel.cpp).
void note_threads_started();
// Whether this process was forked from one whose threads had started: it runs on one thread.
bool threads_lost_to_fork();

// The first exception thrown by any thread of a parallel region, rethrown on the calling thread
// once the region has ended. An exception must not leave an OpenMP region (the runtime calls
// std::terminate): each thread's body catches its own, the first is kept, the rest dropped.
class FirstException {
 public:
  template <class Fn>
  void run(const Fn& fn) noexcept {
    try {
      fn();
    } catch (...) {
      if (!taken_.test_and_set()) error_ = std::current_exception();
    }
  }
  void rethrow() const {
    if (error_) std::rethrow_exception(error_);
  }

 private:
  std::atomic_flag taken_ = ATOMIC_FLAG_INIT;
  std::exception_ptr error_;
};

// Calls fn(begin, end) on disjoint chunks of [begin, end) of at least `grain` items, one
// chunk per thread; runs inline when the range is too small to be worth a fork. What fn throws
// on any thread reaches the caller (the first exception, after every thread has finished).
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
  note_threads_started();
  FirstException error;
#pragma omp parallel num_threads(threads)
  {
    const std::int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    const std::int64_t lo = begin + n * t / nt, hi = begin + n * (t + 1) / nt;
    if (lo < hi) error.run([&] { fn(lo, hi); });
  }
  error.rethrow();
#else
  fn(begin, end);
#endif
}

// parallel_for for items whose results do not depend on which thread runs them (each writes
// outputs of its own): the threads take chunks of about an eighth of their share in turn, so
// that a thread slowed by another tenant of the machine takes fewer and the others do not wait
// for it at the end. With one chunk per thread fixed in advance, on a shared 2-core machine,
// resnet20's 3x3/2 direct forward took 1-18% longer at the median of rounds, the depthwise 3x3
// forward 5-6%, a Winograd F(4x4, 3x3) forward 4% (alternating in one process).
// fn(lo, hi) is called once per chunk, so per-call setup in fn is repeated that often.
template <class Fn>
void parallel_for_dynamic(std::int64_t begin, std::int64_t end, const Fn& fn) {
  constexpr std::int64_t kChunksPerThread = 8;
  const std::int64_t n = end - begin;
  if (n <= 0) return;
  const std::int64_t chunk = std::max<std::int64_t>(1, n / (kChunksPerThread * num_threads()));
  std::atomic<std::int64_t> next{begin};
  parallel_for(0, std::min<std::int64_t>(num_threads(), (n + chunk - 1) / chunk), 1, [&](std::int64_t, std::int64_t) {
    for (std::int64_t lo; (lo = next.fetch_add(chunk, std::memory_order_relaxed)) < end;)
      fn(lo, std::min(end, lo + chunk));
  });
}

}  // namespace fastconv
