#include "core/parallel.h"

#include <cstdlib>

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
}  // namespace

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
  g_threads = n;
}

}  // namespace fastconv
