"""csrc/common/index_div.h: the 32-bit fast path of index_div / index_mod gives the 64-bit
results, on both sides of 2**32 and for each operand."""
import numpy as np

from tests.cuda import hostgrid
from tests.cuda.hostgrid import i64, ptr

SOURCE = """#include "common/index_div.h"
extern "C" void divide(const int64_t* a, const int64_t* b, int64_t* q, int64_t* r, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    q[i] = fastconv::index_div(a[i], b[i]);
    r[i] = fastconv::index_mod(a[i], b[i]);
  }
}"""


def test_quotients_and_remainders_are_the_64_bit_ones():
    edges = [0, 1, 2, 7, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**32 + 5, 2**40 + 3, 2**62 + 11]
    a = np.array([x for x in edges for _ in edges], np.int64)
    b = np.array([max(y, 1) for _ in edges for y in edges], np.int64)
    q, r = np.empty_like(a), np.empty_like(a)
    hostgrid.build(SOURCE).divide(ptr(a), ptr(b), ptr(q), ptr(r), i64(a.size))
    np.testing.assert_array_equal(q, a // b)
    np.testing.assert_array_equal(r, a % b)
