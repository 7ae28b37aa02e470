// Views of numpy arrays, built and checked once at the binding. Every failed check names the
// argument and what was expected, and raises before any kernel touches memory.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <type_traits>

#include "core/errors.h"
#include "core/view.h"

namespace fastconv {

namespace py = pybind11;

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

inline std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t d = 0; d < a.ndim(); ++d) s += (d ? ", " : "") + std::to_string(a.shape(d));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

// `layout` documents the expected axes in messages, e.g. "(N, C, H, W)".
template <class T, int N>
Tensor<T, N> tensor_arg(const py::array& a, const char* name, const char* layout) {
  using Elem = std::remove_const_t<T>;
  if (!a.dtype().is(py::dtype::of<Elem>()))
    fail<TypeError>(name, ": expected a ", dtype_name<Elem>(), " array, got dtype ",
                    std::string(py::str(a.dtype())));
  if (a.ndim() != N)
    fail<ValueError>(name, ": expected a ", N, "-d array ", layout, ", got shape ", shape_str(a));
  if (!std::is_const_v<T> && !a.writeable()) fail<ValueError>(name, ": array is read-only");
  Tensor<T, N> t;
  t.data = static_cast<T*>(const_cast<void*>(a.data()));
  for (int d = 0; d < N; ++d) {
    if (a.strides(d) % static_cast<py::ssize_t>(sizeof(Elem)) != 0)
      fail<ValueError>(name, ": strides must be multiples of the item size");
    t.shape[d] = a.shape(d);
    t.strides[d] = a.strides(d) / static_cast<py::ssize_t>(sizeof(Elem));
  }
  return t;
}

// As tensor_arg, and the kernel needs C-contiguous memory.
template <class T, int N>
Tensor<T, N> contiguous_arg(const py::array& a, const char* name, const char* layout) {
  Tensor<T, N> t = tensor_arg<T, N>(a, name, layout);
  if (!t.is_contiguous()) fail<ValueError>(name, ": expected a C-contiguous array");
  return t;
}

template <class T>
MatrixView<T> matrix_arg(const py::array& a, const char* name) {
  Tensor<T, 2> t = tensor_arg<T, 2>(a, name, "(rows, cols)");
  return {t.data, t.shape[0], t.shape[1], t.strides[0], t.strides[1], 0, 0, 0, 0};
}

// Checks `a` is a contiguous T array of exactly `shape`; `layout` names its axes in messages.
template <class T, std::size_t N>
T* shaped_arg(const py::array& a, const char* name, const char* layout, const std::array<index_t, N>& shape) {
  auto t = contiguous_arg<T, static_cast<int>(N)>(a, name, layout);
  if (t.shape != shape) fail<ValueError>(name, ": expected shape ", shape_str(shape), ", got ", shape_str(a));
  return t.data;
}

// Checks `a` is a contiguous 4-d T array of exactly `shape`.
template <class T>
T* nchw_arg(const py::array& a, const char* name, const std::array<index_t, 4>& shape) {
  return shaped_arg<T>(a, name, "(N, C, H, W)", shape);
}

// None -> nullptr (an optional argument), else a contiguous 1-d T array of n values.
template <class T>
T* vector_arg(const py::object& a, const char* name, index_t n) {
  if (a.is_none()) return nullptr;
  auto t = contiguous_arg<T, 1>(a.cast<py::array>(), name, "(K,)");
  if (t.shape[0] != n) fail<ValueError>(name, ": expected shape (", n, ",), got (", t.shape[0], ",)");
  return t.data;
}

// The shape of a 4-d array, before its dtype is known.
inline std::array<index_t, 4> shape4(const py::array& a, const char* name, const char* layout) {
  if (a.ndim() != 4) fail<ValueError>(name, ": expected a 4-d array ", layout, ", got shape ", shape_str(a));
  return {a.shape(0), a.shape(1), a.shape(2), a.shape(3)};
}

// Calls fn(T{}) with T = float or double, as the dtype of `a` says.
template <class Fn>
auto dispatch_float(const py::array& a, const char* name, Fn&& fn) {
  if (a.dtype().is(py::dtype::of<float>())) return fn(float{});
  if (a.dtype().is(py::dtype::of<double>())) return fn(double{});
  fail<TypeError>(name, ": expected a float32 or float64 array, got dtype ",
                  std::string(py::str(a.dtype())));
}

}  // namespace fastconv
