"""The models section of fastconv-bench under pytest-benchmark: ResNet-20's training step (128 images) and
inference (256 images) against the same network in torch, eager, NCHW and channels_last."""
SECTION = "models"


def test_models(benchmark, case, impl):
    benchmark(case.runners[impl])
