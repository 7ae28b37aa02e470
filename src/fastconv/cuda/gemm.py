"""The matrix product on CUDA, by one of two algorithms:

  "cublas"  cupy.matmul, i.e. cuBLAS (the default);
  "tiled"   fastconv's own SIMT GEMM (csrc/gemm/cuda/gemm.cu): 128 x 128 tiles of C per block of
            256 threads, 8 x 8 per thread, for float32; 64 x 64 tiles, 4 x 4 per thread, for
            float64; any M, N, K, any strides (a transposed view costs no copy).

gemm(a, b, c, alpha, beta) is fastconv._C's gemm, c = alpha * a @ b + beta * c. matmul(a, b) is
the batched product with numpy's broadcasting (at most two batch axes) that conv2d on CUDA
multiplies with. Both run the algorithm set by set_algorithm() (initially the environment
variable FASTCONV_CUDA_GEMM, else "cublas"), or the one given as `algo`.
"""
import os

import numpy as np

from fastconv import backend
from fastconv.cuda import _kernel_args as args
from fastconv.cuda import loader
from fastconv.ops._checks import float_array

ALGORITHMS = ("cublas", "tiled")
# The block of gemm.cu's kernels (its DefaultTile<T>::THREADS) and each dtype's tile of C.
THREADS = 256
TILES = {np.dtype(np.float32): (128, 128), np.dtype(np.float64): (64, 64)}


def _checked_algorithm(name, argument):
    if name not in ALGORITHMS:
        raise ValueError(f"{argument}: expected one of {ALGORITHMS}, got {name!r}")
    return name


_algorithm = _checked_algorithm(os.environ.get("FASTCONV_CUDA_GEMM", "cublas"), "FASTCONV_CUDA_GEMM")


def set_algorithm(name):
    """The GEMM every later CUDA matrix product runs (conv2d's included): 'cublas' or 'tiled'."""
    global _algorithm
    _algorithm = _checked_algorithm(name, "algorithm")


def get_algorithm():
    return _algorithm


def _algo(algo):
    return _algorithm if algo is None else _checked_algorithm(algo, "algo")


def gemm(a, b, c, alpha=1.0, beta=0.0, algo=None):
    a, b = float_array(a, "a"), float_array(b, "b")
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"gemm: a {tuple(a.shape)} and b {tuple(b.shape)} are not (M, K) and (K, N)")
    if b.dtype != a.dtype:
        raise TypeError(f"b: dtype {b.dtype} does not match {a.dtype}")
    args.output(c, "c", (a.shape[0], b.shape[1]), a.dtype)
    if _algo(algo) == "tiled":
        tiled_gemm(a, b, c, alpha, beta)
        return
    xp = backend.array_module(a)
    if beta == 0.0 and alpha == 1.0:
        xp.matmul(a, b, out=c)
        return
    product = xp.matmul(a, b)
    c *= beta
    c += alpha * product


def matmul(a, b, algo=None):
    """a @ b as numpy.matmul for arrays of 2 to 4 dimensions (batch axes broadcast), on a's
    device, in a new C-contiguous array."""
    a, b = float_array(a, "a"), float_array(b, "b")
    if _algo(algo) == "cublas":
        return backend.array_module(a).matmul(a, b)
    if b.dtype != a.dtype:
        raise TypeError(f"b: dtype {b.dtype} does not match {a.dtype}")
    if not 2 <= a.ndim <= 4 or not 2 <= b.ndim <= 4 or a.shape[-1] != b.shape[-2]:
        raise ValueError(f"matmul: a {tuple(a.shape)} and b {tuple(b.shape)} are not (..., M, K) and (..., K, N) "
                         f"with at most two batch axes")
    try:
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(f"matmul: the batch axes of a {tuple(a.shape)} and b {tuple(b.shape)} "
                         f"do not broadcast") from None
    c = backend.empty((*batch, a.shape[-2], b.shape[-1]), a.dtype, backend.device_of(a))
    tiled_gemm(a, b, c, 1.0, 0.0)
    return c


def _batch_strides(array):
    """(outer, inner, row, column) strides in elements of `array` seen as (outer, inner, rows,
    cols) of the broadcast batch (batch axes aligned from the right): 0 along a batch axis it
    lacks or has once."""
    steps = [s // array.itemsize for s in array.strides]
    own = [0 if size == 1 else step for step, size in zip(steps[:-2], array.shape[:-2])]
    return (*[0] * (2 - len(own)), *own, steps[-2], steps[-1])


def tiled_gemm(a, b, c, alpha, beta):
    """c = alpha * a @ b + beta * c by gemm.cu's kernel, c of the broadcast batch shape
    (written in place, any strides); every size checked by the callers."""
    batch = tuple(c.shape[:-2])
    outers, inners = (1, 1, *batch)[-2:]
    m, k = a.shape[-2:]
    n = b.shape[-1]
    tile_m, tile_n = TILES[a.dtype]
    tiles = outers * inners * -(-m // tile_m) * -(-n // tile_n)
    if tiles == 0:
        return
    scalar = a.dtype.type
    loader.launch_blocks(args.kernel("gemm", "gemm", a.dtype), tiles,
                         (*args.int64s(outers, inners, m, n, k), a, *args.int64s(*_batch_strides(a)),
                          b, *args.int64s(*_batch_strides(b)), c, *args.int64s(*_batch_strides(c)),
                          scalar(alpha), scalar(beta)), threads=THREADS)
