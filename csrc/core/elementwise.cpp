#include "core/elementwise.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <utility>

#include "core/parallel.h"

namespace fastconv {

namespace {

// About this many bytes per thread's chunk at least: below, a fork costs more than it saves.
constexpr index_t kMinChunkBytes = index_t(1) << 16;

// The bytes [lo, hi) an array's elements lie in (negative strides allowed); lo == hi if empty.
std::pair<std::uintptr_t, std::uintptr_t> byte_span(const TensorArg& a) {
  const auto base = reinterpret_cast<std::uintptr_t>(a.data);
  if (a.numel() == 0) return {base, base};
  std::intptr_t lo = 0, hi = 0;
  for (int d = 0; d < a.ndim; ++d) {
    const std::intptr_t reach = static_cast<std::intptr_t>((a.shape[d] - 1) * a.strides[d]);
    (reach < 0 ? lo : hi) += reach;
  }
  return {base + lo, base + hi + a.itemsize};
}

bool share_memory(const TensorArg& a, const TensorArg& b) {
  const auto [a_lo, a_hi] = byte_span(a);
  const auto [b_lo, b_hi] = byte_span(b);
  return a_lo < a_hi && b_lo < b_hi && a_lo < b_hi && b_lo < a_hi;
}

// Checks what both operations need of their two arrays: float32 or float64 alike, the same
// shape, at most 4-d, the output writable, strides whole elements.
void check_pair(const TensorArg& out, const char* out_name, const TensorArg& in, const char* in_name) {
  for (const auto& [a, name] : {std::pair{&out, out_name}, std::pair{&in, in_name}}) {
    if (a->dtype != DType::float32 && a->dtype != DType::float64)
      fail<TypeError>(name, ": expected a float32 or float64 array, got dtype ", a->dtype_name);
    if (a->ndim < 0 || a->ndim > 4) fail<ValueError>(name, ": expected an array of at most 4 dims, got ", a->ndim);
    for (int d = 0; d < a->ndim; ++d)
      if (a->strides[d] % a->itemsize != 0) fail<ValueError>(name, ": strides must be multiples of the item size");
  }
  if (in.dtype != out.dtype)
    fail<TypeError>(in_name, ": expected ", out.dtype_name, " as ", out_name, ", got ", in.dtype_name);
  if (in.ndim != out.ndim || !std::equal(in.shape, in.shape + in.ndim, out.shape))
    fail<ValueError>(in_name, ": expected ", out_name, "'s shape ", shape_str(out), ", got ", shape_str(in));
  if (!out.writeable) fail<ValueError>(out_name, ": array is read-only");
}

// A view as 4 axes, leading axes of extent 1 added; strides in elements.
struct View4 {
  std::array<index_t, 4> shape{1, 1, 1, 1}, strides{0, 0, 0, 0};
  explicit View4(const TensorArg& a) {
    for (int d = 0; d < a.ndim; ++d) {
      shape[4 - a.ndim + d] = a.shape[d];
      strides[4 - a.ndim + d] = a.strides[d] / a.itemsize;
    }
  }
};

template <class T>
void copy_rows(const TensorArg& src_arg, const TensorArg& dst_arg) {
  const View4 s(src_arg), d(dst_arg);
  const T* src = static_cast<const T*>(src_arg.data);
  T* dst = static_cast<T*>(dst_arg.data);
  const index_t A = s.shape[0], B = s.shape[1], C = s.shape[2], W = s.shape[3];
  const index_t sw = s.strides[3], dw = d.strides[3];
  const index_t grain = std::max<index_t>(1, kMinChunkBytes / std::max<index_t>(W * index_t(sizeof(T)), 1));
  parallel_for(0, A * B * C, grain, [&](index_t lo, index_t hi) {
    // Row r is (a, b, c): found by division once per chunk, then counted on. (Three divisions a
    // row had cost as much as the copy itself on ResNet's option-A shortcut, rows of 8 and 16.)
    index_t a = lo / (B * C), b = lo / C % B, c = lo % C;
    for (index_t r = lo; r < hi; ++r) {
      const T* from = src + a * s.strides[0] + b * s.strides[1] + c * s.strides[2];
      T* to = dst + a * d.strides[0] + b * d.strides[1] + c * d.strides[2];
      if (++c == C) {
        c = 0;
        if (++b == B) b = 0, ++a;
      }
      if (sw == 1 && dw == 1) {
        std::memcpy(to, from, static_cast<std::size_t>(W) * sizeof(T));
      } else if (sw == 0 && dw == 1) {  // fill: the source is one value
        std::fill(to, to + W, *from);
      } else if (dw == 1) {  // a subsampled row into a dense one
        for (index_t j = 0; j < W; ++j) to[j] = from[j * sw];
      } else {
        for (index_t j = 0; j < W; ++j) to[j * dw] = from[j * sw];
      }
    }
  });
}

// Whether the array's elements fill numel() consecutive places from its lowest address.
bool dense(const TensorArg& a) {
  std::array<std::pair<index_t, index_t>, 4> axes{};  // (stride, extent), axes of extent 1 left out
  int n = 0;
  for (int d = 0; d < a.ndim; ++d)
    if (a.shape[d] != 1) axes[n++] = {a.strides[d] < 0 ? -1 : a.strides[d], a.shape[d]};
  std::sort(axes.begin(), axes.begin() + n);
  index_t expected = a.itemsize;
  for (int i = 0; i < n; ++i) {
    if (axes[i].first != expected) return false;
    expected *= axes[i].second;
  }
  return true;
}

template <class T>
void add_span(T* dst, const T* src, index_t n) {
  const index_t grain = kMinChunkBytes / index_t(sizeof(T));
  parallel_for(0, n, grain, [&](index_t lo, index_t hi) {
    for (index_t i = lo; i < hi; ++i) dst[i] += src[i];
  });
}

}  // namespace

void copy_view(const TensorArg& src, const TensorArg& dst) {
  check_pair(dst, "dst", src, "src");
  if (share_memory(src, dst)) fail<ValueError>("src: must not share memory with dst");
  if (src.numel() == 0) return;
  if (src.dtype == DType::float32)
    copy_rows<float>(src, dst);
  else
    copy_rows<double>(src, dst);
}

void fill(const TensorArg& dst, double value) {
  TensorArg one = dst;  // a view of one value under every index: all strides 0
  const std::array<index_t, 4> zero_strides{0, 0, 0, 0};
  one.strides = zero_strides.data();
  one.writeable = false;
  float as_float = static_cast<float>(value);
  check_pair(dst, "dst", one, "value");
  if (dst.numel() == 0) return;
  if (dst.dtype == DType::float32) {
    one.data = &as_float;
    copy_rows<float>(one, dst);
  } else {
    one.data = &value;
    copy_rows<double>(one, dst);
  }
}

void add_into(const TensorArg& dst, const TensorArg& src) {
  check_pair(dst, "dst", src, "src");
  if (!std::equal(src.strides, src.strides + src.ndim, dst.strides))
    fail<ValueError>("src: expected dst's strides, the same layout");
  if (!dense(dst)) fail<ValueError>("dst: expected an array whose elements fill its memory without gaps");
  const bool same = src.data == dst.data;
  if (!same && share_memory(src, dst)) fail<ValueError>("src: must be dst itself or share no memory with it");
  if (dst.numel() == 0) return;
  // Dense with equal strides: both are numel() values from their lowest address, in one order.
  const std::uintptr_t dst_lo = byte_span(dst).first, src_lo = byte_span(src).first;
  if (dst.dtype == DType::float32)
    add_span(reinterpret_cast<float*>(dst_lo), reinterpret_cast<const float*>(src_lo), dst.numel());
  else
    add_span(reinterpret_cast<double*>(dst_lo), reinterpret_cast<const double*>(src_lo), dst.numel());
}

}  // namespace fastconv
