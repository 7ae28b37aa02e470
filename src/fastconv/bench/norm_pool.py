"""The norm_pool section: layers.json "other" entries for conv_transpose2d, fused BN+ReLU
(training) and max pooling, forward and forward+backward, against torch (NCHW and channels_last).

Memory-bound cases report `bytes`: the least any implementation must move (each input read
once, each output written once), so GB/s and %-of-copy show how close to one pass a kernel is.
"""
import numpy as np

from fastconv import ops
from fastconv.bench.harness import Case


def _torch_layouts(torch, arrays):
    """{"torch": NCHW tensors, "torch_cl": channels_last copies} of the given numpy arrays."""
    nchw = [torch.from_numpy(a) for a in arrays]
    return {"torch": nchw, "torch_cl": [t.contiguous(memory_format=torch.channels_last) for t in nchw]}


def conv_transpose_cases(layer, torch, dtype=np.float32, seed=0):
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
        for name, (tx, tw, tgy) in _torch_layouts(torch, (x, w, gy)).items():
            gx, gw = tx.clone().requires_grad_(), tw.clone().requires_grad_()

            def torch_fwd(inp=tx, weight=tw):
                with torch.no_grad():
                    return F.conv_transpose2d(inp, weight, **args)

            fwd[name] = torch_fwd
            step[name] = lambda inp=gx, weight=gw, grad=tgy: F.conv_transpose2d(inp, weight, **args).backward(grad)
    return [Case(layer["name"], "fwd", fwd, ["fastconv"], flops=flops),
            Case(layer["name"], "fwd+bwd", step, ["fastconv"], flops=3 * flops)]


def bn_relu_cases(layer, torch, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    shape = tuple(layer[key] for key in ("N", "C", "H", "W"))
    x = rng.standard_normal(shape).astype(dtype)
    gy = rng.standard_normal(shape).astype(dtype)
    c = shape[1]
    gamma, beta = np.ones(c, dtype), np.zeros(c, dtype)
    rm, rv = np.zeros(c, dtype), np.ones(c, dtype)
    fwd = {"fastconv": lambda: ops.batch_norm(x, rm, rv, gamma, beta, training=True, relu=True)}

    def ours_step():
        y, mean, invstd = ops.batch_norm(x, rm, rv, gamma, beta, training=True, relu=True)
        return ops.batch_norm_backward(gy, x, mean, invstd, gamma, output=y, relu=True)

    step = {"fastconv": ours_step}
    if torch is not None:
        F = torch.nn.functional
        trm, trv = torch.from_numpy(rm.copy()), torch.from_numpy(rv.copy())
        for name, (tx, tgy) in _torch_layouts(torch, (x, gy)).items():
            tg, tb = torch.from_numpy(gamma).requires_grad_(), torch.from_numpy(beta).requires_grad_()
            gx = tx.clone().requires_grad_()

            def torch_fwd(inp=tx, g=tg, b=tb):
                with torch.no_grad():
                    return F.relu(F.batch_norm(inp, trm, trv, g, b, training=True))

            fwd[name] = torch_fwd
            step[name] = lambda inp=gx, g=tg, b=tb, grad=tgy: F.relu(
                F.batch_norm(inp, trm, trv, g, b, training=True)).backward(grad)
    size = x.nbytes
    # fwd: read x, write y. fwd+bwd: that, then read dy, x, y and write dx.
    return [Case(layer["name"], "fwd", fwd, ["fastconv"], bytes=2 * size),
            Case(layer["name"], "fwd+bwd", step, ["fastconv"], bytes=6 * size)]


def max_pool_cases(layer, torch, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(tuple(layer[key] for key in ("N", "C", "H", "W"))).astype(dtype)
    k, stride = layer["kernel"], layer["stride"]
    y, idx = ops.max_pool2d(x, k, stride, return_indices=True)
    gy = np.ones_like(y)
    fwd = {"fastconv": lambda: ops.max_pool2d(x, k, stride)}

    def ours_step():
        out, indices = ops.max_pool2d(x, k, stride, return_indices=True)
        return ops.max_pool2d_backward(gy, x.shape, indices)

    step = {"fastconv": ours_step}
    if torch is not None:
        F = torch.nn.functional
        for name, (tx, tgy) in _torch_layouts(torch, (x, gy)).items():
            gx = tx.clone().requires_grad_()

            def torch_fwd(inp=tx):
                with torch.no_grad():
                    return F.max_pool2d(inp, k, stride)

            fwd[name] = torch_fwd
            step[name] = lambda inp=gx, grad=tgy: F.max_pool2d(inp, k, stride).backward(grad)
    # fwd: read x, write y. fwd+bwd: also indices (int64) written and read, dy read, dx written.
    fwd_bytes = x.nbytes + y.nbytes
    step_bytes = fwd_bytes + 2 * idx.nbytes + gy.nbytes + x.nbytes
    return [Case(layer["name"], "fwd", fwd, ["fastconv"], bytes=fwd_bytes),
            Case(layer["name"], "fwd+bwd", step, ["fastconv"], bytes=step_bytes)]


BUILDERS = {"conv_transpose2d": conv_transpose_cases, "batch_norm_relu": bn_relu_cases, "max_pool2d": max_pool_cases}


def cases(layers, torch):
    for layer in layers.get("other", []):
        if layer.get("op") in BUILDERS:
            yield from BUILDERS[layer["op"]](layer, torch)
