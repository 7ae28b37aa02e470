#include "core/probes.h"

#include <cstring>

#include "core/parallel.h"
#include "core/scratch.h"

namespace fastconv {

void parallel_copy(const TensorArg& src, const TensorArg& dst) {
  if (!src.c_contiguous || !dst.c_contiguous || src.nbytes() != dst.nbytes())
    fail<ValueError>("parallel_copy: src and dst must be C-contiguous and of equal size");
  if (!dst.writeable) fail<ValueError>("dst: array is read-only");
  const char* from = static_cast<const char*>(src.data);
  char* to = static_cast<char*>(dst.data);
  parallel_for(0, src.nbytes(), 1 << 16, [&](index_t lo, index_t hi) { std::memcpy(to + lo, from + lo, hi - lo); });
}

index_t scratch_bytes() { return static_cast<index_t>(detail::scratch_bytes_held().load()); }

void release_scratch() {
  release_thread_scratch();
  parallel_for(0, num_threads(), 1, [](index_t, index_t) { release_thread_scratch(); });
}

}  // namespace fastconv
