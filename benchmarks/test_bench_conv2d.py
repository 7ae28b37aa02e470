import numpy as np
import pytest

from fastconv import ops
from fastconv.bench.__main__ import load_layers

LAYERS = load_layers(None)["conv2d"]
IDS = [layer["name"] for layer in LAYERS]


def _arrays(layer, rng):
    g = layer.get("groups", 1)
    x = rng.standard_normal((layer["N"], layer["C"], layer["H"], layer["W"])).astype(np.float32)
    w = rng.standard_normal((layer["K"], layer["C"] // g, layer["R"], layer["R"])).astype(np.float32)
    return x, w, dict(stride=layer["stride"], padding=layer["pad"], groups=g)


@pytest.mark.parametrize("layer", LAYERS, ids=IDS)
@pytest.mark.parametrize("algo", ["auto", "im2col", "implicit"])
def test_conv2d_fastconv(benchmark, rng, layer, algo):
    x, w, args = _arrays(layer, rng)
    benchmark(ops.conv2d, x, w, algo=algo, **args)


@pytest.mark.parametrize("layer", LAYERS, ids=IDS)
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
def test_conv2d_torch(benchmark, torch, rng, layer, channels_last):
    x, w, args = _arrays(layer, rng)
    tx, tw = torch.from_numpy(x), torch.from_numpy(w)
    if channels_last:
        tx = tx.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        benchmark(torch.nn.functional.conv2d, tx, tw, **args)
