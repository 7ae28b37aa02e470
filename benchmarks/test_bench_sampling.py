"""The sampling section of fastconv-bench under pytest-benchmark: grid_sample after affine_grid, and bilinear
interpolate, against torch; forward and forward+backward."""
SECTION = "sampling"


def test_sampling(benchmark, case, impl):
    benchmark(case.runners[impl])
