"""A family's .cu compiled for the host, so that the Python wrappers (fastconv/cuda/<family>.py)
run end to end on the CPU: their checks, their argument lists against the kernels' parameter
lists, and the kernels' grid-stride loops.

The .cu is included into a C++ unit after a few definitions that make CUDA's kernel syntax host
C++: __global__ is dropped, the grid is one block of one thread (so each kernel's grid-stride
loop visits every element, in index order), and atomicAdd is a plain add. Then loader.function
is replaced by the compiled library: a kernel is called as CuPy calls it, (grid, block, args),
with numpy arrays passed by pointer and numpy scalars by value."""
import ctypes

import numpy as np

from fastconv.cuda import loader
from tests.cuda import hostgrid

SHIM = """
#define __global__
#define __device__
#define __host__
struct HostDim3 { unsigned x, y, z; };
static const HostDim3 blockIdx{0, 0, 0}, threadIdx{0, 0, 0}, blockDim{1, 1, 1}, gridDim{1, 1, 1};
template <class T>
T atomicAdd(T* address, T value) {
  const T old = *address;
  *address = old + value;
  return old;
}
"""

C_TYPES = {np.dtype(np.int64): ctypes.c_int64, np.dtype(np.int32): ctypes.c_int32,
           np.dtype(np.float64): ctypes.c_double,
           np.dtype(np.uint64): lambda pointer: ctypes.c_void_p(int(pointer))}  # a (null) pointer

# A block's shared memory and barrier, for kernels that reduce in a block (one thread here).
SHARED_MEMORY_SHIM = """
#define __shared__ static
inline void __syncthreads() {}
"""


class HostKernel:
    """A kernel of the host-compiled .cu, called the way CuPy calls a RawKernel."""

    def __init__(self, function):
        self.function = function

    def __call__(self, grid, block, args, shared_mem=0):
        self.function(*(hostgrid.ptr(a) if isinstance(a, np.ndarray) else C_TYPES[a.dtype](a) for a in args))


def install(monkeypatch, family, prelude=""):
    """Routes loader.function(family, name) to the host build of csrc/<family>/cuda/<family>.cu
    (`prelude`: more definitions before it, e.g. SHARED_MEMORY_SHIM)."""
    library = hostgrid.build(SHIM + prelude + f'#include "{family}/cuda/{family}.cu"\n')
    original = loader.function

    def function(requested_family, name):
        if requested_family != family:
            return original(requested_family, name)
        return HostKernel(getattr(library, name))

    monkeypatch.setattr(loader, "function", function)
    return library
