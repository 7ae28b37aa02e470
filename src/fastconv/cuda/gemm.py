"""The matrix product on CUDA: fastconv._C's gemm, c = alpha * a @ b + beta * c, through cuBLAS
(cupy.matmul) for CuPy arrays of any strides."""
from fastconv import backend
from fastconv.cuda import _kernel_args as args
from fastconv.ops._checks import float_array


def gemm(a, b, c, alpha=1.0, beta=0.0):
    a, b = float_array(a, "a"), float_array(b, "b")
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"gemm: a {tuple(a.shape)} and b {tuple(b.shape)} are not (M, K) and (K, N)")
    args.output(c, "c", (a.shape[0], b.shape[1]), a.dtype)
    xp = backend.array_module(a)
    if beta == 0.0 and alpha == 1.0:
        xp.matmul(a, b, out=c)
        return
    product = xp.matmul(a, b)
    c *= beta
    c += alpha * product
