import numpy as np
import pytest

from fastconv import ops

SIZES = [256, 1024, 2048]


@pytest.mark.parametrize("n", SIZES)
def test_matmul_fastconv(benchmark, rng, n):
    a, b = (rng.standard_normal((n, n)).astype(np.float32) for _ in range(2))
    benchmark.extra_info["gflop"] = 2 * n**3 / 1e9
    benchmark(ops.matmul, a, b)


@pytest.mark.parametrize("n", SIZES)
def test_matmul_numpy(benchmark, rng, n):
    a, b = (rng.standard_normal((n, n)).astype(np.float32) for _ in range(2))
    benchmark(np.matmul, a, b)


@pytest.mark.parametrize("n", SIZES)
def test_matmul_torch(benchmark, torch, n):
    a, b = torch.randn(n, n), torch.randn(n, n)
    benchmark(torch.mm, a, b)
