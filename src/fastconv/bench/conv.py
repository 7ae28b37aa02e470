"""The conv section: each conv2d layer of layers.json, forward and forward+backward, auto and
every algorithm that supports the layer, against torch (NCHW and channels_last), numpy and, for
the forward, ONNX Runtime's CPU provider when onnxruntime and onnx are installed; and fastconv on
channels_last arrays (fastconv_cl), to be read against torch_cl."""
import time

import numpy as np

import fastconv
from fastconv import _C, ops
from fastconv.ops import conv_algo
from fastconv.ops._checks import is_channels_last, to_channels_last
from fastconv.ops.conv import conv2d_arguments
from fastconv.bench.harness import Case, settle
from fastconv.bench.peers import backward_fresh, load_onnxruntime, numpy_conv2d, onnxruntime_conv2d


def conv_flops(layer, p, q):
    """Direct-convolution FLOPs, the same count for every algorithm."""
    groups = layer.get("groups", 1)
    return 2.0 * layer["N"] * layer["K"] * (layer["C"] // groups) * layer["R"] ** 2 * p * q


def layers(layer_set):
    return layer_set.get("conv2d", [])


def cases(layer, torch, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    n, c, h, w_, k, r = (layer[key] for key in ("N", "C", "H", "W", "K", "R"))
    stride, pad, groups = layer["stride"], layer["pad"], layer.get("groups", 1)
    x = rng.standard_normal((n, c, h, w_)).astype(dtype)
    w = (rng.standard_normal((k, c // groups, r, r)) / np.sqrt(c // groups * r * r)).astype(dtype)
    args = dict(stride=stride, padding=pad, groups=groups)
    conv_args = conv2d_arguments(w.shape, stride, pad, 1, groups)
    y_shape = _C.conv2d_output_shape(x.shape, w.shape, *conv_args)  # no call: auto's first is timed below
    flops = conv_flops(layer, y_shape[2], y_shape[3])
    gy = np.ones(y_shape, dtype)

    def our_step(algo):  # forward, then both gradients: what a training step runs
        # A step starts from a weight the optimiser has just changed in place, so a transform
        # cached by the previous step (ops/conv_weight_cache.py) must not be reused.
        np.negative(w, out=w)
        ops.conv2d(x, w, **args, algo=algo)
        ops.conv2d_backward(x, w, gy, needs_bias=False, **args, algo=algo)

    fwd = {"fastconv": lambda: ops.conv2d(x, w, **args)}
    step = {"fastconv": lambda: our_step("auto")}
    started = time.perf_counter()
    our_step("auto")  # the first call of each direction runs the fixed rule's pick, timed
    first_step = time.perf_counter() - started
    choosing_steps = 1 + settle(lambda: our_step("auto"))  # auto's choices, printed under the rows
    picks = {direction.split("+")[0]: algo for (xs, ws, a, _, _, direction), algo in conv_algo.chosen().items()
             if xs == x.shape and ws == w.shape and a == conv_args}
    # Every algorithm that supports the layer, as its own runner beside "auto".
    algos = conv_algo.supported(x.shape, w.shape, conv_args)
    for algo in algos:
        fwd[f"fastconv[{algo}]"] = lambda a=algo: ops.conv2d(x, w, **args, algo=a)
        step[f"fastconv[{algo}]"] = lambda a=algo: our_step(a)
    ours = ["fastconv"] + [f"fastconv[{a}]" for a in algos] + _channels_last_runners(fwd, step, x, w, gy, args)
    if torch is not None:
        F = torch.nn.functional
        tx, tw, tgy = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(gy)
        tx_cl = tx.contiguous(memory_format=torch.channels_last)
        tgy_cl = tgy.contiguous(memory_format=torch.channels_last)
        gx, gw = tx.clone().requires_grad_(), tw.clone().requires_grad_()
        gx_cl = tx_cl.clone().requires_grad_()
        gw_cl = tw.contiguous(memory_format=torch.channels_last).requires_grad_()

        def torch_fwd(inp, weight):
            with torch.no_grad():
                return F.conv2d(inp, weight, **args)

        def torch_step(inp, weight, grad):
            backward_fresh(F.conv2d(inp, weight, **args), grad, inp, weight)

        fwd["torch"] = lambda: torch_fwd(tx, tw)
        fwd["torch_cl"] = lambda: torch_fwd(tx_cl, tw)
        step["torch"] = lambda: torch_step(gx, gw, tgy)
        step["torch_cl"] = lambda: torch_step(gx_cl, gw_cl, tgy_cl)
    fwd["numpy"] = lambda: numpy_conv2d(x, w, (stride, stride), pad, groups)
    onnxruntime = load_onnxruntime()
    if onnxruntime is not None:
        fwd["onnxruntime"] = onnxruntime_conv2d(onnxruntime, x, w, stride, pad, groups, fastconv.get_num_threads())
    layouts = {d.split("@")[0]: a for (xs, ws, a_, _, _, d), a in conv_algo.chosen().items()
               if d.endswith("@channels_last") and xs == x.shape and ws == w.shape and a_ == conv_args}
    auto = {"auto picks": ", ".join(f"{d} {picks[d]}" for d in ("forward", "input", "weight") if d in picks),
            "channels_last runs": ", ".join(f"{d} {layouts[d]}" for d in ("forward", "backward") if d in layouts),
            "auto's first fwd+bwd (choosing included)": f"{first_step * 1e3:.1f} ms",
            "auto chose over": f"{choosing_steps} fwd+bwd calls"}
    memory = {"extra memory (scratch, forward)": ", ".join(
        f"{algo} {_scratch_bytes(lambda: ops.conv2d(x, w, **args, algo=algo)) / 2**20:.2f} MiB" for algo in algos)}
    # fwd+bwd flops: forward + input gradient + weight gradient, each a convolution's worth.
    # The least traffic: each array read or written once (the roofline's arithmetic intensity).
    # A step's three convolutions each move as much as the forward does.
    traffic = float(x.nbytes + w.nbytes + gy.nbytes)  # gy: the output's size
    return [Case(layer["name"], "fwd", fwd, ours, flops=flops, bytes=traffic, extra={**auto, **memory}),
            Case(layer["name"], "fwd+bwd", step, ours, flops=3 * flops, bytes=3 * traffic, extra=auto)]


def _channels_last_runners(fwd, step, x, w, gy, args):
    """fastconv (auto) on channels_last copies of the input and gradient, the arrays torch_cl
    runs on: its output keeps the layout. Resolves auto's choice of running in place or on NCHW
    copies first, as the NCHW runners' choice is resolved before timing."""
    x_cl, gy_cl = to_channels_last(x), to_channels_last(gy)

    def step_cl():
        np.negative(w, out=w)  # as our_step: a changed weight
        ops.conv2d(x_cl, w, **args)
        ops.conv2d_backward(x_cl, w, gy_cl, needs_bias=False, **args)

    if not is_channels_last(x_cl):  # one channel or 1x1 planes: the same memory as NCHW
        return []
    settle(step_cl)
    fwd["fastconv_cl"] = lambda: ops.conv2d(x_cl, w, **args)
    step["fastconv_cl"] = step_cl
    return ["fastconv_cl"]


def _scratch_bytes(run):
    """Scratch memory (column matrix, GEMM packing) that one call allocates, on every thread:
    the extra memory an algorithm needs beyond its inputs and output."""
    _C.release_scratch()
    run()
    return _C.scratch_bytes()
