"""The norm section of fastconv-bench under pytest-benchmark: batch norm in training mode fused with the ReLU
after it, fastconv against torch, each on NCHW and channels_last inputs; forward and forward+backward."""
SECTION = "norm"


def test_norm(benchmark, case, impl):
    benchmark(case.runners[impl])
