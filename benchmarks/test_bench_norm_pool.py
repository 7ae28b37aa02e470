"""conv_transpose2d, fused BN+ReLU and max_pool2d under pytest-benchmark: every runner (fastconv
and its torch peers) of every case of the fastconv-bench norm_pool section."""
from fastconv.bench import norm_pool
from section_runs import parametrize_runs, run


@parametrize_runs(norm_pool)
def test_norm_pool(benchmark, request, case, impl):
    run(benchmark, request, case, impl)
