"""Threads, instruction set and build facts of the compiled core (fastconv._C)."""
import functools
import os

from fastconv import _C


def set_num_threads(n):
    """Threads used by every kernel (FASTCONV_NUM_THREADS sets it at import). A process forked
    from one whose threads had started runs on one thread: OpenMP cannot start them again there
    (ValueError for n > 1)."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"set_num_threads: n must be an int, got {type(n).__name__}")
    _C.set_num_threads(n)


def get_num_threads():
    return _C.num_threads()


def set_isa(name):
    """Force the micro-kernel instruction set: 'generic', 'avx2' or 'avx512' (if the CPU has it)."""
    _C.set_isa(name)


def get_isa():
    return _C.isa()


def supported_isas():
    return list(_C.supported_isas())


def set_output_cache_limit(nbytes):
    """Cap the idle memory kept for reuse by large results (fastconv.ops allocates arrays of
    256 KiB and more from a cache of freed ones; default 512 MiB, FASTCONV_OUTPUT_CACHE_MB at
    import). 0 turns the cache off."""
    if isinstance(nbytes, bool) or not isinstance(nbytes, int) or nbytes < 0:
        raise ValueError(f"set_output_cache_limit: nbytes must be an int >= 0, got {nbytes!r}")
    _C.set_output_cache_limit(nbytes)


def set_workspace_limit(nbytes):
    """Cap the scratch memory one kernel call may use (column matrices, packed panels, Winograd
    tiles, FFT spectra, over every thread; FASTCONV_WORKSPACE_MB at import). A call that would
    need more raises MemoryError when it asks for the scratch, before taking it; conv2d's
    algo="auto" passes over such algorithms and runs one that fits. 0 (the default): no limit."""
    if isinstance(nbytes, bool) or not isinstance(nbytes, int) or nbytes < 0:
        raise ValueError(f"set_workspace_limit: nbytes must be an int >= 0, got {nbytes!r}")
    _C.set_workspace_limit(nbytes)


def get_workspace_limit():
    """The scratch limit of one kernel call in bytes (0: none)."""
    return _C.workspace_limit()


def release_output_cache():
    """Give every idle cached block back to the system (arrays in use keep theirs)."""
    _C.release_output_cache()


def output_cache_stats():
    """dict: limit, idle_bytes, idle_blocks, live_blocks, hits, misses."""
    return dict(_C.output_cache_stats())


@functools.cache  # the auto cache's key asks on every call that has no choice yet
def cpu_model():
    """The processor's model name ("AMD EPYC 7B13"); platform.processor() says only "x86_64" on Linux."""
    import platform
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def show_config():
    """Print the version, instruction set, threads, OpenMP and GPU status."""
    import fastconv

    from fastconv.backend import cuda_status, kernel_devices

    why_not_cuda = kernel_devices()[1]
    cuda_line = f"available ({cuda_status()[1]})" if why_not_cuda is None else f"unavailable: {why_not_cuda}"
    openmp = f"yes ({_C.openmp})" if _C.openmp is not None else "no"
    lines = [
        f"fastconv {fastconv.__version__}",
        f"  isa:       {get_isa()} (supported: {', '.join(supported_isas())})",
        f"  threads:   {get_num_threads()}"
        + (" (forked from a process whose threads had started)" if _C.threads_lost_to_fork() else ""),
        f"  caches:    L2 {_C.cache_bytes()[0] >> 10} KiB, last level {_C.cache_bytes()[1] >> 20} MiB",
        f"  out cache: {output_cache_stats()['limit'] >> 20} MiB idle at most",
        f"  openmp:    {openmp}",
        f"  compiler:  {_C.compiler}",
        f"  cuda:      {cuda_line}",
    ]
    print("\n".join(lines))


def _apply_environment():
    isa = os.environ.get("FASTCONV_ISA")
    if isa:
        try:
            set_isa(isa)
        except ValueError as exc:
            raise ImportError(f"FASTCONV_ISA={isa!r}: {exc}") from None
    threads = os.environ.get("FASTCONV_NUM_THREADS")
    if threads:
        if not threads.isdigit() or int(threads) < 1:
            raise ImportError(f"FASTCONV_NUM_THREADS must be a positive integer, got {threads!r}")
        set_num_threads(int(threads))
    cache_mb = os.environ.get("FASTCONV_OUTPUT_CACHE_MB")
    if cache_mb:
        if not cache_mb.isdigit():
            raise ImportError(f"FASTCONV_OUTPUT_CACHE_MB must be an integer >= 0, got {cache_mb!r}")
        set_output_cache_limit(int(cache_mb) << 20)
    workspace_mb = os.environ.get("FASTCONV_WORKSPACE_MB")
    if workspace_mb:
        if not workspace_mb.isdigit():
            raise ImportError(f"FASTCONV_WORKSPACE_MB must be an integer >= 0, got {workspace_mb!r}")
        set_workspace_limit(int(workspace_mb) << 20)


_apply_environment()
