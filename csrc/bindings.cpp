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
#include "gemm/gemm.h"

namespace py = pybind11;
using namespace fastconv;

namespace fastconv {
void bind_norm(py::module_& m);
void bind_pool(py::module_& m);
void bind_roi(py::module_& m);
void bind_sampling(py::module_& m);
void bind_conv_transpose(py::module_& m);
void bind_conv(py::module_& m);
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

}  // namespace

PYBIND11_MODULE(_C, m) {
  py::register_exception<TypeError>(m, "TypeError", PyExc_TypeError);
  py::register_exception<ValueError>(m, "ValueError", PyExc_ValueError);
  bind_runtime(m);
  bind_probes(m);
  bind_output_cache(m);
  bind_gemm(m);
  bind_conv(m);
  bind_roi(m);
  bind_sampling(m);
  bind_conv_transpose(m);
  bind_norm(m);
  bind_pool(m);
}
