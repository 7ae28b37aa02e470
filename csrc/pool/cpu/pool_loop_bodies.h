// The bodies of pool_loops.h's loops, included by one file per ISA. Each includer names its own
// Isa tag in an anonymous namespace (with kVectorBytes, the width of its vectors), so its
// instantiations are its own (internal linkage): the linker cannot swap an AVX-512 copy in for
// another ISA's callers. Raw loops only: nothing here may instantiate an inline function that
// baseline code shares.
#pragma once
#include <cstdint>
#include <cstring>
#include <utility>

#include "pool/cpu/pool_loops.h"

namespace fastconv::pool::cpu::loop_bodies {

// PyTorch's max update, `if (val > maxval || isnan(val))`, as a select: does v replace best?
template <class Isa, class T>
inline bool replaces(T v, T best) {
  return (v > best) | (v != v);  // `|`: no short-circuit branch
}

// Plain 2x2 pooling on vectors of Isa::kVectorBytes (GCC/Clang vector extensions), a row of
// outputs at a time. Each output picks within its top pair, within its bottom pair, then
// between the two: PyTorch folds the four taps in row-major order, and its update keeps the last
// NaN or else the first maximum, which this tree gives too (the fold is associative), so
// values, signed zeros and indices are PyTorch's. The generic row sweep spends more on window
// arithmetic than on data for these small windows.
template <class Isa, class T>
struct Lanes {
  static constexpr int N = Isa::kVectorBytes / sizeof(T);
  typedef T Vec __attribute__((vector_size(Isa::kVectorBytes)));
  typedef LaneIndex<T> Mask __attribute__((vector_size(Isa::kVectorBytes)));  // comparisons' lanes
  typedef std::int64_t Wide __attribute__((vector_size(N * sizeof(std::int64_t))));  // as indices
  using Lane = std::make_index_sequence<N>;

  // lanes 0, 2, 4, ... and 1, 3, 5, ... of the pair (a, b): the left and right taps of N windows
  template <std::size_t... I>
  static Vec evens(Vec a, Vec b, std::index_sequence<I...>) {
    return __builtin_shufflevector(a, b, (2 * I)...);
  }
  template <std::size_t... I>
  static Vec odds(Vec a, Vec b, std::index_sequence<I...>) {
    return __builtin_shufflevector(a, b, (2 * I + 1)...);
  }
};

// Output q of a plain 2x2 row, one at a time (the row's tail), with its index from the row's top
// left tap.
template <class Isa, class T>
T max_2x2_one(const T* top, index_t width, index_t q, index_t* index) {
  const T a = top[2 * q], b = top[2 * q + 1], c = top[width + 2 * q], d = top[width + 2 * q + 1];
  const bool right_top = replaces<Isa>(b, a), right_bottom = replaces<Isa>(d, c);
  const T upper = right_top ? b : a, lower = right_bottom ? d : c;
  const bool below = replaces<Isa>(lower, upper);
  *index = (below ? width : 0) + 2 * q + ((below ? right_bottom : right_top) ? 1 : 0);
  return below ? lower : upper;
}

template <class Isa, class T, bool kIndices>
void max_2x2_row(const T* __restrict top, index_t width, index_t Q, T* __restrict out,
                 std::int64_t* __restrict indices, index_t row_start) {
  using L = Lanes<Isa, T>;
  using Vec = typename L::Vec;
  using Mask = typename L::Mask;
  const T* bottom = top + width;
  typename L::Wide left_columns;  // the windows' left taps, from the first
  for (int i = 0; i < L::N; ++i) left_columns[i] = 2 * i;
  index_t q = 0;
  for (; q + L::N <= Q; q += L::N) {
    Vec t0, t1, b0, b1;  // memcpy: unaligned loads without aliasing questions
    std::memcpy(&t0, top + 2 * q, sizeof(Vec));
    std::memcpy(&t1, top + 2 * q + L::N, sizeof(Vec));
    std::memcpy(&b0, bottom + 2 * q, sizeof(Vec));
    std::memcpy(&b1, bottom + 2 * q + L::N, sizeof(Vec));
    const Vec top_left = L::evens(t0, t1, typename L::Lane{}), top_right = L::odds(t0, t1, typename L::Lane{});
    const Vec bottom_left = L::evens(b0, b1, typename L::Lane{});
    const Vec bottom_right = L::odds(b0, b1, typename L::Lane{});
    const Mask right_top = (top_right > top_left) | (top_right != top_right);
    const Mask right_bottom = (bottom_right > bottom_left) | (bottom_right != bottom_right);
    const Vec upper = right_top ? top_right : top_left, lower = right_bottom ? bottom_right : bottom_left;
    const Mask below = (lower > upper) | (lower != lower);
    const Vec best = below ? lower : upper;
    std::memcpy(out + q, &best, sizeof(Vec));
    if constexpr (kIndices) {  // masks are -1 (true) or 0
      using Wide = typename L::Wide;
      const Wide right = __builtin_convertvector(below ? right_bottom : right_top, Wide);
      const Wide down = __builtin_convertvector(below, Wide);
      const Wide at = (row_start + 2 * q) + left_columns + (down & width) - right;
      std::memcpy(indices + q, &at, sizeof(Wide));
    }
  }
  for (; q < Q; ++q) {
    index_t at;
    out[q] = max_2x2_one<Isa>(top, width, q, &at);
    if constexpr (kIndices) indices[q] = row_start + at;
  }
}

// One kernel tap swept over a row of outputs: PyTorch's update as unconditional selects (a
// branch on real data mispredicts often).
template <class Isa, class T, bool kIndices, index_t kStride>
void max_tap(const T* __restrict src, index_t lo, index_t hi, index_t runtime_stride, std::int32_t tap0,
             T* __restrict y, std::int32_t* __restrict idx) {
  const index_t stride = kStride > 0 ? kStride : runtime_stride;
  for (index_t q = lo; q < hi; ++q) {
    const T v = src[q * stride], best = y[q];
    const bool take = replaces<Isa>(v, best);
    y[q] = take ? v : best;
    if constexpr (kIndices) idx[q] = take ? tap0 + static_cast<std::int32_t>(q * stride) : idx[q];
  }
}

template <class Isa, class T, index_t kStride>
void sum_tap(const T* __restrict src, index_t lo, index_t hi, index_t runtime_stride, T* __restrict out) {
  const index_t stride = kStride > 0 ? kStride : runtime_stride;
  for (index_t q = lo; q < hi; ++q) out[q] += src[q * stride];
}

template <class Isa, class T, index_t kStride>
void spread_tap(const T* __restrict share, index_t lo, index_t hi, index_t runtime_stride, T* __restrict dst) {
  const index_t stride = kStride > 0 ? kStride : runtime_stride;
  for (index_t q = lo; q < hi; ++q) dst[q * stride] += share[q];
}

template <class Isa, class T, bool kIndices>
void max_tap_cl(const T* __restrict x, index_t n, LaneIndex<T> tap, T* __restrict y, LaneIndex<T>* __restrict idx) {
#pragma omp simd
  for (index_t c = 0; c < n; ++c) {
    const T v = x[c], best = y[c];
    const bool take = replaces<Isa>(v, best);
    y[c] = take ? v : best;
    if constexpr (kIndices) idx[c] = take ? tap : idx[c];
  }
}

template <class Isa, class T>
void add_cl(const T* __restrict x, index_t n, T* __restrict y) {
#pragma omp simd
  for (index_t c = 0; c < n; ++c) y[c] += x[c];
}

template <class Isa, class T>
void sum_window_cl(const T* image, index_t W, index_t ld, index_t h0, index_t h1, index_t w0, index_t w1, index_t n,
                   T* y) {
#pragma omp simd
  for (index_t c = 0; c < n; ++c) y[c] = T(0);
  for (index_t ih = h0; ih < h1; ++ih)
    for (index_t iw = w0; iw < w1; ++iw) add_cl<Isa>(image + (ih * W + iw) * ld, n, y);
}

template <class Isa, class T>
void spread_window_cl(const T* share, index_t W, index_t ld, index_t h0, index_t h1, index_t w0, index_t w1,
                      index_t n, T* image) {
  for (index_t ih = h0; ih < h1; ++ih)
    for (index_t iw = w0; iw < w1; ++iw) add_cl<Isa>(share, n, image + (ih * W + iw) * ld);
}

template <class Isa, class T, bool kTwice>
void divide_cl(const T* src, index_t n, T a, T b, T* dst) {
#pragma omp simd
  for (index_t c = 0; c < n; ++c) dst[c] = kTwice ? src[c] / a / b : src[c] / a;
}

// dx[c] = 0 + dy[c] where lanes[c] names `pixel`, else 0: the scatter's sum from +0, so a -0
// gradient lands as +0, as PyTorch's does. Returns the matches. In Lanes' vectors: GCC 12 moved
// the addition under the condition and compiled the `omp simd` loop to a branch per channel.
template <class Isa, class T>
std::int64_t gather_pixel(const T* __restrict dy, const LaneIndex<T>* __restrict lanes, index_t n,
                          LaneIndex<T> pixel, T* __restrict dx) {
  using L = Lanes<Isa, T>;
  typename L::Mask hits{};  // each lane -1 per match
  index_t c = 0;
  for (; c + L::N <= n; c += L::N) {
    typename L::Vec g;
    typename L::Mask named;
    std::memcpy(&g, dy + c, sizeof(g));
    std::memcpy(&named, lanes + c, sizeof(named));
    const typename L::Mask hit = named == pixel;
    const typename L::Vec routed = hit ? g + T(0) : typename L::Vec{};
    std::memcpy(dx + c, &routed, sizeof(routed));
    hits += hit;
  }
  std::int64_t matches = 0;
  for (int i = 0; i < L::N; ++i) matches -= hits[i];
  for (; c < n; ++c) {
    const bool hit = lanes[c] == pixel;
    dx[c] = hit ? dy[c] + T(0) : T(0);
    matches += hit;
  }
  return matches;
}

// The indices as T-wide lanes (the compares then vectorise beside T's), -1 outside the plane;
// returns how many lie inside.
template <class Isa, class T>
std::int64_t plane_lanes(const std::int64_t* __restrict idx, index_t n, index_t HW, LaneIndex<T>* __restrict lanes) {
  LaneIndex<T> inside = 0;
#pragma omp simd reduction(+ : inside)
  for (index_t c = 0; c < n; ++c) {
    const std::int64_t i = idx[c];
    const bool in_plane = (i >= 0) & (i < HW);
    lanes[c] = in_plane ? static_cast<LaneIndex<T>>(i) : LaneIndex<T>(-1);
    inside += in_plane;
  }
  return inside;
}

template <class Isa, class T>
std::int64_t gather_max_gradient_cl(const T* dy, const std::int64_t* idx, index_t n, index_t ld, index_t rows,
                                    index_t columns, index_t W, std::int64_t first, index_t HW, LaneIndex<T>* lanes,
                                    T* dx) {
  std::int64_t balance = -plane_lanes<Isa, T>(idx, n, HW, lanes);
  for (index_t r = 0; r < rows; ++r)
    for (index_t k = 0; k < columns; ++k) {
      const std::int64_t pixel = first + r * W + k;
      balance += gather_pixel<Isa>(dy, lanes, n, static_cast<LaneIndex<T>>(pixel), dx + pixel * ld);
    }
  return balance;
}

// The table of one ISA's loops (Isa: the including file's tag).
template <class Isa, class T>
PoolLoops<T> table() {
  PoolLoops<T> l{};
  l.max_2x2_row[0] = max_2x2_row<Isa, T, false>;
  l.max_2x2_row[1] = max_2x2_row<Isa, T, true>;
  l.max_tap[0][0] = max_tap<Isa, T, false, 0>;
  l.max_tap[0][1] = max_tap<Isa, T, false, 1>;
  l.max_tap[0][2] = max_tap<Isa, T, false, 2>;
  l.max_tap[1][0] = max_tap<Isa, T, true, 0>;
  l.max_tap[1][1] = max_tap<Isa, T, true, 1>;
  l.max_tap[1][2] = max_tap<Isa, T, true, 2>;
  l.sum_tap[0] = sum_tap<Isa, T, 0>;
  l.sum_tap[1] = sum_tap<Isa, T, 1>;
  l.sum_tap[2] = sum_tap<Isa, T, 2>;
  l.spread_tap[0] = spread_tap<Isa, T, 0>;
  l.spread_tap[1] = spread_tap<Isa, T, 1>;
  l.spread_tap[2] = spread_tap<Isa, T, 2>;
  l.max_tap_cl[0] = max_tap_cl<Isa, T, false>;
  l.max_tap_cl[1] = max_tap_cl<Isa, T, true>;
  l.sum_window_cl = sum_window_cl<Isa, T>;
  l.spread_window_cl = spread_window_cl<Isa, T>;
  l.divide_cl[0] = divide_cl<Isa, T, false>;
  l.divide_cl[1] = divide_cl<Isa, T, true>;
  l.gather_max_gradient_cl = gather_max_gradient_cl<Isa, T>;
  return l;
}

}  // namespace fastconv::pool::cpu::loop_bodies
