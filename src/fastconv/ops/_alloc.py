"""Result arrays of the ops. Large ones come from the compiled core's output cache
(csrc/core/output_cache.h): a block freed by numpy is handed out again for the next result of
its size, so a loop that asks for the same shapes every step stops paying page faults."""
import numpy as np

from fastconv import _C


def empty(shape, dtype=np.float64):
    """Like np.empty (C order), from the output cache when large."""
    shape = (int(shape),) if np.ndim(shape) == 0 else tuple(int(d) for d in shape)
    return _C.empty(shape, np.dtype(dtype))


def empty_like(a):
    return empty(a.shape, a.dtype)
