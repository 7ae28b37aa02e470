"""pytest-benchmark suites: `pytest benchmarks --benchmark-group-by=param` groups each case with
its peers. These time; they never assert speed (ratios live in the fastconv-bench table)."""
import numpy as np
import pytest

import fastconv

THREADS = 2


@pytest.fixture(scope="session", autouse=True)
def two_threads():
    fastconv.set_num_threads(THREADS)
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(THREADS)
    except ImportError:
        pass


@pytest.fixture(scope="session")
def torch():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(THREADS)
    return torch


@pytest.fixture
def rng():
    return np.random.default_rng(0)
