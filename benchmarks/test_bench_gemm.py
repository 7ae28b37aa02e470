"""The gemm section of fastconv-bench under pytest-benchmark: square float32 products (ops.matmul) against numpy's BLAS
and torch.mm, every runner of every case."""
SECTION = "gemm"


def test_gemm(benchmark, case, impl):
    benchmark(case.runners[impl])
