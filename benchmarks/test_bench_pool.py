"""The pool section of fastconv-bench under pytest-benchmark: max_pool2d, fastconv against torch, each on NCHW and
channels_last inputs; forward and forward+backward."""
SECTION = "pool"


def test_pool(benchmark, case, impl):
    benchmark(case.runners[impl])
