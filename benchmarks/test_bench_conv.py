"""The conv section of fastconv-bench under pytest-benchmark: conv2d, auto and every algorithm that supports
the layer, against torch (NCHW, channels_last) and numpy; forward and forward+backward."""
SECTION = "conv"


def test_conv(benchmark, case, impl):
    benchmark(case.runners[impl])
