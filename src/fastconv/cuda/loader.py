"""Compiles fastconv's CUDA kernels at first use, through CuPy's NVRTC path, so that installing
fastconv needs no CUDA toolkit: the .cu sources ship inside the package.

Each family keeps its kernels in `csrc/<family>/cuda/<family>.cu`, which includes only
`csrc/common` headers (plain C++ with FASTCONV_HD functions) and exposes `extern "C"` kernels,
one per dtype (e.g. `roi_align_forward_f32`), so that a kernel is looked up by a plain name.
CuPy caches every compiled module on disk (~/.cupy/kernel_cache, or CUPY_CACHE_DIR), keyed by
source and options, so later processes load it without compiling.
"""
import functools
import pathlib

# The options every .cu is compiled with, at run time (NVRTC) and in the tests (nvcc and NVRTC):
# one list, so that a source that compiles in CI compiles the same way on a user's GPU.
NVRTC_OPTIONS = ("--std=c++17", "-DFASTCONV_RUNTIME_COMPILED=1")
THREADS_PER_BLOCK = 256
MAX_BLOCKS = 65535 * 32


class KernelError(RuntimeError):
    """A CUDA kernel of fastconv failed to compile, to load or to launch; the message names it."""


def source_root():
    """The csrc/ folder the kernels are read from: the copy shipped inside an installed package
    (fastconv/csrc, see setup.py), else the source checkout's csrc/ beside src/."""
    package = pathlib.Path(__file__).resolve().parents[1]
    for root in (package / "csrc", package.parents[1] / "csrc"):
        if (root / "common").is_dir():
            return root
    raise FileNotFoundError(f"fastconv's CUDA sources are missing: neither {package / 'csrc'} nor "
                            f"{package.parents[1] / 'csrc'} holds common/ (a broken installation)")


def source_path(family):
    return source_root() / family / "cuda" / f"{family}.cu"


def compile_options():
    return NVRTC_OPTIONS + (f"-I{source_root()}",)


@functools.lru_cache(maxsize=None)
def module(family):
    """The module of one family (compiled at its first kernel's lookup, once per process; CuPy
    caches it on disk)."""
    import cupy
    return cupy.RawModule(code=source_path(family).read_text(), options=compile_options())


@functools.lru_cache(maxsize=None)
def function(family, name):
    """The kernel `name` of `family`'s .cu, ready to launch; KernelError naming it when the source
    does not compile or has no such kernel."""
    try:
        return module(family).get_function(name)
    except Exception as exc:  # CuPy's CompileException, or CUDADriverError for a missing name
        raise KernelError(f"CUDA kernel {name} ({source_path(family)}): {type(exc).__name__}: {exc}") from exc


def blocks_for(count, threads=THREADS_PER_BLOCK):
    """A 1-D grid that gives each of `count` elements one thread (a kernel loops when the grid is
    capped: `for (i = blockIdx.x * blockDim.x + threadIdx.x; i < count; i += gridDim.x * blockDim.x)`)."""
    return max(1, min((int(count) + threads - 1) // threads, MAX_BLOCKS))


def launch(kernel, count, args, threads=THREADS_PER_BLOCK, shared_bytes=0):
    """Runs `kernel` with one thread per element of `count` (grid-stride loop inside the kernel)."""
    if count == 0:
        return
    _run(kernel, blocks_for(count, threads), threads, args, shared_bytes)


def launch_blocks(kernel, count, args, threads=THREADS_PER_BLOCK):
    """Runs `kernel` with one block per item of `count` (a channel whose values the block
    reduces; the kernel loops over items when the grid is capped)."""
    if count == 0:
        return
    _run(kernel, min(int(count), MAX_BLOCKS), threads, args, 0)


def _run(kernel, blocks, threads, args, shared_bytes):
    try:
        kernel((blocks,), (threads,), args, shared_mem=shared_bytes)
    except MemoryError:
        raise
    except Exception as exc:  # a driver error at launch; errors inside a kernel surface at the next sync
        name = getattr(kernel, "name", repr(kernel))
        raise KernelError(f"CUDA kernel {name}: launch of {blocks} blocks x {threads} threads failed: "
                          f"{type(exc).__name__}: {exc}") from exc
