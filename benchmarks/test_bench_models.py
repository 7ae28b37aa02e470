"""ResNet-20's training step (128 images) and inference (256 images) under pytest-benchmark: every
runner (fastconv and its torch peers) of the fastconv-bench models section, so both views time
exactly the same calls."""
import pytest

from fastconv.bench import models
from fastconv.bench.__main__ import load_layers

try:
    import torch as _torch
except ImportError:
    _torch = None

CASES = list(models.cases(load_layers(None), _torch))
RUNS = [(case, impl) for case in CASES for impl in case.runners]


@pytest.mark.parametrize("case,impl", RUNS, ids=[f"{c.name}-{c.mode}-{impl}" for c, impl in RUNS])
def test_models(benchmark, request, case, impl):
    if impl.startswith("torch"):
        request.getfixturevalue("torch")  # pins torch to the suite's thread count
    benchmark(case.runners[impl])
