"""The conv_transpose section of fastconv-bench under pytest-benchmark: conv_transpose2d against torch (NCHW,
channels_last); forward and forward+backward."""
SECTION = "conv_transpose"


def test_conv_transpose(benchmark, case, impl):
    benchmark(case.runners[impl])
