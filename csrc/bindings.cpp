// The Python module fastconv._C: one short block per kernel family, no logic. Arrays are
// checked into views here (core/py_view.h) and the GIL is released while kernels run.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <cstring>

#include "core/isa.h"
#include "core/parallel.h"
#include "core/py_view.h"
#include "conv/conv2d.h"
#include "conv/conv_transpose.h"
#include "gemm/gemm.h"

namespace py = pybind11;
using namespace fastconv;

namespace {

void bind_runtime(py::module_& m) {
  m.def("num_threads", &num_threads);
  m.def("set_num_threads", &set_num_threads, py::arg("n"));
  m.def("isa", [] { return std::string(isa_name(active_isa())); });
  m.def("set_isa", &set_active_isa, py::arg("name"));
  m.def("supported_isas", [] {
    std::vector<std::string> names;
    for (Isa isa : supported_isas()) names.emplace_back(isa_name(isa));
    return names;
  });
#ifdef _OPENMP
  m.attr("openmp") = _OPENMP;
#else
  m.attr("openmp") = py::none();
#endif
  m.attr("compiler") = __VERSION__;
}

// Machine probes for the benchmark: the FMA peak and a copy's bandwidth, on every thread.
void bind_probes(py::module_& m) {
  m.def("fma_peak_gflops", [](bool float64, index_t iterations) {
    auto fma = float64 ? gemm::active_kernels<double>().fma_loop : gemm::active_kernels<float>().fma_loop;
    py::gil_scoped_release release;
    double flops = 0;
    const auto start = std::chrono::steady_clock::now();
    parallel_for(0, num_threads(), 1, [&](index_t lo, index_t hi) {
      double done = 0;
      for (index_t t = lo; t < hi; ++t) done += fma(iterations);
#pragma omp atomic
      flops += done;
    });
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return flops / seconds * 1e-9;
  }, py::arg("float64") = false, py::arg("iterations") = 20000000);

  m.def("parallel_copy", [](py::array src, py::array dst) {
    if (!(src.flags() & py::array::c_style) || !(dst.flags() & py::array::c_style) || src.nbytes() != dst.nbytes())
      fail<ValueError>("parallel_copy: src and dst must be C-contiguous and of equal size");
    if (!dst.writeable()) fail<ValueError>("dst: array is read-only");
    const char* from = static_cast<const char*>(src.data());
    char* to = static_cast<char*>(dst.mutable_data());
    const index_t bytes = src.nbytes();
    py::gil_scoped_release release;
    parallel_for(0, bytes, 1 << 16, [&](index_t lo, index_t hi) { std::memcpy(to + lo, from + lo, hi - lo); });
  }, py::arg("src"), py::arg("dst"));
}

void bind_gemm(py::module_& m) {
  m.def("gemm", [](py::array a, py::array b, py::array c, double alpha, double beta) {
    dispatch_float(a, "a", [&](auto tag) {
      using T = decltype(tag);
      auto av = matrix_arg<const T>(a, "a"), bv = matrix_arg<const T>(b, "b");
      auto cv = matrix_arg<T>(c, "c");
      py::gil_scoped_release release;
      gemm::gemm<T>(av, bv, cv, {T(alpha), T(beta)});
    });
  }, py::arg("a"), py::arg("b"), py::arg("c"), py::arg("alpha") = 1.0, py::arg("beta") = 0.0,
     "c = alpha * a @ b + beta * c for float32/float64 matrices of any strides.");
}

conv::Conv2dParams conv_params(std::array<index_t, 2> stride, std::array<index_t, 2> pad_begin,
                               std::array<index_t, 2> pad_end, std::array<index_t, 2> dilation,
                               index_t groups) {
  return {stride, pad_begin, pad_end, dilation, groups};
}

#define CONV_PARAMS_ARGS py::arg("stride"), py::arg("pad_begin"), py::arg("pad_end"), py::arg("dilation"), py::arg("groups")

void bind_conv2d(py::module_& m) {
  m.def("conv2d_output_shape", [](std::array<index_t, 4> input, std::array<index_t, 4> weight,
                                  std::array<index_t, 2> st, std::array<index_t, 2> pb,
                                  std::array<index_t, 2> pe, std::array<index_t, 2> dl, index_t g) {
    return conv::Conv2dShape(input, weight, conv_params(st, pb, pe, dl, g)).output_shape();
  }, py::arg("input_shape"), py::arg("weight_shape"), CONV_PARAMS_ARGS);

  m.def("conv2d_forward", [](py::array x, py::array w, py::object bias, py::array y,
                             std::array<index_t, 2> st, std::array<index_t, 2> pb,
                             std::array<index_t, 2> pe, std::array<index_t, 2> dl, index_t g) {
    dispatch_float(x, "input", [&](auto tag) {
      using T = decltype(tag);
      const conv::Conv2dShape s(shape4(x, "input", "(N, C, H, W)"), shape4(w, "weight", "(K, C/groups, R, S)"),
                                conv_params(st, pb, pe, dl, g));
      const T* xp = nchw_arg<const T>(x, "input", s.input_shape());
      const T* wp = nchw_arg<const T>(w, "weight", s.weight_shape());
      const T* bp = vector_arg<const T>(bias, "bias", s.K);
      T* yp = nchw_arg<T>(y, "out", s.output_shape());
      py::gil_scoped_release release;
      conv::conv2d_forward<T>(s, xp, wp, bp, yp);
    });
  }, py::arg("input"), py::arg("weight"), py::arg("bias"), py::arg("out"), CONV_PARAMS_ARGS);

  m.def("conv2d_backward_input", [](py::array grad_y, py::array w, py::array grad_x,
                                    std::array<index_t, 2> st, std::array<index_t, 2> pb,
                                    std::array<index_t, 2> pe, std::array<index_t, 2> dl, index_t g) {
    dispatch_float(grad_y, "grad_output", [&](auto tag) {
      using T = decltype(tag);
      const conv::Conv2dShape s(shape4(grad_x, "grad_input", "(N, C, H, W)"),
                                shape4(w, "weight", "(K, C/groups, R, S)"), conv_params(st, pb, pe, dl, g));
      const T* dyp = nchw_arg<const T>(grad_y, "grad_output", s.output_shape());
      const T* wp = nchw_arg<const T>(w, "weight", s.weight_shape());
      T* dxp = nchw_arg<T>(grad_x, "grad_input", s.input_shape());
      py::gil_scoped_release release;
      conv::conv2d_backward_input<T>(s, dyp, wp, dxp);
    });
  }, py::arg("grad_output"), py::arg("weight"), py::arg("grad_input"), CONV_PARAMS_ARGS);

  m.def("conv2d_backward_weight", [](py::array x, py::array grad_y, py::array grad_w, py::object grad_b,
                                     std::array<index_t, 2> st, std::array<index_t, 2> pb,
                                     std::array<index_t, 2> pe, std::array<index_t, 2> dl, index_t g) {
    dispatch_float(x, "input", [&](auto tag) {
      using T = decltype(tag);
      const conv::Conv2dShape s(shape4(x, "input", "(N, C, H, W)"),
                                shape4(grad_w, "grad_weight", "(K, C/groups, R, S)"), conv_params(st, pb, pe, dl, g));
      const T* xp = nchw_arg<const T>(x, "input", s.input_shape());
      const T* dyp = nchw_arg<const T>(grad_y, "grad_output", s.output_shape());
      T* dwp = nchw_arg<T>(grad_w, "grad_weight", s.weight_shape());
      T* dbp = vector_arg<T>(grad_b, "grad_bias", s.K);
      py::gil_scoped_release release;
      conv::conv2d_backward_weight<T>(s, xp, dyp, dwp, dbp);
    });
  }, py::arg("input"), py::arg("grad_output"), py::arg("grad_weight"), py::arg("grad_bias"), CONV_PARAMS_ARGS);
}

using Pair = std::array<index_t, 2>;

#define CONV_TRANSPOSE_ARGS py::arg("stride"), py::arg("padding"), py::arg("output_padding"), py::arg("dilation"), py::arg("groups")

void bind_conv_transpose2d(py::module_& m) {
  m.def("conv_transpose2d_output_shape", [](std::array<index_t, 4> input, std::array<index_t, 4> weight,
                                            Pair st, Pair pad, Pair op, Pair dl, index_t g) {
    return conv::equivalent_conv2d(input, weight, {st, pad, op, dl, g}).input_shape();
  }, py::arg("input_shape"), py::arg("weight_shape"), CONV_TRANSPOSE_ARGS);

  m.def("conv_transpose2d_forward", [](py::array x, py::array w, py::object bias, py::array y,
                                       Pair st, Pair pad, Pair op, Pair dl, index_t g) {
    dispatch_float(x, "input", [&](auto tag) {
      using T = decltype(tag);
      const auto s = conv::equivalent_conv2d(shape4(x, "input", "(N, C_in, H, W)"),
                                             shape4(w, "weight", "(C_in, C_out/groups, R, S)"), {st, pad, op, dl, g});
      const T* xp = nchw_arg<const T>(x, "input", s.output_shape());
      const T* wp = nchw_arg<const T>(w, "weight", s.weight_shape());
      const T* bp = vector_arg<const T>(bias, "bias", s.C);
      T* yp = nchw_arg<T>(y, "out", s.input_shape());
      py::gil_scoped_release release;
      conv::conv_transpose2d_forward<T>(s, xp, wp, bp, yp);
    });
  }, py::arg("input"), py::arg("weight"), py::arg("bias"), py::arg("out"), CONV_TRANSPOSE_ARGS);

  m.def("conv_transpose2d_backward", [](py::array x, py::array w, py::array grad_y, py::array grad_x,
                                        py::array grad_w, py::object grad_b,
                                        Pair st, Pair pad, Pair op, Pair dl, index_t g) {
    dispatch_float(x, "input", [&](auto tag) {
      using T = decltype(tag);
      const auto s = conv::equivalent_conv2d(shape4(x, "input", "(N, C_in, H, W)"),
                                             shape4(w, "weight", "(C_in, C_out/groups, R, S)"), {st, pad, op, dl, g});
      const T* xp = nchw_arg<const T>(x, "input", s.output_shape());
      const T* wp = nchw_arg<const T>(w, "weight", s.weight_shape());
      const T* dyp = nchw_arg<const T>(grad_y, "grad_output", s.input_shape());
      T* dxp = nchw_arg<T>(grad_x, "grad_input", s.output_shape());
      T* dwp = nchw_arg<T>(grad_w, "grad_weight", s.weight_shape());
      T* dbp = vector_arg<T>(grad_b, "grad_bias", s.C);
      py::gil_scoped_release release;
      conv::conv_transpose2d_backward_input<T>(s, dyp, wp, dxp);
      conv::conv_transpose2d_backward_weight<T>(s, xp, dyp, dwp, dbp);
    });
  }, py::arg("input"), py::arg("weight"), py::arg("grad_output"), py::arg("grad_input"), py::arg("grad_weight"),
     py::arg("grad_bias"), CONV_TRANSPOSE_ARGS);
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  py::register_exception<TypeError>(m, "TypeError", PyExc_TypeError);
  py::register_exception<ValueError>(m, "ValueError", PyExc_ValueError);
  bind_runtime(m);
  bind_probes(m);
  bind_gemm(m);
  bind_conv2d(m);
  bind_conv_transpose2d(m);
}
