"""The matrix product on CUDA, by one of two algorithms:

  "cublas"  cupy.matmul, i.e. cuBLAS (the default);
  "tiled"   fastconv's own GEMM (csrc/gemm/cuda/gemm.cu): for float32 and float64 a SIMT GEMM,
            128 x 128 tiles of C per block of 256 threads, 8 x 8 per thread, for float32;
            64 x 64 tiles, 4 x 4 per thread, for float64; on tensor cores (sm_80+, 128 x 128
            tiles, 8 warps of 64 x 32) for float32 when TF32 is allowed (mma.sync m16n8k8 TF32)
            and for float16 / bfloat16 (mma.sync m16n8k16); any M, N, K, any strides (a
            transposed view costs no copy).

gemm(a, b, c, alpha, beta) is fastconv._C's gemm, c = alpha * a @ b + beta * c. matmul(a, b) is
the batched product with numpy's broadcasting (at most two batch axes) that conv2d on CUDA
multiplies with. Both run the algorithm set by set_algorithm() (initially the environment
variable FASTCONV_CUDA_GEMM, else "cublas"), or the one given as `algo`.

Precision, as torch.backends.cuda.matmul.allow_tf32 sets it for PyTorch:
  float32, TF32 not allowed (the default)  exact float32 products and sums.
  float32, TF32 allowed (set_allow_tf32(True), `with allow_tf32():`, or the environment variable
           FASTCONV_CUDA_ALLOW_TF32=1)  operands rounded to TensorFloat-32 (10 mantissa bits,
           round to nearest, ties away), exact products, float32 sums: |error| <= (2^-10 +
           K * 2^-23) * (|A| |B|) element-wise, about 1e-3 relative where float32 is ~1e-7. The
           tiled GEMM runs its tensor-core kernel; cuBLAS runs with CuPy's compute type TF32
           (CUBLAS_COMPUTE_32F_FAST_TF32).
  float16 / bfloat16  always on tensor cores (allowing TF32 changes nothing), exact products,
           float32 sums, the result rounded to the input's type once: |error| <= K * 2^-23 *
           (|A| |B|) + half a unit of the result's last place (2^-11 relative for float16, 2^-8
           for bfloat16). cuBLAS multiplies float16 with
           float32 compute (CuPy's compute type FP32); bfloat16 always runs the tiled kernel
           (CuPy's matmul is not known to take bfloat16).
"""
import contextlib
import os

import numpy as np

from fastconv import backend
from fastconv.backend import DeviceError
from fastconv.cuda import _kernel_args as args
from fastconv.cuda import loader

try:
    from ml_dtypes import bfloat16
except ImportError:  # no bfloat16 arrays without ml_dtypes (CuPy uses its dtype too)
    bfloat16 = None

ALGORITHMS = ("cublas", "tiled")
FLOAT16 = np.dtype(np.float16)
BFLOAT16 = None if bfloat16 is None else np.dtype(bfloat16)
# The dtypes the GEMMs multiply: float32 / float64 in their own precision, the 16-bit ones
# widened to float32 on tensor cores.
HALF_DTYPES = tuple(d for d in (FLOAT16, BFLOAT16) if d is not None)
DTYPES = (np.dtype(np.float32), np.dtype(np.float64), *HALF_DTYPES)
# The block of gemm.cu's kernels (its DefaultTile<T>::THREADS, MmaTile::THREADS) and the tile of
# C of each kernel.
THREADS = 256
TILES = {"f32": (128, 128), "f64": (64, 64), "tf32": (128, 128), "f16": (128, 128), "bf16": (128, 128)}
# Compute capability 8.0: mma.sync with TF32 operands, and the cvt.rna.tf32 rounding.
TENSOR_CORE_CAPABILITY = 80


def _environment_flag(name):
    value = os.environ.get(name, "0")
    if value not in ("0", "1"):
        raise ValueError(f"{name}: expected 0 or 1, got {value!r}")
    return value == "1"


_allow_tf32 = _environment_flag("FASTCONV_CUDA_ALLOW_TF32")


def set_allow_tf32(enabled):
    """Whether later float32 CUDA matrix products (conv2d's included) may round their operands to
    TF32 and run on tensor cores (torch.backends.cuda.matmul.allow_tf32's meaning): False, the
    default, keeps them exact float32."""
    global _allow_tf32
    if not isinstance(enabled, (bool, np.bool_)):
        raise TypeError(f"enabled: expected a bool, got {type(enabled).__name__}")
    _allow_tf32 = bool(enabled)


def get_allow_tf32():
    return _allow_tf32


@contextlib.contextmanager
def allow_tf32(enabled=True):
    """`with allow_tf32():` runs the float32 products inside on TF32 tensor cores, and restores
    the previous setting on leaving."""
    previous = _allow_tf32
    set_allow_tf32(enabled)
    try:
        yield
    finally:
        set_allow_tf32(previous)


def kernel_suffix(dtype):
    """Which of gemm.cu's kernels multiplies `dtype` now: f64, f32 or (TF32 allowed) tf32, f16, bf16."""
    dtype = np.dtype(dtype)
    if dtype == np.float32:
        return "tf32" if _allow_tf32 else "f32"
    return {np.dtype(np.float64): "f64", FLOAT16: "f16", BFLOAT16: "bf16"}[dtype]


def uses_tensor_cores(dtype):
    return kernel_suffix(dtype) in ("tf32", "f16", "bf16")


def check_dtype(array, name):
    """`array` (a host or CuPy array) if its dtype is one the GEMMs multiply, else TypeError."""
    if not isinstance(array, np.ndarray) and not backend.is_cuda_array(array):
        array = np.asarray(array)
    if array.dtype not in DTYPES:
        raise TypeError(f"{name}: expected a float32, float64, float16 or bfloat16 array, got dtype {array.dtype}")
    return array


def require_tensor_cores(array):
    """DeviceError before a launch when the tensor-core kernels cannot run on `array`'s GPU."""
    if not backend.is_cuda_array(array):
        return  # a host array: the tests' host build of the kernels
    capability = int(array.device.compute_capability)
    if capability < TENSOR_CORE_CAPABILITY:
        raise DeviceError(f"{array.dtype} products with TF32 allowed, and float16 / bfloat16 products, run on tensor "
                          f"cores of compute capability 8.0 or newer; this GPU is {capability // 10}."
                          f"{capability % 10} (set_allow_tf32(False) keeps float32 on the SIMT kernels)")


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


def _same_dtype(a, b):
    if b.dtype != a.dtype:
        raise TypeError(f"b: dtype {b.dtype} does not match {a.dtype}")


def _runs_tiled(algo, dtype):
    """Whether the product runs gemm.cu's kernel: "tiled" selected, or bfloat16."""
    return _algo(algo) == "tiled" or dtype == BFLOAT16


def _cupy_linalg():
    """CuPy's module that holds cuBLAS's compute type per dtype (set_compute_type)."""
    from cupy._core import _routines_linalg
    return _routines_linalg


@contextlib.contextmanager
def _cublas_precision(xp, dtype):
    """CuPy's compute type for `dtype` during a cuBLAS product: TF32 for float32 when allowed,
    float32 accumulation for float16; left as it is otherwise (and on the host)."""
    wanted = {np.dtype(np.float32): "COMPUTE_TYPE_TF32" if _allow_tf32 else None,
              FLOAT16: "COMPUTE_TYPE_FP32"}.get(np.dtype(dtype))
    if xp is np or wanted is None:
        yield
        return
    linalg = _cupy_linalg()
    previous = linalg.get_compute_type(dtype)
    linalg.set_compute_type(dtype, getattr(linalg, wanted))
    try:
        yield
    finally:
        linalg.set_compute_type(dtype, previous)


def gemm(a, b, c, alpha=1.0, beta=0.0, algo=None):
    a, b = check_dtype(a, "a"), check_dtype(b, "b")
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"gemm: a {tuple(a.shape)} and b {tuple(b.shape)} are not (M, K) and (K, N)")
    _same_dtype(a, b)
    args.output(c, "c", (a.shape[0], b.shape[1]), a.dtype)
    if _runs_tiled(algo, a.dtype):
        tiled_gemm(a, b, c, alpha, beta)
        return
    xp = backend.array_module(a)
    with _cublas_precision(xp, a.dtype):
        if beta == 0.0 and alpha == 1.0:
            xp.matmul(a, b, out=c)
            return
        product = xp.matmul(a, b)
    c *= beta
    c += alpha * product


def matmul(a, b, algo=None):
    """a @ b as numpy.matmul for arrays of 2 to 4 dimensions (batch axes broadcast), on a's
    device, in a new C-contiguous array."""
    a, b = check_dtype(a, "a"), check_dtype(b, "b")
    _same_dtype(a, b)
    if not _runs_tiled(algo, a.dtype):
        xp = backend.array_module(a)
        with _cublas_precision(xp, a.dtype):
            return xp.matmul(a, b)
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
    """c = alpha * a @ b + beta * c by gemm.cu's kernel for a's dtype (and the TF32 setting), c of
    the broadcast batch shape (written in place, any strides); every size checked by the callers."""
    suffix = kernel_suffix(a.dtype)
    if uses_tensor_cores(a.dtype):
        require_tensor_cores(a)
    batch = tuple(c.shape[:-2])
    outers, inners = (1, 1, *batch)[-2:]
    m, k = a.shape[-2:]
    n = b.shape[-1]
    tile_m, tile_n = TILES[suffix]
    tiles = outers * inners * -(-m // tile_m) * -(-n // tile_n)
    if tiles == 0:
        return
    scalar = np.float64 if suffix == "f64" else np.float32  # alpha and beta: the accumulator's type
    loader.launch_blocks(loader.function("gemm", f"gemm_{suffix}"), tiles,
                         (*args.int64s(outers, inners, m, n, k), a, *args.int64s(*_batch_strides(a)),
                          b, *args.int64s(*_batch_strides(b)), c, *args.int64s(*_batch_strides(c)),
                          scalar(alpha), scalar(beta)), threads=THREADS)
