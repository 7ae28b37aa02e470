"""The norm section of fastconv-bench under pytest-benchmark: batch norm in training mode fused with the ReLU
after it, against torch (NCHW, channels_last); forward and forward+backward."""
SECTION = "norm"


def test_norm(benchmark, case, impl):
    benchmark(case.runners[impl])
