"""conv_transpose2d, fused BN+ReLU and max_pool2d under pytest-benchmark: every runner (fastconv
and its torch peers) of every case of the fastconv-bench norm_pool section, so both views time
exactly the same calls."""
import pytest

from fastconv.bench import norm_pool
from fastconv.bench.__main__ import load_layers

try:
    import torch as _torch
except ImportError:
    _torch = None

CASES = list(norm_pool.cases(load_layers(None), _torch))
RUNS = [(case, impl) for case in CASES for impl in case.runners]


@pytest.mark.parametrize("case,impl", RUNS, ids=[f"{c.name}-{c.mode}-{impl}" for c, impl in RUNS])
def test_norm_pool(benchmark, request, case, impl):
    if impl.startswith("torch"):
        request.getfixturevalue("torch")  # pins torch to the suite's thread count
    benchmark(case.runners[impl])
