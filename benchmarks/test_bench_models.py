"""ResNet-20's training step (128 images) and inference (256 images) under pytest-benchmark: every
runner (fastconv and its torch peers) of the fastconv-bench models section."""
from fastconv.bench import models
from section_runs import parametrize_runs, run


@parametrize_runs(models)
def test_models(benchmark, request, case, impl):
    run(benchmark, request, case, impl)
