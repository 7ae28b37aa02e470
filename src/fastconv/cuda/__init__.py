"""fastconv on CUDA: kernels in csrc/<family>/cuda/*.cu, compiled at first use through CuPy
(loader.py) and served to the ops by fastconv.backend for CuPy arrays."""
from fastconv import backend


def is_available():
    """Whether CUDA arrays can be made and computed on here (CuPy, a driver and a GPU)."""
    return backend.cuda_status()[0]
