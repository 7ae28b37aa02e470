"""The GPU benchmark: fastconv's CUDA kernels against PyTorch's on the same GPU, per family
(batch norm, pooling, roi_align, grid_sample, interpolate), forward and forward+backward.

    python -m fastconv.bench.cuda OUT.json [--repeats 15]

Timed with CUDA events around each call, implementations interleaved (ours, torch, ours, ...)
after a warm-up, reported as medians. Each case also reports its GB/s (the least bytes it must
move: inputs read once, outputs written once) beside a device-to-device copy's GB/s, so a figure
reads as a fraction of what the memory can do. Where fastconv has no CUDA kernel for a family
yet, or this machine runs no CUDA, the JSON says so with the reason instead of a figure.
"""
import argparse
import json
import platform
import statistics
import sys

import numpy as np

from fastconv import backend, ops
from fastconv.bench.peers import backward_fresh

COPY_BYTES = 256 << 20


def _cupy():
    import cupy
    return cupy


def time_interleaved(runners, repeats, warmup=3):
    """{name: median milliseconds} of each runner, timed with CUDA events, interleaved."""
    cupy = _cupy()
    for _ in range(warmup):
        for run in runners.values():
            run()
    cupy.cuda.Device().synchronize()
    times = {name: [] for name in runners}
    start, end = cupy.cuda.Event(), cupy.cuda.Event()
    for _ in range(repeats):
        for name, run in runners.items():
            start.record()
            run()
            end.record()
            end.synchronize()
            times[name].append(cupy.cuda.get_elapsed_time(start, end))
    return {name: statistics.median(values) for name, values in times.items()}


def copy_gbps(repeats):
    """A device-to-device copy's GB/s (bytes read + bytes written): the memory's practical peak."""
    cupy = _cupy()
    source = cupy.ones(COPY_BYTES // 4, np.float32)
    target = cupy.empty_like(source)
    ms = time_interleaved({"copy": lambda: cupy.copyto(target, source)}, repeats)["copy"]
    return 2 * COPY_BYTES / ms / 1e6


def _device(rng, shape, dtype=np.float32):
    return backend.to_device(rng.standard_normal(shape).astype(dtype), "cuda")


def _torch(torch, array):
    return torch.from_dlpack(array)


def norm_cases(rng, torch):
    shape = (32, 64, 56, 56)
    x, gy = _device(rng, shape), _device(rng, shape)
    c = shape[1]
    gamma, beta = backend.to_device(np.ones(c, np.float32), "cuda"), backend.to_device(np.zeros(c, np.float32), "cuda")
    rm, rv = backend.to_device(np.zeros(c, np.float32), "cuda"), backend.to_device(np.ones(c, np.float32), "cuda")
    tx, tgy = _torch(torch, x), _torch(torch, gy)
    tparams = [_torch(torch, a) for a in (rm, rv, gamma, beta)]
    tx_grad = tx.clone().requires_grad_(True)
    F = torch.nn.functional

    def ours_step():
        y, mean, invstd = ops.batch_norm(x, rm, rv, gamma, beta, training=True, relu=True)
        ops.batch_norm_backward(gy, x, mean, invstd, gamma, training=True, output=y, relu=True)

    def torch_step():
        backward_fresh(F.relu(F.batch_norm(tx_grad, *tparams, training=True)), tgy, tx_grad)

    nbytes = x.nbytes
    yield ("norm", "batch_norm_relu forward 32x64x56x56", 2 * nbytes,
           {"fastconv": lambda: ops.batch_norm(x, rm, rv, gamma, beta, training=True, relu=True),
            "torch": lambda: F.relu(F.batch_norm(tx, *tparams, training=True))})
    # forward: read x, write y; backward: read grad_y, x, y, write grad_x
    yield ("norm", "batch_norm_relu forward+backward 32x64x56x56", 6 * nbytes,
           {"fastconv": ours_step, "torch": torch_step})


def pool_cases(rng, torch):
    F = torch.nn.functional
    x = _device(rng, (32, 64, 112, 112))
    tx = _torch(torch, x)
    y, idx = ops.max_pool2d(x, 3, 2, 1, return_indices=True)
    gy = _device(rng, y.shape)
    ty, tidx = F.max_pool2d(tx, 3, 2, 1, return_indices=True)
    tgy = _torch(torch, gy)
    yield ("pool", "max_pool2d 3x3/2 forward 32x64x112x112", x.nbytes + y.nbytes + idx.nbytes,
           {"fastconv": lambda: ops.max_pool2d(x, 3, 2, 1, return_indices=True),
            "torch": lambda: F.max_pool2d(tx, 3, 2, 1, return_indices=True)})
    yield ("pool", "max_pool2d 3x3/2 backward 32x64x112x112", gy.nbytes + idx.nbytes + x.nbytes,
           {"fastconv": lambda: ops.max_pool2d_backward(gy, x.shape, idx, check_indices=False),
            "torch": lambda: torch.ops.aten.max_pool2d_with_indices_backward(tgy, tx, [3, 3], [2, 2], [1, 1], [1, 1],
                                                                              False, tidx)})
    ya = ops.avg_pool2d(x, 2)
    yield ("pool", "avg_pool2d 2x2/2 forward 32x64x112x112", x.nbytes + ya.nbytes,
           {"fastconv": lambda: ops.avg_pool2d(x, 2), "torch": lambda: F.avg_pool2d(tx, 2)})
    small = _device(rng, (128, 512, 7, 7))
    tsmall = _torch(torch, small)
    yield ("pool", "adaptive_avg_pool2d ->1x1 forward 128x512x7x7", small.nbytes,
           {"fastconv": lambda: ops.adaptive_avg_pool2d(small, 1), "torch": lambda: F.adaptive_avg_pool2d(tsmall, 1)})


def roi_cases(rng, torch):
    x = _device(rng, (2, 256, 64, 64))
    k = 512
    corners = np.sort(rng.uniform(0, 60, (k, 2, 2)), axis=1).reshape(k, 4)
    boxes = np.concatenate([rng.integers(0, 2, (k, 1)), corners], axis=1).astype(np.float32)
    boxes = backend.to_device(boxes, "cuda")
    out_bytes = k * 256 * 7 * 7 * 4
    runners = {"fastconv": lambda: ops.roi_align(x, boxes, 7, 1.0, 2, True)}
    try:
        import torchvision
        tx, tboxes = _torch(torch, x), _torch(torch, boxes)
        runners["torch"] = lambda: torchvision.ops.roi_align(tx, tboxes, 7, 1.0, 2, True)
    except ImportError:
        pass
    yield ("roi", "roi_align 7x7 forward 512 boxes on 2x256x64x64", out_bytes, runners)


def sampling_cases(rng, torch):
    F = torch.nn.functional
    x = _device(rng, (8, 32, 64, 64))
    grid = backend.to_device(rng.uniform(-1, 1, (8, 64, 64, 2)).astype(np.float32), "cuda")
    tx, tgrid = _torch(torch, x), _torch(torch, grid)
    yield ("sampling", "grid_sample bilinear forward 8x32x64x64", x.nbytes * 2 + grid.nbytes,
           {"fastconv": lambda: ops.grid_sample(x, grid, align_corners=False),
            "torch": lambda: F.grid_sample(tx, tgrid, align_corners=False)})
    yield ("sampling", "interpolate bilinear 2x forward 8x32x64x64", x.nbytes * 5,
           {"fastconv": lambda: ops.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False),
            "torch": lambda: F.interpolate(tx, scale_factor=2, mode="bilinear", align_corners=False)})


FAMILIES = (norm_cases, pool_cases, roi_cases, sampling_cases)


def run_case(family, name, nbytes, runners, repeats):
    """One case's figures, or the reason it could not run (no CUDA kernel for the family yet)."""
    try:
        for run in runners.values():
            run()  # a missing kernel fails here, before any timing
        ms = time_interleaved(runners, repeats)
    except backend.DeviceError as exc:
        return {"family": family, "case": name, "skipped": str(exc)}
    except Exception as exc:  # one broken case must not lose the others' figures
        return {"family": family, "case": name, "failed": f"{type(exc).__name__}: {exc}"}
    figures = {"family": family, "case": name, "bytes": nbytes, "ms": ms,
               "gbps": {impl: nbytes / t / 1e6 for impl, t in ms.items()}}
    if "torch" in ms:
        figures["speedup_vs_torch"] = ms["torch"] / ms["fastconv"]
    return figures


def _family_results(family, rng, torch, repeats):
    """The results of one family's cases, or one entry saying why its cases could not be made."""
    name = family.__name__[:-len("_cases")]
    try:
        cases = list(family(rng, torch))
    except backend.DeviceError as exc:  # the cases' own setup needs the missing kernel
        return [{"family": name, "skipped": str(exc)}]
    except Exception as exc:
        return [{"family": name, "failed": f"{type(exc).__name__}: {exc}"}]
    return [run_case(*case, repeats) for case in cases]


def machine():
    cupy = _cupy()
    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    return {"gpu": props["name"].decode() if isinstance(props["name"], bytes) else props["name"],
            "cupy": cupy.__version__, "python": platform.python_version()}


def why_not_runnable():
    """None where the GPU benchmarks can run (fastconv's CUDA kernels and a CUDA build of torch,
    their peer, both see a GPU), else the reason."""
    devices, why_not = backend.kernel_devices()
    if "cuda" not in devices:
        return f"no CUDA here: {why_not}"
    try:
        import torch
    except ImportError:
        return "PyTorch is not installed: the GPU benchmark's peer"
    if not torch.cuda.is_available():
        return "torch sees no GPU (a CPU build of PyTorch?)"
    return None


def run(repeats):
    """The report as a dict: the machine, the copy's GB/s, and each case's figures or reason."""
    reason = why_not_runnable()
    if reason is not None:
        return {"skipped": reason}
    import torch
    rng = np.random.default_rng(0)
    results = []
    for family in FAMILIES:
        for result in _family_results(family, rng, torch, repeats):
            print(_line(result), flush=True)
            results.append(result)
    return {"machine": machine(), "copy_gbps": copy_gbps(repeats), "torch": torch.__version__, "cases": results}


def _line(result):
    for outcome in ("skipped", "failed"):
        if outcome in result:
            return f"{result.get('case', result['family'])}: {outcome} ({result[outcome]})"
    ms = result["ms"]
    parts = [f"{impl} {t:.3f} ms ({result['gbps'][impl]:.0f} GB/s)" for impl, t in ms.items()]
    return f"{result['case']}: " + ", ".join(parts)


def report_main(argv, prog, description, run, default_repeats):
    """The command line of a GPU benchmark module: `prog OUT.json [--repeats N]` runs
    run(repeats), says why when the GPU part was skipped, writes the report; returns it."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("out", help="where to write the JSON report")
    parser.add_argument("--repeats", type=int, default=default_repeats,
                        help="timed calls per implementation (median)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats: must be >= 1")
    report = run(args.repeats)
    if "skipped" in report:
        print(f"{prog}: skipped: {report['skipped']}")
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
    return report


def main(argv=None):
    report = report_main(argv, "python -m fastconv.bench.cuda", __doc__.split("\n\n")[0], run, 15)
    if "skipped" not in report:
        print(f"device copy: {report['copy_gbps']:.0f} GB/s on {report['machine']['gpu']}")
    return 0

if __name__ == "__main__":
    sys.exit(main())
