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


def test_without_cuda_the_report_says_why(tmp_path):
    if WHY_NOT_CUDA is None:
        pytest.skip("CUDA runs here: the benchmark itself runs in scripts/gpu_check.sh")
    out = tmp_path / "conv_bench.json"
    assert cuda_conv.main([str(out)]) == 0
    assert "no CUDA here" in out.read_text()
