"""The conv_transpose section: layers.json "other" entries with op conv_transpose2d, forward and
forward+backward, against torch (NCHW and channels_last); fastconv also on channels_last arrays
(fastconv_cl), to be read against torch_cl."""
import numpy as np

from fastconv import ops
from fastconv.ops import conv_algo
from fastconv.ops._checks import is_channels_last, to_channels_last
from fastconv.bench.harness import Case, settle
from fastconv.bench.peers import backward_fresh, torch_copies


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
    settle(ours_step)  # auto's choices made before timing, as the channels_last runner's below
    picks = {"auto picks": ", ".join(f"{key[-1]}: {algo}" for key, algo in conv_algo.chosen().items()
                                     if key[0] == gy.shape and key[1] == w.shape)}
    ours = ["fastconv"] + _channels_last_runners(fwd, step, x, w, gy, args)
    if torch is not None:
        F = torch.nn.functional
        for name, (tx, tw, tgy) in torch_copies(torch, (x, w, gy)).items():
            gx, gw = tx.clone().requires_grad_(), tw.clone().requires_grad_()

            def torch_fwd(inp=tx, weight=tw):
                with torch.no_grad():
                    return F.conv_transpose2d(inp, weight, **args)

            fwd[name] = torch_fwd
            step[name] = lambda inp=gx, weight=gw, grad=tgy: backward_fresh(F.conv_transpose2d(inp, weight, **args),
                                                                            grad, inp, weight)
    return [Case(layer["name"], "fwd", fwd, ours, flops=flops, extra=picks),
            Case(layer["name"], "fwd+bwd", step, ours, flops=3 * flops)]


def _channels_last_runners(fwd, step, x, w, gy, args):
    """fastconv (auto) on channels_last copies of the input and gradient, as torch_cl runs; auto's
    choice of running in place or on NCHW copies is resolved before timing."""
    x_cl, gy_cl = to_channels_last(x), to_channels_last(gy)
    if not is_channels_last(x_cl):  # one channel or 1x1 planes: the same memory as NCHW
        return []

    def step_cl():
        ops.conv_transpose2d(x_cl, w, **args)
        return ops.conv_transpose2d_backward(x_cl, w, gy_cl, needs_bias=False, **args)

    settle(step_cl)
    fwd["fastconv_cl"] = lambda: ops.conv_transpose2d(x_cl, w, **args)
    step["fastconv_cl"] = step_cl
    return ["fastconv_cl"]
