"""fastconv-bench: run the benchmark layer set for fastconv and every peer found, in one run.

    fastconv-bench                     # the built-in layer set (a copy of shared/bench/layers.json)
    fastconv-bench --layers FILE --json out.json --plot out.png --only resnet20 --threads 2
    fastconv-bench --section models    # ResNet-20 train step and inference vs PyTorch
"""
import argparse
import json
import os
import sys
import time
from importlib import resources

SECTIONS = {"gemm": "fastconv.bench.gemm", "conv2d": "fastconv.bench.conv", "sampling": "fastconv.bench.sampling",
            "norm_pool": "fastconv.bench.norm_pool", "models": "fastconv.bench.models"}


def _prepare_blas_environment():
    """numpy's OpenBLAS reads its settings once, at import, so the bench re-executes itself once
    with them fixed:
    - without OPENBLAS_CORETYPE/L2_SIZE, which slow it on this machine's CPUs (a peer should
      run at its best);
    - with OPENBLAS_THREAD_TIMEOUT=4: after each call OpenBLAS's workers spin for 2^28 cycles
      (~0.1 s) by default, holding the cores while the next runner in the interleaved rotation
      runs; whatever followed numpy measured 1.2-1.9x slower than the same code elsewhere in
      the round. A short timeout costs numpy a thread wake-up (microseconds) per call."""
    drop = [n for n in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if n in os.environ]
    if (drop or "OPENBLAS_THREAD_TIMEOUT" not in os.environ) and os.environ.get("FASTCONV_BENCH_REEXEC") != "1":
        env = {k: v for k, v in os.environ.items() if k not in drop}
        env.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
        env["FASTCONV_BENCH_REEXEC"] = "1"
        os.execve(sys.executable, [sys.executable, "-m", "fastconv.bench", *sys.argv[1:]], env)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="fastconv-bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--layers", help="layer set JSON (default: the copy shipped in the package)")
    p.add_argument("--threads", type=int, default=2, help="threads for fastconv and every peer (default 2)")
    p.add_argument("--only", nargs="*", default=[], help="run layers whose name contains one of these")
    p.add_argument("--section", nargs="*", default=list(SECTIONS), choices=list(SECTIONS))
    p.add_argument("--mode", nargs="*", default=["fwd", "fwd+bwd"], choices=["fwd", "fwd+bwd"])
    p.add_argument("--repeats", type=int, default=7, help="timed rounds per case (median reported)")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--plot", help="write a PNG bar chart here (needs matplotlib)")
    return p.parse_args(argv)


def load_layers(path):
    if path:
        with open(path) as f:
            return json.load(f)
    return json.loads(resources.files("fastconv.bench").joinpath("layers.json").read_text())


def main(argv=None):
    if argv is None:  # run as a command: the process is ours to re-execute
        _prepare_blas_environment()
    args = parse_args(sys.argv[1:] if argv is None else argv)
    import importlib

    import fastconv
    from fastconv.bench import harness, peers

    fastconv.set_num_threads(args.threads)
    torch = peers.load_torch(args.threads)
    blas_note = peers.limit_numpy_threads(args.threads)
    machine = harness.Machine.probe(args.threads)
    layers = load_layers(args.layers)

    print(f"fastconv {fastconv.__version__} | {machine.description} | {args.threads} threads")
    print(f"peers: torch {torch.__version__ + ' (CPU, oneDNN)' if torch else 'not installed'}; {blas_note}")
    print(f"machine: FMA peak {machine.peak_gflops:.0f} GFLOP/s (float32, measured now, probed again "
          f"after each case; %peak uses the highest); copy {machine.copy_gbs:.1f} GB/s (read + write)")
    print("ratios: peer time / fastconv time, same process, interleaved runs, median; > 1 is faster\n")

    cases = []
    for section in args.section:
        module = importlib.import_module(SECTIONS[section])
        cases += [c for c in module.cases(layers, torch)
                  if c.mode in args.mode and (not args.only or any(o in c.name for o in args.only))]
    results = []
    start = time.perf_counter()
    live = sys.stderr.isatty()  # rewrite one progress line on a terminal, else log a line per case
    for i, case in enumerate(cases, 1):
        line = f"[{i}/{len(cases)}] {case.name} {case.mode} ({time.perf_counter() - start:.0f} s)"
        print("\r" + line if live else line, end="" if live else "\n", file=sys.stderr, flush=True)
        results.append(harness.Result(case, harness.time_interleaved(case.runners, repeats=args.repeats)))
        machine.probe_peak_again()
    if live:
        print("\r" + " " * 70 + "\r", end="", file=sys.stderr)
    print(f"FMA peak, highest of the probes: {machine.peak_gflops:.0f} GFLOP/s")
    print(harness.format_table(results, machine))

    print("\nmedian ratios (fastconv vs peer):")
    peer_names = sorted({n for r in results for n in r.seconds if n not in r.case.ours})
    for mode in args.mode:
        for peer in peer_names:
            ratio, count = harness.summarise(results, "fastconv", peer, mode)
            if ratio is not None:
                print(f"  {mode:8} vs {peer:10} {ratio:5.2f}x over {count} cases")
    if args.json:
        harness.write_json(args.json, results, machine)
        print(f"wrote {args.json}")
    if args.plot:
        try:
            harness.write_plot(args.plot, results, peer_names)
            print(f"wrote {args.plot}")
        except ImportError:
            print("--plot needs matplotlib; no plot written")


if __name__ == "__main__":
    main()
