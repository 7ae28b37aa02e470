"""What calling a kernel through fastconv.torch costs over calling it bare: the per-call
overhead of the torch operator (dispatch, the zero-copy tensor <-> array crossings, the
autograd node when an input requires grad), in microseconds, on inputs so small that the kernel
itself takes little time.

    python -m fastconv.bench.torch_overhead [--threads 1] [--calls 2000]

Each row times, interleaved in one process, rounds of `calls` calls each and keeps each runner's
fastest round: the overhead is a property of the code path, and on a shared machine the other
tenants only ever add to it (medians of microsecond calls there mostly measure the neighbours).
Rounds are timed in the process's CPU time (time.process_time), which the time the process
spends waiting for a core does not inflate.
  bare       fastconv.ops.<op> on numpy arrays (the kernel plus fastconv's argument checks)
  torch op   fastconv.torch.functional.<op> on tensors that need no gradient
  +autograd  the same with an input that requires grad (the forward only: the graph node's cost)
  torch      torch's own kernel, for scale
"""
import argparse
import time

import numpy as np

import fastconv
from fastconv import ops
from fastconv.bench.peers import load_torch


def _cases(torch):
    """(name, bare call on arrays, fastconv.torch call, torch call, the input arrays)."""
    import fastconv.torch as fct
    F, tF = fct.functional, torch.nn.functional
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 4, 8, 8), dtype=np.float32)
    w = rng.standard_normal((4, 4, 3, 3), dtype=np.float32)
    return [
        ("max_pool2d 1x4x8x8", lambda x: ops.max_pool2d(x, 2), lambda x: F.max_pool2d(x, 2),
         lambda x: tF.max_pool2d(x, 2), (x,)),
        ("conv2d 1x4x8x8, 3x3 direct", lambda x, w: ops.conv2d(x, w, padding=1, algo="direct"),
         lambda x, w: F.conv2d(x, w, padding=1, algo="direct"), lambda x, w: tF.conv2d(x, w, padding=1), (x, w)),
    ]


def _repeated(fn, args, calls):
    def run():
        for _ in range(calls):
            fn(*args)
    return run


def fastest_rounds(runners, rounds, clock=time.process_time):
    """Seconds of each runner's fastest round, the runners taking turns round by round."""
    for run in runners.values():
        run()  # warm-up
    best = dict.fromkeys(runners, float("inf"))
    for _ in range(rounds):
        for name, run in runners.items():
            start = clock()
            run()
            best[name] = min(best[name], clock() - start)
    return best


def measure(torch, calls=2000, rounds=15):
    """[(case name, {runner: microseconds per call})]."""
    rows = []
    for name, bare, ours, theirs, arrays in _cases(torch):
        tensors = [torch.from_numpy(a) for a in arrays]
        needs_grad = [tensors[0].clone().requires_grad_()] + tensors[1:]
        runners = {"bare": _repeated(bare, arrays, calls), "torch op": _repeated(ours, tensors, calls),
                   "+autograd": _repeated(ours, needs_grad, calls), "torch": _repeated(theirs, tensors, calls)}
        seconds = fastest_rounds(runners, rounds)
        rows.append((name, {runner: s / calls * 1e6 for runner, s in seconds.items()}))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fastconv.bench.torch_overhead", description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="threads for fastconv and torch (default 1)")
    parser.add_argument("--calls", type=int, default=2000, help="calls per timed round (default 2000)")
    args = parser.parse_args(argv)
    torch = load_torch(args.threads)
    if torch is None:
        parser.exit(1, "torch is not installed: pip install \"fastconv[torch]\"\n")
    fastconv.set_num_threads(args.threads)
    print(f"per call, microseconds of CPU time ({args.threads} thread(s), fastest of 15 rounds of {args.calls} calls)")
    print(f"{'case':30} {'bare':>8} {'torch op':>9} {'+autograd':>10} {'torch':>8} {'overhead':>9}")
    for name, us in measure(torch, args.calls):
        print(f"{name:30} {us['bare']:8.2f} {us['torch op']:9.2f} {us['+autograd']:10.2f} {us['torch']:8.2f} "
              f"{us['torch op'] - us['bare']:9.2f}")


if __name__ == "__main__":
    main()
