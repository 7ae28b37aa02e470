"""The GPU conv benchmark (fastconv.bench.cuda_conv) without a GPU: its layers are in the shipped
layers.json, and where CUDA cannot run it reports why instead of figures."""
import pytest

from fastconv.bench import cuda_conv
from fastconv.bench.harness import load_layers
from tests.conftest import WHY_NOT_CUDA


def test_its_layers_are_in_the_shipped_layer_set():
    found = [layer["name"] for layer in cuda_conv._layer_cases(load_layers(), cuda_conv.LAYERS)]
    assert sorted(found) == sorted(cuda_conv.LAYERS)
    assert set(cuda_conv.GRADIENT_LAYERS) <= set(found)


def test_every_cuda_algorithm_has_a_layer_it_runs(rng):
    """conv_case times each algorithm of fastconv.cuda.conv on the layers it supports (Winograd's
    3x3 stride-1 tilings included): each has at least one in LAYERS."""
    from fastconv.cuda import conv
    runnable = set()
    for layer in cuda_conv._layer_cases(load_layers(), cuda_conv.LAYERS):
        x, w = cuda_conv._layer_arrays(layer, rng)
        geometry = cuda_conv._layer_options(layer)[1]
        runnable |= {algo for algo in conv.conv2d_algorithms()
                     if conv.conv2d_unsupported_reason(algo, x.shape, w.shape, *geometry) is None}
    assert runnable == set(conv.conv2d_algorithms())


def test_without_cuda_the_report_says_why(tmp_path):
    if WHY_NOT_CUDA is None:
        pytest.skip("CUDA runs here: the benchmark itself runs in scripts/gpu_check.sh")
    out = tmp_path / "conv_bench.json"
    assert cuda_conv.main([str(out)]) == 0
    assert "no CUDA here" in out.read_text()
