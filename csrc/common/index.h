// The integer of every size, index and stride (numpy's npy_intp on 64-bit machines), and the
// min / max / clamp of two of them for code that cannot use <algorithm>.
#pragma once
#include "common/c_headers.h"
#include "common/host_device.h"

namespace fastconv {

using index_t = int64_t;

// As std::min, std::max and std::clamp: the same comparisons, so the same results.
FASTCONV_HD constexpr index_t index_min(index_t a, index_t b) { return b < a ? b : a; }
FASTCONV_HD constexpr index_t index_max(index_t a, index_t b) { return a < b ? b : a; }
FASTCONV_HD constexpr index_t index_clamp(index_t v, index_t lo, index_t hi) {
  return v < lo ? lo : (hi < v ? hi : v);
}

}  // namespace fastconv
