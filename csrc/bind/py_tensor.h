// The one place where numpy arrays become TensorArgs (core/tensor_arg.h): every binding
// converts its array arguments here and calls its family's checked dispatch without the GIL.
// Every binding includes this header, so every one sees the same casters: stl.h's make
// std::array and std::vector arguments Python sequences and lists.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <tuple>
#include <type_traits>
#include <utility>

#include "core/scratch.h"
#include "core/tensor_arg.h"

namespace fastconv {

namespace py = pybind11;

// numpy's dtypes are compared by identity, as py::dtype::is does: a float32 dtype with
// metadata, or of the other byte order, is not the kernels' float32.
inline DType classify_dtype(const py::dtype& dtype) {
  if (dtype.is(py::dtype::of<float>())) return DType::float32;
  if (dtype.is(py::dtype::of<double>())) return DType::float64;
  if (dtype.is(py::dtype::of<std::int64_t>())) return DType::int64;
  return DType::other;
}

// As numpy prints it, without asking numpy for the dtypes the kernels take.
inline std::string printed_dtype(DType dtype, const py::dtype& numpy_dtype) {
  switch (dtype) {
    case DType::float32: return "float32";
    case DType::float64: return "float64";
    case DType::int64: return "int64";
    default: return std::string(py::str(numpy_dtype));
  }
}

static_assert(sizeof(py::ssize_t) == sizeof(index_t), "numpy's sizes must be index_t");

// None -> a TensorArg that is not present; anything else must be a numpy array. The TensorArg
// borrows the array's memory, shape and strides: the caller's reference keeps them alive.
// Needs the GIL.
inline TensorArg to_tensor_arg(const py::handle& obj) {
  TensorArg t;
  if (obj.is_none()) return t;
  const auto a = obj.cast<py::array>();
  const py::dtype dtype = a.dtype();
  t.data = const_cast<void*>(a.data());
  t.dtype = classify_dtype(dtype);
  t.dtype_name = printed_dtype(t.dtype, dtype);
  t.itemsize = a.itemsize();
  t.ndim = static_cast<int>(a.ndim());
  t.shape = reinterpret_cast<const index_t*>(a.shape());
  t.strides = reinterpret_cast<const index_t*>(a.strides());
  t.writeable = a.writeable();
  t.c_contiguous = (a.flags() & py::array::c_style) != 0;
  return t;
}

// Python arguments as the checked dispatch takes them: arrays and None as TensorArgs, the rest
// (numbers, strings, tuples) as they are.
inline TensorArg to_dispatch_arg(const py::object& obj) { return to_tensor_arg(obj); }
template <class T, std::enable_if_t<!std::is_base_of_v<py::handle, T>, int> = 0>
const T& to_dispatch_arg(const T& value) {
  return value;
}

// fn(args...) with the GIL released, every array argument converted first, its scratch counted
// against the workspace limit from zero. The checks fn makes may throw: pybind11 raises them in
// Python once the GIL is back.
template <class Fn, class... Args>
auto call_without_gil(Fn&& fn, const Args&... args) {
  auto converted = std::make_tuple(to_dispatch_arg(args)...);
  begin_call_workspace();
  py::gil_scoped_release release;
  return std::apply(std::forward<Fn>(fn), converted);
}

}  // namespace fastconv
