"""The roi section of fastconv-bench under pytest-benchmark: roi_align and roi_pool against torchvision.ops (when
installed); forward and forward+backward."""
SECTION = "roi"


def test_roi(benchmark, case, impl):
    benchmark(case.runners[impl])
