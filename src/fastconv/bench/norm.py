"""The norm section: layers.json "other" entries with op batch_norm_relu (batch norm in training
mode fused with the ReLU after it), forward and forward+backward, fastconv on an NCHW
("fastconv") and a channels_last input ("fastconv_cl") against torch in the same two layouts
("torch", "torch_cl").

The case reports `bytes`: the least any implementation must move (each input read once, each
output written once), so GB/s and %-of-copy show how close to one pass the kernel is.
"""
import numpy as np

from fastconv import ops
from fastconv.bench.harness import Case
from fastconv.bench.peers import backward_fresh, our_layouts, torch_copies


def layers(layer_set):
    return [layer for layer in layer_set.get("other", []) if layer.get("op") == "batch_norm_relu"]


def cases(layer, torch, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    shape = tuple(layer[key] for key in ("N", "C", "H", "W"))
    x = rng.standard_normal(shape).astype(dtype)
    gy = rng.standard_normal(shape).astype(dtype)
    c = shape[1]
    gamma, beta = np.ones(c, dtype), np.zeros(c, dtype)
    rm, rv = np.zeros(c, dtype), np.ones(c, dtype)
    fwd, step = {}, {}
    for name, (inp, grad) in our_layouts((x, gy)).items():
        fwd[name] = lambda inp=inp: ops.batch_norm(inp, rm, rv, gamma, beta, training=True, relu=True)

        def ours_step(inp=inp, grad=grad):
            y, mean, invstd = ops.batch_norm(inp, rm, rv, gamma, beta, training=True, relu=True)
            return ops.batch_norm_backward(grad, inp, mean, invstd, gamma, output=y, relu=True)

        step[name] = ours_step
    if torch is not None:
        F = torch.nn.functional
        trm, trv = torch.from_numpy(rm.copy()), torch.from_numpy(rv.copy())
        for name, (tx, tgy) in torch_copies(torch, (x, gy)).items():
            tg, tb = torch.from_numpy(gamma).requires_grad_(), torch.from_numpy(beta).requires_grad_()
            gx = tx.clone().requires_grad_()

            def torch_fwd(inp=tx, g=tg, b=tb):
                with torch.no_grad():
                    return F.relu(F.batch_norm(inp, trm, trv, g, b, training=True))

            fwd[name] = torch_fwd
            step[name] = lambda inp=gx, g=tg, b=tb, grad=tgy: backward_fresh(
                F.relu(F.batch_norm(inp, trm, trv, g, b, training=True)), grad, inp, g, b)
    size = x.nbytes
    # fwd: read x, write y. fwd+bwd: that, then read dy, x, y and write dx.
    ours = list(our_layouts(()))
    return [Case(layer["name"], "fwd", fwd, ours, bytes=2 * size),
            Case(layer["name"], "fwd+bwd", step, ours, bytes=6 * size)]
