"""The pool section: layers.json "other" entries with op max_pool2d, forward and
forward+backward, fastconv on an NCHW ("fastconv") and a channels_last input ("fastconv_cl")
against torch in the same two layouts ("torch", "torch_cl").

The case reports `bytes`: the least any implementation must move (each input read once, each
output written once), so GB/s and %-of-copy show how close to one pass the kernel is.
"""
import numpy as np

from fastconv import ops
from fastconv.bench.harness import Case
from fastconv.bench.peers import our_layouts, torch_copies, torch_step
from fastconv.ops._checks import is_channels_last


def layers(layer_set):
    return [layer for layer in layer_set.get("other", []) if layer.get("op") == "max_pool2d"]


def cases(layer, torch, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(tuple(layer[key] for key in ("N", "C", "H", "W"))).astype(dtype)
    k, stride = layer["kernel"], layer["stride"]
    y, idx = ops.max_pool2d(x, k, stride, return_indices=True)
    gy = np.ones_like(y)
    fwd, step = {}, {}
    for name, (inp, grad) in our_layouts((x, gy)).items():
        fwd[name] = lambda inp=inp: ops.max_pool2d(inp, k, stride)

        def ours_step(inp=inp, grad=grad):
            out, indices = ops.max_pool2d(inp, k, stride, return_indices=True)
            return ops.max_pool2d_backward(grad, inp.shape, indices, channels_last=is_channels_last(inp))

        step[name] = ours_step
    if torch is not None:
        F = torch.nn.functional
        for name, (tx, tgy) in torch_copies(torch, (x, gy)).items():
            gx = tx.clone().requires_grad_()

            def torch_fwd(inp=tx):
                with torch.no_grad():
                    return F.max_pool2d(inp, k, stride)

            fwd[name] = torch_fwd
            step[name] = torch_step(lambda t: F.max_pool2d(t, k, stride), gx, tgy)
    # fwd: read x, write y. fwd+bwd: also indices (int64) written and read, dy read, dx written.
    fwd_bytes = x.nbytes + y.nbytes
    step_bytes = fwd_bytes + 2 * idx.nbytes + gy.nbytes + x.nbytes
    ours = list(our_layouts(()))
    return [Case(layer["name"], "fwd", fwd, ours, bytes=fwd_bytes),
            Case(layer["name"], "fwd+bwd", step, ours, bytes=step_bytes)]
