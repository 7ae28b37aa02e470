"""fastconv on CUDA: kernels in csrc/<family>/cuda/*.cu, compiled at first use through CuPy
(loader.py) and served to the ops by fastconv.backend for CuPy arrays (kernels.py).

Install with `pip install fastconv[cuda]` (CuPy for CUDA 13); no CUDA toolkit is needed."""
from fastconv import backend


def is_available():
    """Whether fastconv can compute on CUDA arrays here: CuPy, a driver, a GPU, and fastconv's CUDA
    kernels compiling on it. unavailable_reason() says why not."""
    return unavailable_reason() is None


def unavailable_reason():
    """None when CUDA is available, else why not in plain words (no CuPy, no driver, no GPU, or
    the kernels do not compile or load)."""
    return backend.kernel_devices()[1]
