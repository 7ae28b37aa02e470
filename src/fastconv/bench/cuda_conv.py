"""The GPU benchmark of conv2d and GEMM: each CUDA conv2d algorithm of fastconv (im2col, implicit,
winograd_2x3, winograd_4x3, depthwise, fft, and auto, which times the likely ones on its first
call and says which it chose) against PyTorch's cuDNN on a few layers of layers.json (each
algorithm on the layers it runs; the others are listed as skipped, with why), forward; the input
and weight gradients of the layers in GRADIENT_LAYERS, each gradient kernel (im2col's,
depthwise's, FFT's) against cuDNN's backward (torch.nn.grad); and fastconv's tiled GEMM against
cupy.matmul (cuBLAS) at 4096 x 4096 x 4096: exact float32, both in TF32, and float16.

    python -m fastconv.bench.cuda_conv OUT.json [--repeats 10]

float32 (but the TF32 and float16 GEMM lines), TF32 off on both sides (cuDNN may otherwise
multiply in TF32; cuBLAS through CuPy does not unless CUPY_TF32=1),
torch.backends.cudnn.benchmark=True (cuDNN picks its fastest algorithm per shape in the warm-up).
Timed with CUDA events, implementations interleaved, medians (fastconv.bench.cuda.time_interleaved);
each figure comes with its TFLOP/s. Each result is also
checked against torch's output (max relative error), so a fast wrong kernel shows. Where this
machine runs no CUDA, the JSON says why instead.
"""
import sys

import numpy as np

from fastconv import backend, ops
from fastconv.bench.conv import conv_flops
from fastconv.bench.cuda import machine, report_main, time_interleaved, why_not_runnable
from fastconv.bench.harness import load_layers
from fastconv.ops import conv_algo

LAYERS = ("resnet20_c32", "vgg_conv3", "resnet50_3x3", "pointwise", "conv5x5", "conv7x7_s1", "depthwise3x3")
GRADIENT_LAYERS = ("depthwise3x3", "conv7x7_s1")
# The CUDA algorithms with gradient kernels of their own (the others run im2col's).
GRADIENT_ALGORITHMS = ("im2col", "depthwise", "fft")
GEMM_SIZE = 4096


def _layer_cases(layer_set, names):
    return [layer for layer in layer_set["conv2d"] if layer["name"] in names]


def _relative_error(ours, theirs):
    ours, theirs = backend.to_host(ours), theirs.detach().cpu().numpy()
    return float(np.abs(ours - theirs).max() / max(np.abs(theirs).max(), 1e-30))


def _layer_arrays(layer, rng):
    """(input, weight) of a layer, float32, on the host: the weight scaled to keep outputs O(1)."""
    n, c, h, w, k, r = (layer[key] for key in ("N", "C", "H", "W", "K", "R"))
    groups = layer.get("groups", 1)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    weight = (rng.standard_normal((k, c // groups, r, r)) / np.sqrt(c // groups * r * r)).astype(np.float32)
    return x, weight


def _layer_options(layer):
    """(torch's conv2d keywords, fastconv.cuda.conv's geometry) of a layer."""
    stride, pad, groups = layer["stride"], layer["pad"], layer.get("groups", 1)
    return (dict(stride=stride, padding=pad, groups=groups),
            ((stride, stride), (pad, pad), (pad, pad), (1, 1), groups))


def _on_devices(torch, *host_arrays):
    """Each array as (fastconv CUDA array, torch CUDA tensor)."""
    return [(backend.to_device(a, "cuda"), torch.from_numpy(a).cuda()) for a in host_arrays]


def _result(name, ms, flops, errors, skipped):
    return {"case": name, "ms": ms, "tflops": {impl: flops / t / 1e9 for impl, t in ms.items()},
            "max_relative_error": errors, "skipped": skipped}


def _auto_choice(input_shape, weight_shape, geometry):
    """The algorithm fastconv.ops' timed algo="auto" chose for this layer's forward on CUDA in
    this process (fastconv.cuda.conv.conv2d_resolve's key), or None."""
    layer = (tuple(input_shape), tuple(weight_shape), geometry)
    return next((algo for key, algo in conv_algo.chosen().items()
                 if key[0] == "cuda" and key[2:5] == layer and key[-1] == "forward"), None)


def conv_case(layer, torch, repeats):
    """{algorithm: ms, ...} of one layer, with torch's, or the reason an algorithm was skipped."""
    from fastconv.cuda import conv as cuda_conv
    x_host, w_host = _layer_arrays(layer, np.random.default_rng(0))
    (x, tx), (w, tw) = _on_devices(torch, x_host, w_host)
    options, geometry = _layer_options(layer)
    reference = torch.nn.functional.conv2d(tx, tw, **options)
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
    return {**_result(layer["name"], ms, conv_flops(layer, *reference.shape[2:]), errors, skipped),
            "auto_rule": cuda_conv.conv2d_heuristic(x.shape, w.shape, *geometry),
            "auto_chose": _auto_choice(x.shape, w.shape, geometry)}


def gradient_case(layer, torch, repeats):
    """The input and weight gradients of one layer: {"<algorithm> input" / "<algorithm> weight":
    ms} of each gradient kernel that can run it, with cuDNN's ("torch input", "torch weight")."""
    from fastconv.cuda import conv as cuda_conv
    rng = np.random.default_rng(0)
    x_host, w_host = _layer_arrays(layer, rng)
    options, geometry = _layer_options(layer)
    out_shape = cuda_conv.conv2d_output_shape(x_host.shape, w_host.shape, *geometry)
    (x, tx), (w, tw), (dy, tdy) = _on_devices(torch, x_host, w_host,
                                              rng.standard_normal(out_shape).astype(np.float32))
    runners = {"torch input": lambda: torch.nn.grad.conv2d_input(tx.shape, tw, tdy, **options),
               "torch weight": lambda: torch.nn.grad.conv2d_weight(tx, tw.shape, tdy, **options)}
    references = {"input": runners["torch input"](), "weight": runners["torch weight"]()}
    errors, skipped = {}, {}
    for algo in GRADIENT_ALGORITHMS:
        reason = cuda_conv.conv2d_unsupported_reason(algo, x.shape, w.shape, *geometry)
        if reason is not None:
            skipped[algo] = reason
            continue
        runners[f"{algo} input"] = lambda a=algo: ops.conv2d_input(x.shape, w, dy, algo=a, **options)
        runners[f"{algo} weight"] = lambda a=algo: ops.conv2d_weight(x, w.shape, dy, algo=a, **options)
        for direction, reference in references.items():
            errors[f"{algo} {direction}"] = _relative_error(runners[f"{algo} {direction}"](), reference)
    ms = time_interleaved(runners, repeats)
    return _result(f"{layer['name']} gradients", ms, conv_flops(layer, *out_shape[2:]), errors, skipped)


def gemm_case(repeats, size=GEMM_SIZE, precision="float32"):
    """fastconv's tiled GEMM against cuBLAS at size^3 in one `precision`: "float32" (the SIMT
    kernel, cuBLAS's default compute type), "tf32" (the tensor-core TF32 kernel, cuBLAS's
    CUBLAS_COMPUTE_32F_FAST_TF32 through CuPy) or "float16" (the m16n8k16 kernel, cuBLAS with
    float32 compute); `tiled_vs_cublas` is cuBLAS's time over ours."""
    from fastconv.cuda import gemm
    cupy = backend.array_module(backend.empty((1,), np.float32, "cuda"))
    dtype = np.float16 if precision == "float16" else np.float32
    rng = np.random.default_rng(0)
    a, b = (cupy.asarray(rng.standard_normal((size, size)).astype(dtype)) for _ in range(2))
    reference = cupy.matmul(a.astype(np.float64), b.astype(np.float64))
    with gemm.allow_tf32(precision == "tf32"):
        ours = gemm.matmul(a, b, algo="tiled")
        theirs = gemm.matmul(a, b, algo="cublas")
        ms = time_interleaved({"tiled": lambda: gemm.matmul(a, b, algo="tiled"),
                               "cublas": lambda: gemm.matmul(a, b, algo="cublas")}, repeats)
    scale = float(cupy.abs(reference).max())
    errors = {impl: float(cupy.abs(c.astype(np.float64) - reference).max()) / scale
              for impl, c in (("tiled", ours), ("cublas", theirs))}
    flops = 2.0 * size ** 3
    return {"case": f"gemm {precision} {size}^3", "ms": ms,
            "tflops": {impl: flops / t / 1e9 for impl, t in ms.items()},
            "tiled_vs_cublas": ms["cublas"] / ms["tiled"], "max_relative_error": errors}


def run(repeats, layer_set=None):
    reason = why_not_runnable()
    if reason is not None:
        return {"skipped": reason}
    import torch
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    results = []
    for precision in ("float32", "tf32", "float16"):  # targets: float32 >= 0.7 of cuBLAS, TF32 >= 0.5
        results.append(gemm_case(repeats, precision=precision))
        print(_line(results[-1]), flush=True)
    layer_set = layer_set or load_layers()
    for layer in _layer_cases(layer_set, LAYERS):
        results.append(conv_case(layer, torch, repeats))
        print(_line(results[-1]), flush=True)
    for layer in _layer_cases(layer_set, GRADIENT_LAYERS):
        results.append(gradient_case(layer, torch, repeats))
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
