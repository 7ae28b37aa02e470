"""What the GPU tests of the roi, sampling and conv-column kernels share: CuPy, skipped with
the reason when there is no usable GPU here."""
import pytest

from fastconv import backend


def cupy_or_skip():
    """The cupy module, or a skip saying why CUDA arrays cannot be made here."""
    available, reason = backend.cuda_status()
    if not available:
        pytest.skip(f"needs a GPU: {reason}")
    import cupy
    return cupy
