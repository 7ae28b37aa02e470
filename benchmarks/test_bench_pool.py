"""The pool section of fastconv-bench under pytest-benchmark: max_pool2d against torch (NCHW, channels_last);
forward and forward+backward."""
SECTION = "pool"


def test_pool(benchmark, case, impl):
    benchmark(case.runners[impl])
