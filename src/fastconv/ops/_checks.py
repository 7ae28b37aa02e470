"""Argument checks shared by the ops: each raises naming the argument and what was expected."""
import numpy as np

FLOAT_DTYPES = (np.float32, np.float64)


def float_array(x, name):
    """x as a float32/float64 ndarray; integer, bool or complex arrays are refused, not cast."""
    if not isinstance(x, np.ndarray):
        x = np.asarray(x)
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name}: expected a float32 or float64 array, got dtype {x.dtype}")
    return x


def same_dtype(arrays):
    """arrays: dict name -> array (None entries skipped); all must share one dtype."""
    named = [(n, a) for n, a in arrays.items() if a is not None]
    first_name, first = named[0]
    for name, a in named[1:]:
        if a.dtype != first.dtype:
            raise TypeError(f"{name}: dtype {a.dtype} does not match {first_name}'s {first.dtype}")
    return first.dtype


def check_ndim(x, ndim, name, layout):
    if x.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-d array {layout}, got shape {x.shape}")
