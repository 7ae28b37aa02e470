"""The GPU benchmark of conv2d and GEMM: each CUDA conv2d algorithm of fastconv (im2col, implicit,
winograd_2x3, and auto) against PyTorch's cuDNN on a few layers of layers.json, forward only,
and fastconv's tiled GEMM against cupy.matmul (cuBLAS) at 4096 x 4096 x 4096.

    python -m fastconv.bench.cuda_conv OUT.json [--repeats 10]

float32, TF32 off on both sides (cuDNN may otherwise multiply in TF32; cuBLAS through CuPy
does not unless CUPY_TF32=1), torch.backends.cudnn.benchmark=True (cuDNN picks its fastest
algorithm per shape in the warm-up). Timed with CUDA events, implementations interleaved, medians
(fastconv.bench.cuda.time_interleaved); each figure comes with its TFLOP/s. Each result is also
checked against torch's output (max relative error), so a fast wrong kernel shows. Where this
machine runs no CUDA, the JSON says why instead.
"""
import sys

import numpy as np

from fastconv import backend, ops
from fastconv.bench.conv import conv_flops
from fastconv.bench.cuda import machine, report_main, time_interleaved, why_not_runnable
from fastconv.bench.harness import load_layers

LAYERS = ("resnet20_c32", "vgg_conv3", "resnet50_3x3", "pointwise", "conv5x5", "depthwise3x3")
GEMM_SIZE = 4096


def _layer_cases(layer_set, names):
    return [layer for layer in layer_set["conv2d"] if layer["name"] in names]


def _relative_error(ours, theirs):
    ours, theirs = backend.to_host(ours), theirs.detach().cpu().numpy()
    return float(np.abs(ours - theirs).max() / max(np.abs(theirs).max(), 1e-30))


def conv_case(layer, torch, repeats):
    """{algorithm: ms, ...} of one layer, with torch's, or the reason an algorithm was skipped."""
    from fastconv.cuda import conv as cuda_conv
    rng = np.random.default_rng(0)
    n, c, h, w_, k, r = (layer[key] for key in ("N", "C", "H", "W", "K", "R"))
    stride, pad, groups = layer["stride"], layer["pad"], layer.get("groups", 1)
    x_host = rng.standard_normal((n, c, h, w_)).astype(np.float32)
    w_host = (rng.standard_normal((k, c // groups, r, r)) / np.sqrt(c // groups * r * r)).astype(np.float32)
    x, w = backend.to_device(x_host, "cuda"), backend.to_device(w_host, "cuda")
    tx, tw = torch.from_numpy(x_host).cuda(), torch.from_numpy(w_host).cuda()
    options = dict(stride=stride, padding=pad, groups=groups)
    reference = torch.nn.functional.conv2d(tx, tw, **options)
    geometry = ((stride, stride), (pad, pad), (pad, pad), (1, 1), groups)
    runners, errors, skipped = {}, {}, {}
    for algo in (*cuda_conv.conv2d_algorithms(), "auto"):
        reason = None if algo == "auto" else cuda_conv.conv2d_unsupported_reason(algo, x.shape, w.shape, *geometry)
        if reason is not None:
            skipped[algo] = reason
            continue
        runners[algo] = lambda a=algo: ops.conv2d(x, w, None, algo=a, **options)
        errors[algo] = _relative_error(runners[algo](), reference)
    runners["torch"] = lambda: torch.nn.functional.conv2d(tx, tw, **options)
    ms = time_interleaved(runners, repeats)
    flops = conv_flops(layer, *reference.shape[2:])
    return {"case": layer["name"], "ms": ms, "tflops": {impl: flops / t / 1e9 for impl, t in ms.items()},
            "max_relative_error": errors, "skipped": skipped,
            "auto_chose": cuda_conv.conv2d_heuristic(x.shape, w.shape, *geometry)}


def gemm_case(repeats, size=GEMM_SIZE):
    from fastconv.cuda import gemm
    cupy = backend.array_module(backend.empty((1,), np.float32, "cuda"))
    rng = np.random.default_rng(0)
    a, b = (cupy.asarray(rng.standard_normal((size, size)).astype(np.float32)) for _ in range(2))
    reference = cupy.matmul(a, b)
    ours = gemm.matmul(a, b, algo="tiled")
    error = float(cupy.abs(ours - reference).max() / cupy.abs(reference).max())
    ms = time_interleaved({"tiled": lambda: gemm.matmul(a, b, algo="tiled"), "cublas": lambda: cupy.matmul(a, b)},
                          repeats)
    flops = 2.0 * size ** 3
    return {"case": f"sgemm {size}^3", "ms": ms, "tflops": {impl: flops / t / 1e9 for impl, t in ms.items()},
            "max_relative_error": {"tiled": error}}


def run(repeats, layer_set=None):
    reason = why_not_runnable()
    if reason is not None:
        return {"skipped": reason}
    import torch
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    results = [gemm_case(repeats)]
    print(_line(results[-1]), flush=True)
    for layer in _layer_cases(layer_set or load_layers(), LAYERS):
        results.append(conv_case(layer, torch, repeats))
        print(_line(results[-1]), flush=True)
    return {"machine": machine(), "torch": torch.__version__, "cudnn": torch.backends.cudnn.version(),
            "cases": results}


def _line(result):
    figures = ", ".join(f"{impl} {t:.3f} ms ({result['tflops'][impl]:.1f} TFLOP/s)" for impl, t in result["ms"].items())
    return f"{result['case']}: {figures}"


def main(argv=None):
    report_main(argv, "python -m fastconv.bench.cuda_conv", __doc__.split("\n\n")[0], run, 10)
    return 0

if __name__ == "__main__":
    sys.exit(main())
