// fastconv._C's runtime: threads, ISA, streamed stores, the machine probes of the benchmark, the
// output cache's arrays, and the whole-array copies and sums the autograd engine runs.
#include "bind/py_tensor.h"
#include "core/elementwise.h"
#include "core/isa.h"
#include "core/layout.h"
#include "core/output_cache.h"
#include "core/parallel.h"
#include "core/probes.h"
#include "core/stream_store.h"
#include "gemm/gemm.h"

namespace fastconv {

namespace {

void bind_threads_and_isa(py::module_& m) {
  m.def("num_threads", &num_threads);
  m.def("set_num_threads", &set_num_threads, py::arg("n"));
  m.def("threads_lost_to_fork", &threads_lost_to_fork);
  m.def("isa", [] { return std::string(isa_name(active_isa())); });
  m.def("set_isa", &set_active_isa, py::arg("name"));
  m.def("supported_isas", &supported_isa_names);
#ifdef _OPENMP
  m.attr("openmp") = _OPENMP;
#else
  m.attr("openmp") = py::none();
#endif
  m.attr("compiler") = __VERSION__;
  m.def("set_stream_stores", &set_stream_policy, py::arg("mode"));
  m.def("cache_bytes", [] { return std::make_pair(l2_cache_bytes(), last_level_cache_bytes()); },
        "(L2 per core, last-level cache instance) in bytes, 0 where the OS does not say");
}

void bind_probes(py::module_& m) {
  m.def("fma_peak_gflops", [](bool float64, index_t iterations) {
    return call_without_gil(gemm::fma_peak_gflops, float64, iterations);
  }, py::arg("float64") = false, py::arg("iterations") = 20000000);
  m.def("parallel_copy", [](py::array src, py::array dst) {
    call_without_gil(parallel_copy, src, dst);
  }, py::arg("src"), py::arg("dst"));
  m.def("copy_layout", [](py::array src, py::array dst) { call_without_gil(copy_layout, src, dst); },
        py::arg("src"), py::arg("dst"), "dst = src between NCHW and channels_last (N, C, H, W) arrays");
  m.def("pixel_shuffle", [](py::array src, py::array dst, index_t factor) {
    call_without_gil(pixel_shuffle, src, dst, factor);
  }, py::arg("src"), py::arg("dst"), py::arg("factor"),
        "dst (N, C, H*factor, W*factor) = torch's pixel_shuffle of src (N, C*factor^2, H, W)");
  m.def("pixel_unshuffle", [](py::array src, py::array dst, index_t factor) {
    call_without_gil(pixel_unshuffle, src, dst, factor);
  }, py::arg("src"), py::arg("dst"), py::arg("factor"),
        "dst (N, C*factor^2, H, W) = torch's pixel_unshuffle of src (N, C, H*factor, W*factor)");
  m.def("scratch_bytes", &scratch_bytes);
  m.def("set_workspace_limit", &set_workspace_limit, py::arg("nbytes"));
  m.def("workspace_limit", [] { return workspace_limit(); });
  m.def("release_scratch", [] { call_without_gil(release_scratch); });
}

// The name of the capsules that own output-cache blocks, by which is_output_block knows them.
constexpr const char* kOutputBlock = "fastconv.output_block";

// Uninitialised C-contiguous arrays for the ops' results: large ones from the output cache
// (core/output_cache.h), given back when numpy frees the array.
void bind_output_cache(py::module_& m) {
  m.def("empty", [](const std::vector<py::ssize_t>& shape, const py::dtype& dtype) {
    const std::size_t bytes = output_cache::array_bytes(shape, static_cast<std::size_t>(dtype.itemsize()));
    if (bytes < output_cache::kMinBytes) return py::array(dtype, shape);
    void* block = output_cache::take(bytes);
    py::capsule owner(block, kOutputBlock, [](void* b) { output_cache::give_back(b); });
    return py::array(dtype, shape, block, owner);
  }, py::arg("shape"), py::arg("dtype"));
  m.def("is_output_block", [](py::handle owner) { return PyCapsule_IsValid(owner.ptr(), kOutputBlock) != 0; },
        py::arg("owner"), "whether owner is the capsule of an output-cache block: the base of a large array from "
        "empty(), which owns its memory as a numpy array that owns its data does");
  m.def("set_output_cache_limit", &output_cache::set_limit, py::arg("bytes"));
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

void bind_elementwise(py::module_& m) {
  m.def("copy_view", [](py::array src, py::array dst) { call_without_gil(copy_view, src, dst); },
        py::arg("src"), py::arg("dst"), "dst[...] = src for float arrays of one shape, any strides, on the threads");
  m.def("fill", [](py::array dst, double value) { call_without_gil(fill, dst, value); }, py::arg("dst"),
        py::arg("value"), "dst[...] = value for a float array of any strides, on the threads");
  m.def("add_into", [](py::array dst, py::array src) { call_without_gil(add_into, dst, src); },
        py::arg("dst"), py::arg("src"), "dst += src for dense float arrays of one layout, on the threads");
}

}  // namespace

void bind_runtime(py::module_& m) {
  bind_threads_and_isa(m);
  bind_probes(m);
  bind_output_cache(m);
  bind_elementwise(m);
}

}  // namespace fastconv
