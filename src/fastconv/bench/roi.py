"""The roi section: roi_align and roi_pool from the "other" entries of layers.json, forward and
forward+backward, against torchvision.ops (when importable; without it the cases time ours alone).

These kernels are memory-bound: each case's `bytes` counts what it must read and write at least
once (inputs, outputs, gradients), so the table prints GB/s and % of a copy's bandwidth.
"""
import numpy as np

from fastconv import ops
from fastconv.bench.harness import Case
from fastconv.bench.peers import load_torchvision, torch_no_grad, torch_step


def _image_boxes(rng, layer):
    """`rois` boxes (K, 5) in image coordinates (feature map / spatial_scale), 2 to 50% of the
    image per side, spread over the batch."""
    scale = layer.get("spatial_scale", 1.0)
    image = np.array([layer["W"], layer["H"]]) / scale
    k = layer["rois"]
    size = rng.uniform(0.02, 0.5, (k, 2)) * image
    start = rng.uniform(0, 1, (k, 2)) * (image - size)
    return np.concatenate([rng.integers(0, layer["N"], (k, 1)), start, start + size], axis=1).astype(np.float32)


def _add_torchvision_peer(torch, op, x, boxes, args, grad, fwd, step):
    """torchvision.ops.<op> as the peer of both cases, when torchvision is importable."""
    tv = load_torchvision() if torch is not None else None
    if tv is None:
        return
    fn = getattr(tv.ops, op)
    tx, tb = torch.from_numpy(x), torch.from_numpy(boxes)
    fwd["torchvision"] = torch_no_grad(torch, fn, tx, tb, *args)
    step["torchvision"] = torch_step(lambda t: fn(t, tb, *args), tx.clone().requires_grad_(), torch.from_numpy(grad))


def roi_align_cases(layer, torch, rng):
    x = rng.standard_normal((layer["N"], layer["C"], layer["H"], layer["W"])).astype(np.float32)
    boxes = _image_boxes(rng, layer)
    args = (layer["output"], layer["spatial_scale"], layer["sampling_ratio"], layer["aligned"])
    y = ops.roi_align(x, boxes, *args)
    gy = np.ones_like(y)
    fwd = {"fastconv": lambda: ops.roi_align(x, boxes, *args)}
    step = {"fastconv": lambda: (ops.roi_align(x, boxes, *args), ops.roi_align_backward(gy, boxes, x.shape, *args[1:]))}
    _add_torchvision_peer(torch, "roi_align", x, boxes, args, gy, fwd, step)
    moved = x.nbytes + y.nbytes
    return [Case(layer["name"], "fwd", fwd, ["fastconv"], bytes=moved),
            Case(layer["name"], "fwd+bwd", step, ["fastconv"], bytes=2 * moved)]


def roi_pool_cases(layer, torch, rng):
    x = rng.standard_normal((layer["N"], layer["C"], layer["H"], layer["W"])).astype(np.float32)
    boxes = _image_boxes(rng, layer)
    args = (layer["output"], layer["spatial_scale"])
    y, argmax = ops.roi_pool(x, boxes, *args)
    gy = np.ones_like(y)

    def ours_step():
        _, indices = ops.roi_pool(x, boxes, *args)
        ops.roi_pool_backward(gy, indices, x.shape)

    fwd = {"fastconv": lambda: ops.roi_pool(x, boxes, *args)}
    step = {"fastconv": ours_step}
    _add_torchvision_peer(torch, "roi_pool", x, boxes, args, gy, fwd, step)
    # forward: input, output and the int64 argmax; backward: grad_output, argmax, grad_input
    forward_bytes = x.nbytes + y.nbytes + argmax.nbytes
    return [Case(layer["name"], "fwd", fwd, ["fastconv"], bytes=forward_bytes),
            Case(layer["name"], "fwd+bwd", step, ["fastconv"], bytes=2 * forward_bytes)]


BUILDERS = {"roi_align": roi_align_cases, "roi_pool": roi_pool_cases}


def layers(layer_set):
    return [layer for layer in layer_set.get("other", []) if layer.get("op") in BUILDERS]


def cases(layer, torch, seed=0):
    return BUILDERS[layer["op"]](layer, torch, np.random.default_rng(seed))
