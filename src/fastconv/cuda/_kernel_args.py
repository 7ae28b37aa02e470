"""What the CUDA wrappers of the roi, sampling and conv-column kernels share: the kernel of an
array's dtype, inputs made C-contiguous, outputs checked (the kernels write them in place), and
sizes passed as the int64 arguments the kernels declare."""
import numpy as np

from fastconv.cuda import loader
from fastconv.ops._checks import contiguous, float_array

SUFFIXES = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}


def kernel(family, op, dtype):
    """The kernel `op` of `family`'s .cu for `dtype` (e.g. roi_align_forward_f32)."""
    return loader.function(family, f"{op}_{SUFFIXES[np.dtype(dtype)]}")


def float_input(array, name, dtype=None):
    """`array` as a C-contiguous float array, of `dtype` when one is given."""
    array = float_array(array, name)
    if dtype is not None and array.dtype != dtype:
        raise TypeError(f"{name}: dtype {array.dtype} does not match {np.dtype(dtype)}")
    return contiguous(array)


def output(array, name, shape, dtype):
    """`array`, which the kernel will overwrite: it must have `shape` and `dtype` and be C-contiguous."""
    if tuple(array.shape) != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {tuple(array.shape)}")
    if array.dtype != dtype:
        raise TypeError(f"{name}: dtype {array.dtype} does not match {np.dtype(dtype)}")
    if not array.flags.c_contiguous:
        raise ValueError(f"{name}: expected a C-contiguous array (the kernel writes it in place)")
    return array


def int64s(*values):
    """Python sizes as the int64 kernel arguments (index_t) the .cu kernels take."""
    return tuple(np.int64(v) for v in values)


def launch(family, op, count, sizes, arrays):
    """Runs `op` of `family` for the dtype of arrays[0], one thread per element of `count`, with
    arguments (count, *sizes as int64, *arrays) as the kernels declare them."""
    loader.launch(kernel(family, op, arrays[0].dtype), count, (*int64s(count, *sizes), *arrays))


# A null pointer, for an optional array the kernel skips (a residual, an affine weight).
NULL = np.uint64(0)


def optional_input(array, name, dtype):
    """float_input of `dtype`, or NULL for None."""
    return NULL if array is None else float_input(array, name, dtype)


def optional_output(array, name, shape, dtype):
    return NULL if array is None else output(array, name, shape, dtype)


def vector_input(array, name, length, dtype):
    """An optional per-channel input: None, or `length` values of `dtype` (NULL for None)."""
    if array is None:
        return NULL
    array = float_input(array, name, dtype)
    if tuple(array.shape) != (length,):
        raise ValueError(f"{name}: expected shape ({length},), got {tuple(array.shape)}")
    return array


def flag(value):
    """A bool as the int the kernels take for it."""
    return np.int32(bool(value))


def nchw_shape(array, name):
    """The 4 sizes of an (N, C, H, W) array."""
    if array.ndim != 4:
        raise ValueError(f"{name}: expected a 4-d array (N, C, H, W), got shape {tuple(array.shape)}")
    return tuple(int(d) for d in array.shape)
