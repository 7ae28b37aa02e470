#include "core/parallel.h"

#include <atomic>
#include <cstdlib>

#if __has_include(<pthread.h>)
#include <pthread.h>
#endif

#include "core/errors.h"

namespace fastconv {

namespace {
int initial_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}
int g_threads = initial_threads();

// GNU OpenMP does not start its threads again in a forked child: there a parallel region waits
// forever for threads that exist only in the parent. So a child forked after the parent's
// threads started (multiprocessing's default start method on Linux, a data loader's workers)
// runs every kernel on its own thread, as PyTorch's do; one forked before keeps its count.
std::atomic<bool> g_threads_started{false};
bool g_threads_lost_to_fork = false;

void in_forked_child() {
  if (!g_threads_started.load(std::memory_order_relaxed)) return;
  g_threads = 1;
  g_threads_lost_to_fork = true;
  g_threads_started.store(false, std::memory_order_relaxed);  // the child has none
}

[[maybe_unused]] const bool g_fork_handler = [] {
#if __has_include(<pthread.h>)
  pthread_atfork(nullptr, nullptr, &in_forked_child);
#endif
  return true;
}();
}  // namespace

void note_threads_started() { g_threads_started.store(true, std::memory_order_relaxed); }

bool threads_lost_to_fork() { return g_threads_lost_to_fork; }

// Inside a parallel region (a kernel that splits its work over threads and calls another
// kernel per thread) every kernel runs on the calling thread alone.
int num_threads() {
#ifdef _OPENMP
  if (omp_in_parallel()) return 1;
#endif
  return g_threads;
}

void set_num_threads(int n) {
  if (n < 1) fail<ValueError>("set_num_threads: n must be >= 1, got ", n);
  if (n > 1 && g_threads_lost_to_fork)
    fail<ValueError>("set_num_threads: this process was forked from one whose threads had started, and OpenMP ",
                     "cannot start them again here: it runs on one thread (start it with multiprocessing's ",
                     "'spawn' or 'forkserver' method for more)");
  g_threads = n;
}

}  // namespace fastconv
