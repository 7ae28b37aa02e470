"""The sampling section: grid_sample (with affine_grid) and bilinear upsampling (interpolate) from
the "other" entries of layers.json, forward and forward+backward, against torch.nn.functional in
both of torch's layouts, NCHW ("torch") and channels_last ("torch_cl"). fastconv runs each on an
NCHW input ("fastconv") and on a channels_last one ("fastconv_cl"), so that each layout has a
like-for-like peer.

These kernels are memory-bound: each case's `bytes` counts what it must read and write at least
once (inputs, outputs, gradients), so the table prints GB/s and % of a copy's bandwidth.
"""
import numpy as np

from fastconv import ops
from fastconv.bench.harness import Case
from fastconv.bench.peers import backward_fresh, torch_copies, torch_no_grad, torch_step
from fastconv.ops._checks import to_channels_last

F32 = 4
OURS = ["fastconv", "fastconv_cl"]


def our_layouts(*arrays):
    """{runner name: the arrays in that runner's layout}: NCHW, and channels_last (its twin of
    torch_cl)."""
    return {"fastconv": arrays, "fastconv_cl": tuple(to_channels_last(a) for a in arrays)}


def grid_sample_cases(layer, torch, rng):
    """A spatial transformer's sampling: affine_grid from a near-identity theta, then grid_sample."""
    n, c = layer["N"], layer["C"]
    x = rng.standard_normal((n, c, layer["H"], layer["W"])).astype(np.float32)
    size = (n, c, layer["out_H"], layer["out_W"])
    angle = rng.uniform(-0.3, 0.3, n)
    zoom = rng.uniform(0.8, 1.2, (n, 1))
    theta = np.stack([np.stack([np.cos(angle), -np.sin(angle), rng.uniform(-0.1, 0.1, n)], 1),
                      np.stack([np.sin(angle), np.cos(angle), rng.uniform(-0.1, 0.1, n)], 1)], 1)
    theta = (theta * zoom[:, :, None]).astype(np.float32)
    opts = dict(mode=layer["mode"], padding_mode=layer["padding_mode"], align_corners=layer["align_corners"])
    gy = np.ones(size, np.float32)

    def our_runners(x, gy):
        def forward():
            return ops.grid_sample(x, ops.affine_grid(theta, size, opts["align_corners"]), **opts)

        def step():
            grid = ops.affine_grid(theta, size, opts["align_corners"])
            ops.grid_sample(x, grid, **opts)
            _, grad_grid = ops.grid_sample_backward(gy, x, grid, **opts)
            ops.affine_grid_backward(grad_grid, size, opts["align_corners"])
        return forward, step

    fwd, step = {}, {}
    for name, arrays in our_layouts(x, gy).items():
        fwd[name], step[name] = our_runners(*arrays)
    if torch is not None:
        F = torch.nn.functional
        ttheta = torch.from_numpy(theta)

        def torch_sample(inp, t):
            return F.grid_sample(inp, F.affine_grid(t, size, opts["align_corners"]), **opts)

        for name, (tx, tgy) in torch_copies(torch, (x, gy)).items():
            fwd[name] = torch_no_grad(torch, torch_sample, tx, ttheta)
            gx, gtheta = tx.clone().requires_grad_(), ttheta.clone().requires_grad_()
            step[name] = lambda gx=gx, gtheta=gtheta, tgy=tgy: backward_fresh(torch_sample(gx, gtheta), tgy, gx, gtheta)
    grid_bytes = n * size[2] * size[3] * 2 * F32
    out_bytes = int(np.prod(size)) * F32
    forward_bytes = x.nbytes + grid_bytes + out_bytes
    # backward: grad_output, input and grid read; grad_input and grad_grid written
    backward_bytes = out_bytes + x.nbytes + 2 * grid_bytes + x.nbytes
    return [Case(layer["name"], "fwd", fwd, OURS, bytes=forward_bytes),
            Case(layer["name"], "fwd+bwd", step, OURS, bytes=forward_bytes + backward_bytes)]


def interpolate_cases(layer, torch, rng):
    x = rng.standard_normal((layer["N"], layer["C"], layer["H"], layer["W"])).astype(np.float32)
    opts = dict(scale_factor=layer["scale_factor"], mode=layer["mode"], align_corners=layer["align_corners"])
    y = ops.interpolate(x, **opts)
    gy = np.ones_like(y)
    fwd, step = {}, {}
    for name, (ox, ogy) in our_layouts(x, gy).items():
        fwd[name] = lambda ox=ox: ops.interpolate(ox, **opts)
        step[name] = lambda ox=ox, ogy=ogy: (ops.interpolate(ox, **opts),
                                             ops.interpolate_backward(ogy, ox.shape, **opts))
    if torch is not None:
        F = torch.nn.functional
        for name, (tx, tgy) in torch_copies(torch, (x, gy)).items():
            fwd[name] = torch_no_grad(torch, lambda t: F.interpolate(t, **opts), tx)
            step[name] = torch_step(lambda t: F.interpolate(t, **opts), tx.clone().requires_grad_(), tgy)
    moved = x.nbytes + y.nbytes
    return [Case(layer["name"], "fwd", fwd, OURS, bytes=moved),
            Case(layer["name"], "fwd+bwd", step, OURS, bytes=2 * moved)]


BUILDERS = {"grid_sample": grid_sample_cases, "interpolate": interpolate_cases}


def layers(layer_set):
    return [layer for layer in layer_set.get("other", []) if layer.get("op") in BUILDERS]


def cases(layer, torch, seed=0):
    return BUILDERS[layer["op"]](layer, torch, np.random.default_rng(seed))
