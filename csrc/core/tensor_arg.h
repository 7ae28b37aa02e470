// The arrays a kernel family is called with, as plain descriptions that any caller can build
// (bind/py_tensor.h builds them from numpy arrays): data pointer, dtype, shape, strides. Each
// family's checked dispatch turns them into typed views (core/view.h) with the checks below,
// once, before any kernel touches memory; every failed check names the argument and what was
// expected.
#pragma once
#include <array>
#include <string>
#include <type_traits>

#include "core/errors.h"
#include "core/view.h"

namespace fastconv {

enum class DType { float32, float64, int64, other };

// One array argument, or an optional one that was not given (None). It does not own what it
// points to: the caller keeps the array alive while the call runs.
struct TensorArg {
  void* data = nullptr;
  DType dtype = DType::other;
  std::string dtype_name;            // as numpy prints it, for messages
  index_t itemsize = 0;              // bytes per element
  int ndim = -1;                     // -1: not given
  const index_t* shape = nullptr;    // ndim sizes
  const index_t* strides = nullptr;  // ndim strides, in bytes
  bool writeable = false;
  bool c_contiguous = false;         // numpy's C_CONTIGUOUS flag

  bool present() const { return ndim >= 0; }
  index_t numel() const {
    index_t n = 1;
    for (int d = 0; d < ndim; ++d) n *= shape[d];
    return n;
  }
  index_t nbytes() const { return numel() * itemsize; }
};

template <class T>
constexpr DType dtype_of() {
  if constexpr (std::is_integral_v<T>) return DType::int64;
  return sizeof(T) == 4 ? DType::float32 : DType::float64;
}

template <class T>
const char* dtype_name() {
  if constexpr (std::is_integral_v<T>) return "int64";
  return sizeof(T) == 4 ? "float32" : "float64";
}

template <std::size_t N>
std::string shape_str(const std::array<index_t, N>& shape) {
  std::string s = "(";
  for (std::size_t d = 0; d < N; ++d) s += (d ? ", " : "") + std::to_string(shape[d]);
  return s + (N == 1 ? ",)" : ")");
}

inline std::string shape_str(const TensorArg& a) {
  std::string s = "(";
  for (int d = 0; d < a.ndim; ++d) s += (d ? ", " : "") + std::to_string(a.shape[d]);
  return s + (a.ndim == 1 ? ",)" : ")");
}

// `a` as an N-d T array of any strides; `layout` documents the expected axes in messages, e.g.
// "(N, C, H, W)".
template <class T, int N>
Tensor<T, N> checked_tensor(const TensorArg& a, const char* name, const char* layout) {
  using Elem = std::remove_const_t<T>;
  if (a.dtype != dtype_of<Elem>())
    fail<TypeError>(name, ": expected a ", dtype_name<Elem>(), " array, got dtype ", a.dtype_name);
  if (a.ndim != N) fail<ValueError>(name, ": expected a ", N, "-d array ", layout, ", got shape ", shape_str(a));
  if (!std::is_const_v<T> && !a.writeable) fail<ValueError>(name, ": array is read-only");
  Tensor<T, N> t;
  t.data = static_cast<T*>(a.data);
  for (int d = 0; d < N; ++d) {
    if (a.strides[d] % static_cast<index_t>(sizeof(Elem)) != 0)
      fail<ValueError>(name, ": strides must be multiples of the item size");
    t.shape[d] = a.shape[d];
    t.strides[d] = a.strides[d] / static_cast<index_t>(sizeof(Elem));
  }
  return t;
}

// As checked_tensor, and the kernel needs C-contiguous memory.
template <class T, int N>
Tensor<T, N> contiguous_arg(const TensorArg& a, const char* name, const char* layout) {
  Tensor<T, N> t = checked_tensor<T, N>(a, name, layout);
  if (!t.is_contiguous()) fail<ValueError>(name, ": expected a C-contiguous array");
  return t;
}

template <class T>
MatrixView<T> matrix_arg(const TensorArg& a, const char* name) {
  Tensor<T, 2> t = checked_tensor<T, 2>(a, name, "(rows, cols)");
  return {t.data, t.shape[0], t.shape[1], t.strides[0], t.strides[1], 0, 0, 0, 0};
}

// Checks `a` is a contiguous T array of exactly `shape`; `layout` names its axes in messages.
template <class T, std::size_t N>
T* shaped_arg(const TensorArg& a, const char* name, const char* layout, const std::array<index_t, N>& shape) {
  auto t = contiguous_arg<T, static_cast<int>(N)>(a, name, layout);
  if (t.shape != shape) fail<ValueError>(name, ": expected shape ", shape_str(shape), ", got ", shape_str(a));
  return t.data;
}

// Checks `a` is a contiguous 4-d T array of exactly `shape`.
template <class T>
T* nchw_arg(const TensorArg& a, const char* name, const std::array<index_t, 4>& shape) {
  return shaped_arg<T>(a, name, "(N, C, H, W)", shape);
}

// Whether 4-d `a` has NHWC memory under its NCHW axes (a pixel's channels adjacent). Axes of
// extent 1 may have any stride, as numpy's contiguity flags allow.
inline bool nhwc_memory(const TensorArg& a) {
  if (a.ndim != 4 || a.itemsize <= 0) return false;
  index_t expected = a.itemsize;
  for (int d : {1, 3, 2, 0}) {
    if (a.shape[d] != 1 && a.strides[d] != expected) return false;
    expected *= a.shape[d];
  }
  return true;
}

// channels_last: NHWC memory and not also C-contiguous (an array that is both, C == 1 or 1x1
// planes, is the same memory either way and counts as NCHW), as torch's channels_last tensors
// and numpy's x_nhwc.transpose(0, 3, 1, 2) are. The same rule as ops/_checks.is_channels_last.
inline bool is_channels_last(const TensorArg& a) { return !a.c_contiguous && nhwc_memory(a); }

// Checks `a` is a channels_last T array of exactly `shape` (N, C, H, W); returns its memory,
// an (N, H, W, C) array.
template <class T>
T* channels_last_arg(const TensorArg& a, const char* name, const std::array<index_t, 4>& shape) {
  auto t = checked_tensor<T, 4>(a, name, "(N, C, H, W)");
  if (t.shape != shape) fail<ValueError>(name, ": expected shape ", shape_str(shape), ", got ", shape_str(a));
  if (t.numel() != 0 && !nhwc_memory(a)) fail<ValueError>(name, ": expected a channels_last (NHWC) array");
  return t.data;
}

// Whether a call whose (N, C, H, W) arrays share one layout runs channels_last: when any of them
// (given) is channels_last. An array that is both layouts (C == 1, 1x1 planes, an empty array)
// suits either kernel, so the others decide.
template <class... Arrays>
bool channels_last_call(const Arrays&... arrays) {
  return ((arrays.present() && is_channels_last(arrays)) || ...);
}

// An (N, C, H, W) T array of exactly `shape` in the layout the kernel reads: channels_last_arg
// or nchw_arg.
template <class T>
T* image_arg(const TensorArg& a, const char* name, const std::array<index_t, 4>& shape, bool channels_last) {
  return channels_last ? channels_last_arg<T>(a, name, shape) : nchw_arg<T>(a, name, shape);
}

// Not given -> nullptr (an optional argument), else a contiguous 1-d T array of n values.
template <class T>
T* vector_arg(const TensorArg& a, const char* name, index_t n) {
  if (!a.present()) return nullptr;
  auto t = contiguous_arg<T, 1>(a, name, "(K,)");
  if (t.shape[0] != n) fail<ValueError>(name, ": expected shape (", n, ",), got (", t.shape[0], ",)");
  return t.data;
}

// The shape of a 4-d array, before its dtype is known.
inline std::array<index_t, 4> shape4(const TensorArg& a, const char* name, const char* layout) {
  if (a.ndim != 4) fail<ValueError>(name, ": expected a 4-d array ", layout, ", got shape ", shape_str(a));
  return {a.shape[0], a.shape[1], a.shape[2], a.shape[3]};
}

// Calls fn(T{}) with T = float or double, as the dtype of `a` says.
template <class Fn>
auto dispatch_float(const TensorArg& a, const char* name, Fn&& fn) {
  if (a.dtype == DType::float32) return fn(float{});
  if (a.dtype == DType::float64) return fn(double{});
  fail<TypeError>(name, ": expected a float32 or float64 array, got dtype ", a.dtype_name);
}

}  // namespace fastconv
