"""The runners of one fastconv-bench section as pytest-benchmark parameters, so that both views
time exactly the same calls (test_bench_models.py, test_bench_norm_pool.py)."""
import pytest

from fastconv.bench.__main__ import load_layers

try:
    import torch as _torch
except ImportError:
    _torch = None


def parametrize_runs(section):
    """@pytest.mark.parametrize("case,impl", ...) over every runner of every case of `section`."""
    runs = [(case, impl) for case in section.cases(load_layers(None), _torch) for impl in case.runners]
    return pytest.mark.parametrize("case,impl", runs, ids=[f"{c.name}-{c.mode}-{impl}" for c, impl in runs])


def run(benchmark, request, case, impl):
    if impl.startswith("torch"):
        request.getfixturevalue("torch")  # pins torch to the suite's thread count
    benchmark(case.runners[impl])
