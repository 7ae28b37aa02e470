"""The conv_transpose section: layers.json "other" entries with op conv_transpose2d, forward and
forward+backward, against torch (NCHW and channels_last)."""
import numpy as np

from fastconv import ops
from fastconv.bench.harness import Case
from fastconv.bench.peers import torch_copies


def layers(layer_set):
    return [layer for layer in layer_set.get("other", []) if layer.get("op") == "conv_transpose2d"]


def cases(layer, torch, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    n, c, h, w_, k, r = (layer[key] for key in ("N", "C", "H", "W", "K", "R"))
    args = dict(stride=layer["stride"], padding=layer["pad"])
    x = rng.standard_normal((n, c, h, w_)).astype(dtype)
    w = (rng.standard_normal((c, k, r, r)) / np.sqrt(c * r * r)).astype(dtype)
    gy = np.ones_like(ops.conv_transpose2d(x, w, **args))
    flops = 2.0 * n * c * k * r * r * h * w_  # each input pixel scatters a K x R x R kernel
    fwd = {"fastconv": lambda: ops.conv_transpose2d(x, w, **args)}

    def ours_step():  # the forward too, as torch's runner pays for it
        ops.conv_transpose2d(x, w, **args)
        return ops.conv_transpose2d_backward(x, w, gy, needs_bias=False, **args)

    step = {"fastconv": ours_step}
    if torch is not None:
        F = torch.nn.functional
        for name, (tx, tw, tgy) in torch_copies(torch, (x, w, gy)).items():
            gx, gw = tx.clone().requires_grad_(), tw.clone().requires_grad_()

            def torch_fwd(inp=tx, weight=tw):
                with torch.no_grad():
                    return F.conv_transpose2d(inp, weight, **args)

            fwd[name] = torch_fwd
            step[name] = lambda inp=gx, weight=gw, grad=tgy: F.conv_transpose2d(inp, weight, **args).backward(grad)
    return [Case(layer["name"], "fwd", fwd, ["fastconv"], flops=flops),
            Case(layer["name"], "fwd+bwd", step, ["fastconv"], flops=3 * flops)]
