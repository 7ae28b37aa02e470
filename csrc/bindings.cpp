// The Python module fastconv._C: one short block per kernel family, no logic. Arrays are
// checked into views here (core/py_view.h) and the GIL is released while kernels run.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "core/isa.h"
#include "core/output_cache.h"
#include "core/parallel.h"
#include "core/py_view.h"
#include "core/scratch.h"
#include "core/stream_store.h"
#include "conv/conv2d.h"
#include "gemm/gemm.h"

namespace py = pybind11;
using namespace fastconv;

namespace fastconv {
void bind_norm(py::module_& m);
void bind_pool(py::module_& m);
void bind_roi(py::module_& m);
void bind_sampling(py::module_& m);
void bind_conv_transpose(py::module_& m);
}

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
  m.def("set_stream_stores", [](const std::string& mode) {  // tests: "always" covers the streamed path
    if (mode == "by_size") stream_policy() = StreamPolicy::by_size;
    else if (mode == "always") stream_policy() = StreamPolicy::always;
    else if (mode == "never") stream_policy() = StreamPolicy::never;
    else fail<ValueError>("mode: expected 'by_size', 'always' or 'never', got '", mode, "'");
  }, py::arg("mode"));
  m.def("cache_bytes", [] { return std::make_pair(l2_cache_bytes(), last_level_cache_bytes()); },
        "(L2 per core, last-level cache instance) in bytes, 0 where the OS does not say");
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

  // Scratch memory (core/scratch.h), for the benchmark's "extra memory" of an algorithm:
  // release on every thread, run the kernel once, read what it allocated.
  m.def("scratch_bytes", [] { return static_cast<index_t>(detail::scratch_bytes_held().load()); });
  m.def("release_scratch", [] {
    py::gil_scoped_release release;
    release_thread_scratch();
    parallel_for(0, num_threads(), 1, [](index_t, index_t) { release_thread_scratch(); });
  });
}

// Uninitialised C-contiguous arrays for the ops' results: large ones from the output cache
// (core/output_cache.h), given back when numpy frees the array.
void bind_output_cache(py::module_& m) {
  m.def("empty", [](const std::vector<py::ssize_t>& shape, const py::dtype& dtype) {
    std::size_t bytes = static_cast<std::size_t>(dtype.itemsize());
    for (py::ssize_t d : shape) {
      if (d < 0) fail<ValueError>("empty: negative dimension ", d);
      bytes *= static_cast<std::size_t>(d);
    }
    if (bytes < output_cache::kMinBytes) return py::array(dtype, shape);
    void* block = output_cache::take(bytes);
    py::capsule owner(block, [](void* b) { output_cache::give_back(b); });
    return py::array(dtype, shape, block, owner);
  }, py::arg("shape"), py::arg("dtype"));
  m.def("set_output_cache_limit", [](std::size_t bytes) { output_cache::set_limit(bytes); }, py::arg("bytes"));
  m.def("release_output_cache", &output_cache::release_idle);
  m.def("output_cache_stats", [] {
    const output_cache::Stats s = output_cache::stats();
    py::dict d;
    d["limit"] = s.limit;
    d["idle_bytes"] = s.idle_bytes;
    d["idle_blocks"] = s.idle_blocks;
    d["live_blocks"] = s.live_blocks;
    d["hits"] = s.hits;
    d["misses"] = s.misses;
    return d;
  });
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

// Builds the checked geometry of one conv2d call; `algo` must support it.
conv::Conv2dShape conv_shape(const py::array& input, const py::array& weight, const char* input_name,
                             const char* weight_name, std::array<index_t, 2> st, std::array<index_t, 2> pb,
                             std::array<index_t, 2> pe, std::array<index_t, 2> dl, index_t g) {
  return conv::Conv2dShape(shape4(input, input_name, "(N, C, H, W)"), shape4(weight, weight_name, "(K, C/groups, R, S)"),
                           conv_params(st, pb, pe, dl, g));
}

using Pair = std::array<index_t, 2>;

conv::WeightUse weight_use(const std::string& use) {
  if (use == "forward") return conv::WeightUse::forward;
  if (use == "input_gradient") return conv::WeightUse::input_gradient;
  fail<ValueError>("use: expected 'forward' or 'input_gradient', got '", use, "'");
}

// The smallest convolution a weight (K, C/groups, R, S) runs: what a transform needs of a shape.
conv::Conv2dShape weight_only_shape(const std::array<index_t, 4>& weight, index_t g) {
  return conv::Conv2dShape({1, weight[1] * g, weight[2], weight[3]}, weight, conv_params({1, 1}, {0, 0}, {0, 0}, {1, 1}, g));
}

// FFT's transform is made at a given tile size: a power of two from the kernel's size to 64.
// The others take none (0).
void check_transform_tile(conv::Algo algo, const conv::Conv2dShape& s, index_t tile) {
  if (algo != conv::Algo::fft) {
    if (tile != 0) fail<ValueError>("tile: algo='", conv::algo_name(algo), "' takes no tile size, got ", tile);
    return;
  }
  const bool power_of_two = tile > 0 && (tile & (tile - 1)) == 0;
  if (!power_of_two || tile < std::max(s.R, s.S) || tile > conv::kFftMaxKernel + 1)
    fail<ValueError>("tile: FFT needs a power of two from ", std::max(s.R, s.S), " to ", conv::kFftMaxKernel + 1,
                     " (conv2d_weight_transform_tile), got ", tile);
}

// A weight transformed by conv2d_transform_weight for (algo, use), or nullptr for None.
template <class T>
const T* transformed_arg(const py::object& a, conv::Algo algo, const conv::Conv2dShape& s, conv::WeightUse use) {
  if (a.is_none()) return nullptr;
  const index_t n = conv::transformed_weight_size(algo, s, use);
  if (n == 0) fail<ValueError>("transformed: algo='", conv::algo_name(algo), "' has no transformed weights");
  auto t = contiguous_arg<const T, 1>(a.cast<py::array>(), "transformed", "(values,)");
  if (t.shape[0] != n) fail<ValueError>("transformed: expected ", n, " values, got ", t.shape[0]);
  return t.data;
}

void bind_conv2d(py::module_& m) {
  m.def("conv2d_output_shape", [](std::array<index_t, 4> input, std::array<index_t, 4> weight, Pair st,
                                  Pair pb, Pair pe, Pair dl, index_t g) {
    return conv::Conv2dShape(input, weight, conv_params(st, pb, pe, dl, g)).output_shape();
  }, py::arg("input_shape"), py::arg("weight_shape"), CONV_PARAMS_ARGS);

  m.def("conv2d_algorithms", &conv::algorithm_names);

  m.def("conv2d_unsupported_reason", [](const std::string& algo, std::array<index_t, 4> input,
                                        std::array<index_t, 4> weight, Pair st, Pair pb, Pair pe, Pair dl,
                                        index_t g) -> py::object {
    const char* why = conv::unsupported_reason(conv::parse_algo(algo),
                                               conv::Conv2dShape(input, weight, conv_params(st, pb, pe, dl, g)));
    return why ? py::str(why) : py::object(py::none());
  }, py::arg("algo"), py::arg("input_shape"), py::arg("weight_shape"), CONV_PARAMS_ARGS);

  // The algorithm whose kernel runs `algo`'s gradient ("input" or "weight") of this shape.
  m.def("conv2d_gradient_kernel", [](const std::string& algo, const std::string& direction,
                                     std::array<index_t, 4> input, std::array<index_t, 4> weight, Pair st, Pair pb,
                                     Pair pe, Pair dl, index_t g) {
    const conv::Conv2dShape s(input, weight, conv_params(st, pb, pe, dl, g));
    const conv::Algo a = conv::parse_algo(algo);
    if (direction == "input") return conv::algo_name(conv::input_gradient_kernel(a, s));
    if (direction == "weight") return conv::algo_name(conv::weight_gradient_kernel(a, s));
    fail<ValueError>("direction: expected 'input' or 'weight', got '", direction, "'");
  }, py::arg("algo"), py::arg("direction"), py::arg("input_shape"), py::arg("weight_shape"), CONV_PARAMS_ARGS);

  // The weight of shape (K, C/groups, R, S) transformed once for reuse: size 0 when `algo` has no
  // transform. Only K, C/groups, R, S and groups matter, so no input shape is asked for.
  // The tile size a call's weight transform is made at (FFT; 0 for Winograd, whose transform
  // depends on the weight alone): part of a cached transform's key (ops/conv_weight_cache.py).
  // None where the call's transform cannot be reused so (a strided Winograd's).
  m.def("conv2d_weight_transform_tile", [](const std::string& algo, std::array<index_t, 4> input,
                                           std::array<index_t, 4> weight, Pair st, Pair pb, Pair pe, Pair dl,
                                           index_t g, const std::string& use) -> py::object {
    const conv::Conv2dShape s(input, weight, conv_params(st, pb, pe, dl, g));
    const conv::Algo a = conv::parse_algo(algo);
    if (!conv::weight_transform_reusable(a, s)) return py::none();
    return py::int_(conv::weight_transform_tile(a, s, weight_use(use)));
  }, py::arg("algo"), py::arg("input_shape"), py::arg("weight_shape"), CONV_PARAMS_ARGS, py::arg("use"));

  m.def("conv2d_transformed_weight_size", [](const std::string& algo, std::array<index_t, 4> weight, index_t g,
                                             const std::string& use, index_t tile) {
    const conv::Conv2dShape s = weight_only_shape(weight, g);
    const conv::Algo a = conv::parse_algo(algo);
    check_transform_tile(a, s, tile);
    return conv::transformed_weight_size(a, s, weight_use(use), tile);
  }, py::arg("algo"), py::arg("weight_shape"), py::arg("groups"), py::arg("use"), py::arg("tile") = 0);

  m.def("conv2d_transform_weight", [](py::array w, py::array out, index_t g, const std::string& algo_name,
                                      const std::string& use_name, index_t tile) {
    const conv::Algo algo = conv::parse_algo(algo_name);
    const conv::WeightUse use = weight_use(use_name);
    dispatch_float(w, "weight", [&](auto tag) {
      using T = decltype(tag);
      const conv::Conv2dShape s = weight_only_shape(shape4(w, "weight", "(K, C/groups, R, S)"), g);
      conv::check_supported(algo, s);
      check_transform_tile(algo, s, tile);
      const index_t n = conv::transformed_weight_size(algo, s, use, tile);
      if (n == 0) fail<ValueError>("algo='", algo_name, "' has no transformed weights");
      const T* wp = nchw_arg<const T>(w, "weight", s.weight_shape());
      auto o = contiguous_arg<T, 1>(out, "out", "(values,)");
      if (o.shape[0] != n) fail<ValueError>("out: expected ", n, " values, got ", o.shape[0]);
      py::gil_scoped_release release;
      conv::transform_weight<T>(algo, s, use, wp, o.data, tile);
    });
  }, py::arg("weight"), py::arg("out"), py::arg("groups"), py::arg("algo"), py::arg("use"), py::arg("tile") = 0);

  // Whether two arrays hold the same bytes: how the transformed-weight cache (ops/conv_weight_cache.py)
  // checks that a weight is unchanged since it was transformed. The GIL is released.
  m.def("same_bytes", [](py::array a, py::array b) {
    if (!(a.flags() & py::array::c_style) || !(b.flags() & py::array::c_style))
      fail<ValueError>("same_bytes: arrays must be C-contiguous");
    if (a.nbytes() != b.nbytes()) return false;
    const void *pa = a.data(), *pb = b.data();
    const std::size_t n = a.nbytes();
    py::gil_scoped_release release;
    return std::memcmp(pa, pb, n) == 0;
  }, py::arg("a"), py::arg("b"));

  m.def("conv2d_forward", [](py::array x, py::array w, py::object bias, py::array y, Pair st, Pair pb,
                             Pair pe, Pair dl, index_t g, const std::string& algo_name, bool relu,
                             py::object transformed) {
    const conv::Algo algo = conv::parse_algo(algo_name);
    dispatch_float(x, "input", [&](auto tag) {
      using T = decltype(tag);
      const auto s = conv_shape(x, w, "input", "weight", st, pb, pe, dl, g);
      conv::check_supported(algo, s);
      const T* xp = nchw_arg<const T>(x, "input", s.input_shape());
      const T* wp = nchw_arg<const T>(w, "weight", s.weight_shape());
      const T* bp = vector_arg<const T>(bias, "bias", s.K);
      T* yp = nchw_arg<T>(y, "out", s.output_shape());
      const T* up = transformed_arg<T>(transformed, algo, s, conv::WeightUse::forward);
      py::gil_scoped_release release;
      conv::conv2d_forward<T>(algo, s, xp, wp, bp, relu, yp, up);
    });
  }, py::arg("input"), py::arg("weight"), py::arg("bias"), py::arg("out"), CONV_PARAMS_ARGS,
     py::arg("algo") = "im2col", py::arg("relu") = false, py::arg("transformed") = py::none());

  m.def("conv2d_backward_input", [](py::array grad_y, py::array w, py::array grad_x, Pair st, Pair pb,
                                    Pair pe, Pair dl, index_t g, const std::string& algo_name,
                                    py::object transformed) {
    const conv::Algo algo = conv::parse_algo(algo_name);
    dispatch_float(grad_y, "grad_output", [&](auto tag) {
      using T = decltype(tag);
      const auto s = conv_shape(grad_x, w, "grad_input", "weight", st, pb, pe, dl, g);
      conv::check_supported(algo, s);
      const T* dyp = nchw_arg<const T>(grad_y, "grad_output", s.output_shape());
      const T* wp = nchw_arg<const T>(w, "weight", s.weight_shape());
      T* dxp = nchw_arg<T>(grad_x, "grad_input", s.input_shape());
      const T* up = transformed_arg<T>(transformed, algo, s, conv::WeightUse::input_gradient);
      py::gil_scoped_release release;
      conv::conv2d_backward_input<T>(algo, s, dyp, wp, dxp, up);
    });
  }, py::arg("grad_output"), py::arg("weight"), py::arg("grad_input"), CONV_PARAMS_ARGS, py::arg("algo") = "im2col",
     py::arg("transformed") = py::none());

  m.def("conv2d_backward_weight", [](py::array x, py::array grad_y, py::array grad_w, py::object grad_b,
                                     Pair st, Pair pb, Pair pe, Pair dl, index_t g, const std::string& algo_name) {
    const conv::Algo algo = conv::parse_algo(algo_name);
    dispatch_float(x, "input", [&](auto tag) {
      using T = decltype(tag);
      const auto s = conv_shape(x, grad_w, "input", "grad_weight", st, pb, pe, dl, g);
      conv::check_supported(algo, s);
      const T* xp = nchw_arg<const T>(x, "input", s.input_shape());
      const T* dyp = nchw_arg<const T>(grad_y, "grad_output", s.output_shape());
      T* dwp = nchw_arg<T>(grad_w, "grad_weight", s.weight_shape());
      T* dbp = vector_arg<T>(grad_b, "grad_bias", s.K);
      py::gil_scoped_release release;
      conv::conv2d_backward_weight<T>(algo, s, xp, dyp, dwp, dbp);
    });
  }, py::arg("input"), py::arg("grad_output"), py::arg("grad_weight"), py::arg("grad_bias"), CONV_PARAMS_ARGS,
     py::arg("algo") = "im2col");
}

// The Winograd transform codelets, for tests: tiles (count, n, n) -> (count, n', n').
void bind_winograd(py::module_& m) {
  m.def("winograd_codelet", [](const std::string& which, int tile, py::array in) {
    const std::pair<const char*, conv::WinogradCodelet> kinds[] = {
        {"input", conv::WinogradCodelet::input}, {"filter", conv::WinogradCodelet::filter},
        {"output", conv::WinogradCodelet::output}};
    const auto kind = std::find_if(std::begin(kinds), std::end(kinds), [&](auto& k) { return which == k.first; });
    if (kind == std::end(kinds)) fail<ValueError>("which: expected 'input', 'filter' or 'output', got '", which, "'");
    if (tile != 2 && tile != 4) fail<ValueError>("tile: expected 2 or 4, got ", tile);
    const index_t alpha = tile + 2, n_in = kind->second == conv::WinogradCodelet::filter ? 3 : alpha;
    const index_t n_out = kind->second == conv::WinogradCodelet::output ? tile : alpha;
    return dispatch_float(in, "tiles", [&](auto tag) -> py::array {
      using T = decltype(tag);
      const auto t = contiguous_arg<const T, 3>(in, "tiles", "(count, n, n)");
      if (t.shape[1] != n_in || t.shape[2] != n_in)
        fail<ValueError>("tiles: expected shape (count, ", n_in, ", ", n_in, "), got ", shape_str(in));
      py::array_t<T> out(std::vector<py::ssize_t>{t.shape[0], n_out, n_out});
      T* o = out.mutable_data();
      (tile == 2 ? conv::winograd_codelet<2, T> : conv::winograd_codelet<4, T>)(kind->second, t.data, t.shape[0], o);
      return out;
    });
  }, py::arg("which"), py::arg("tile"), py::arg("tiles"));
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  py::register_exception<TypeError>(m, "TypeError", PyExc_TypeError);
  py::register_exception<ValueError>(m, "ValueError", PyExc_ValueError);
  bind_runtime(m);
  bind_probes(m);
  bind_output_cache(m);
  bind_gemm(m);
  bind_conv2d(m);
  bind_roi(m);
  bind_sampling(m);
  bind_winograd(m);
  bind_conv_transpose(m);
  bind_norm(m);
  bind_pool(m);
}
