"""A family's .cu compiled for the host with real blocks of threads, for kernels whose threads
cooperate through shared memory and __syncthreads (gemm.cu's tiled GEMM), which
host_kernels.py's one-thread grid cannot run.

Each block of a launch runs as blockDim host threads (std::thread) that share the kernel's
__shared__ arrays (function statics: the blocks run one after another) and meet at a barrier
for __syncthreads; threadIdx and blockIdx are per thread. loader.function is routed to the
host build, and a kernel is called the way CuPy calls it, (grid, block, args), so the
wrappers run end to end: their argument lists, their grids, the kernels' tile loops."""
import ctypes

import numpy as np

from fastconv.cuda import loader
from tests.cuda import hostgrid

SHIM = r"""
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>
#define __global__
#define __device__
#define __host__
#define __shared__ static
#define __launch_bounds__(...)
struct HostDim3 { unsigned x, y, z; };
static thread_local HostDim3 threadIdx, blockIdx;
static HostDim3 blockDim, gridDim;

// A reusable barrier: the last of `count` threads to arrive starts the next generation.
class HostBarrier {
 public:
  explicit HostBarrier(unsigned count) : count_(count) {}
  void wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    const unsigned generation = generation_;
    if (++arrived_ == count_) {
      arrived_ = 0;
      ++generation_;
      all_arrived_.notify_all();
      return;
    }
    all_arrived_.wait(lock, [&] { return generation != generation_; });
  }
 private:
  std::mutex mutex_;
  std::condition_variable all_arrived_;
  unsigned count_, arrived_ = 0, generation_ = 0;
};
static HostBarrier* block_barrier = nullptr;
inline void __syncthreads() { block_barrier->wait(); }
"""

LAUNCHER = r"""
// kernel(*args[0], *args[1], ...) as cudaLaunchKernel reads its argument list.
template <class... A, std::size_t... I>
void host_call(void (*kernel)(A...), void** args, std::index_sequence<I...>) {
  kernel(*static_cast<std::remove_cv_t<std::remove_reference_t<A>>*>(args[I])...);
}

template <class... A>
void host_launch(void (*kernel)(A...), const unsigned* dims, void** args) {
  gridDim = {dims[0], dims[1], dims[2]};
  blockDim = {dims[3], dims[4], dims[5]};
  const unsigned threads = blockDim.x * blockDim.y * blockDim.z;
  HostBarrier barrier(threads);
  block_barrier = &barrier;
  for (unsigned bz = 0; bz < gridDim.z; ++bz)
    for (unsigned by = 0; by < gridDim.y; ++by)
      for (unsigned bx = 0; bx < gridDim.x; ++bx) {
        std::vector<std::thread> block;
        for (unsigned t = 0; t < threads; ++t)
          block.emplace_back([=] {
            blockIdx = {bx, by, bz};
            threadIdx = {t % blockDim.x, t / blockDim.x % blockDim.y, t / (blockDim.x * blockDim.y)};
            host_call(kernel, args, std::index_sequence_for<A...>{});
          });
        for (std::thread& thread : block) thread.join();
      }
}
"""

# How each argument type of a kernel launch is held for its address to be passed.
C_TYPES = {np.dtype(np.int64): ctypes.c_int64, np.dtype(np.int32): ctypes.c_int32,
           np.dtype(np.float32): ctypes.c_float, np.dtype(np.float64): ctypes.c_double,
           np.dtype(np.uint64): lambda pointer: ctypes.c_void_p(int(pointer))}  # a (null) pointer


def _held(argument):
    if isinstance(argument, np.ndarray):
        return ctypes.c_void_p(argument.ctypes.data)  # the first element, for views of any strides
    return C_TYPES[argument.dtype](argument)


def _dims(value):
    value = tuple(value) if isinstance(value, tuple) else (value,)
    return value + (1,) * (3 - len(value))


class BlockKernel:
    """A kernel of the host build, called as CuPy calls a RawKernel; `launches` counts the calls."""

    def __init__(self, launcher):
        self.launcher = launcher
        self.launches = []

    def __call__(self, grid, block, args, shared_mem=0):
        dims = (ctypes.c_uint * 6)(*_dims(grid), *_dims(block))
        held = [_held(a) for a in args]
        pointers = (ctypes.c_void_p * len(held))(*[ctypes.cast(ctypes.pointer(h), ctypes.c_void_p) for h in held])
        self.launches.append((_dims(grid), _dims(block)))
        self.launcher(dims, pointers)


def install(monkeypatch, family, kernel_names, prelude=""):
    """Routes loader.function(family, name) to the host build of csrc/<family>/cuda/<family>.cu
    (`prelude`: definitions before it) for each of `kernel_names`; returns {name: BlockKernel}."""
    exports = "".join(f'extern "C" void launch_{name}(const unsigned* dims, void** args) '
                      f'{{ host_launch({name}, dims, args); }}\n' for name in kernel_names)
    library = hostgrid.build(SHIM + prelude + f'#include "{family}/cuda/{family}.cu"\n' + LAUNCHER + exports)
    kernels = {name: BlockKernel(getattr(library, f"launch_{name}")) for name in kernel_names}
    original = loader.function

    def function(requested_family, name):
        if requested_family == family and name in kernels:
            return kernels[name]
        return original(requested_family, name)

    monkeypatch.setattr(loader, "function", function)
    return kernels
