"""Matrix product through fastconv's own GEMM (csrc/gemm)."""
from typing import Optional

from fastconv._typing import Array
from fastconv.backend import device_of, empty, kernels
from fastconv.ops._checks import check_ndim, float_array, same_dtype


def matmul(a: Array, b: Array, out: Optional[Array] = None) -> Array:
    """a @ b for 2-d float32/float64 arrays of any strides (transposed views need no copy)."""
    lib = kernels(a, b, out, op="matmul")
    a, b = float_array(a, "a"), float_array(b, "b")
    dtype = same_dtype({"a": a, "b": b})
    check_ndim(a, 2, "a", "(M, K)")
    check_ndim(b, 2, "b", "(K, N)")
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"matmul: a has shape {a.shape} and b {b.shape}; a.shape[1] must equal b.shape[0]")
    shape = (a.shape[0], b.shape[1])
    if out is None:
        out = empty(shape, dtype, device_of(a))
    elif out.shape != shape or out.dtype != dtype:
        raise ValueError(f"out: expected shape {shape} and dtype {dtype}, got {out.shape} {out.dtype}")
    lib.gemm(a, b, out)
    return out
