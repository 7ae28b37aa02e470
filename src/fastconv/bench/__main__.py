"""fastconv-bench: time fastconv's kernels against every peer found (PyTorch CPU, torchvision,
numpy), in one process, interleaved, and print one table of times and speed ratios.

    fastconv-bench                                 # every section on the built-in layer set
    fastconv-bench --section conv --only resnet20  # the conv layers whose name has "resnet20"
    fastconv-bench --json out.json --plot out.png  # also keep the figures and a bar chart
    fastconv-bench --quick                         # a few seconds: one small layer per family

Sections, one per kernel family: gemm, conv, conv_transpose, roi, sampling, norm, pool, and
models (ResNet-20's training step and inference). A full run takes many minutes; --only and
--section pick a few layers.
"""
import argparse
import importlib.util
import os
import sys
import tempfile
import time

import fastconv
from fastconv.bench import harness, peers
from fastconv.cli import ArgumentParser, existing_folder_of, positive_int


def _prepare_blas_environment():
    """numpy's OpenBLAS reads its settings once, at import, so the bench re-executes itself once
    with them fixed:
    - without OPENBLAS_CORETYPE/L2_SIZE, which slow it on this machine's CPUs (a peer should
      run at its best), unless FASTCONV_ISA holds fastconv to a lower level: then they hold
      OpenBLAS to the same (FASTCONV_ISA=avx2 OPENBLAS_CORETYPE=Haswell: an AVX2 machine's
      figures on an AVX-512 one, as ATEN_CPU_CAPABILITY and ONEDNN_MAX_CPU_ISA do for torch);
    - with OPENBLAS_THREAD_TIMEOUT=4: after each call OpenBLAS's workers spin for 2^28 cycles
      (~0.1 s) by default, holding the cores while the next runner in the interleaved rotation
      runs; whatever followed numpy measured 1.2-1.9x slower than the same code elsewhere in
      the round. A short timeout costs numpy a thread wake-up (microseconds) per call."""
    held = (os.environ.get("FASTCONV_ISA") or "avx512") != "avx512"
    drop = [n for n in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if n in os.environ and not held]
    if (drop or "OPENBLAS_THREAD_TIMEOUT" not in os.environ) and os.environ.get("FASTCONV_BENCH_REEXEC") != "1":
        env = {k: v for k, v in os.environ.items() if k not in drop}
        env.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
        env["FASTCONV_BENCH_REEXEC"] = "1"
        os.execve(sys.executable, [sys.executable, "-m", "fastconv.bench", *sys.argv[1:]], env)


def build_parser():
    p = ArgumentParser(prog="fastconv-bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--section", nargs="+", default=list(harness.SECTIONS), choices=harness.SECTIONS, metavar="NAME",
                   help=f"sections to run, of: {', '.join(harness.SECTIONS)} (default: all)")
    p.add_argument("--only", nargs="+", default=[], metavar="TEXT",
                   help="run only the layers whose name contains one of these")
    p.add_argument("--quick", action="store_true",
                   help="a smoke run of a few seconds: one small layer per family (layers_quick.json), "
                        "forward only, 3 rounds, 1 thread; the ratios are noisy at that size")
    p.add_argument("--mode", nargs="+", choices=["fwd", "fwd+bwd"],
                   help="forward alone, forward and backward, or both (default; forward only with --quick)")
    p.add_argument("--threads", type=positive_int, metavar="N",
                   help="threads for fastconv and every peer (default 2, 1 with --quick)")
    p.add_argument("--repeats", type=positive_int, metavar="N",
                   help="timed rounds per case; the median is reported (default 7, 3 with --quick)")
    p.add_argument("--layers", metavar="FILE",
                   help="layer set JSON (default: layers.json shipped in the package, layers_quick.json with --quick)")
    p.add_argument("--json", metavar="PATH", help="write the results here")
    p.add_argument("--plot", metavar="PATH", help="write a PNG of the speed ratios here (needs matplotlib)")
    p.add_argument("--roofline", metavar="PATH",
                   help="write a PNG of GFLOP/s against arithmetic intensity under the measured roof here")
    return p


def check_arguments(parser, args):
    """Every mistake on the command line ends the run here, before minutes of measuring: one
    line on stderr, exit status 2. Fills in the defaults that --quick changes. Returns the layer
    set and the [(section, layer)] to run."""
    if args.repeats is None:
        args.repeats = 3 if args.quick else 7
    if args.mode is None:
        args.mode = ["fwd"] if args.quick else ["fwd", "fwd+bwd"]
    if args.threads is None:  # kernels this small wait more on a second (busy) core than they gain
        args.threads = 1 if args.quick else 2
    try:
        layer_set = harness.load_layers(args.layers, quick=args.quick)
    except (OSError, ValueError) as e:
        parser.error(f"--layers {args.layers}: {e}")
    selected = harness.select_layers(args.section, layer_set, args.only)
    names = [layer["name"] for _, layer in harness.select_layers(args.section, layer_set)]
    for term in args.only:
        if not any(term in name for name in names):
            parser.error(f"--only {term}: no layer name contains it (sections {', '.join(args.section)}); "
                         f"the layers are {', '.join(names)}")
    for option in ("json", "plot"):
        path = getattr(args, option)
        if path is not None:
            existing_folder_of(parser, f"--{option}", path)
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        parser.error("--plot needs matplotlib: pip install matplotlib")
    return layer_set, selected


def status(text):
    """What the bench is doing while nothing else shows it; stderr, so stdout holds the report."""
    print(text, file=sys.stderr, flush=True)


def prepare_cases(parser, args, selected, torch):
    """[(section, case)] of the selected layers in the modes asked for."""
    cases = []
    for name in args.section:
        layers = [layer for section, layer in selected if section == name]
        if layers:
            status(f"preparing {name}: {len(layers)} layer{'s' if len(layers) > 1 else ''} "
                   f"(inputs, peers' copies, auto's choice of algorithm)...")
            module = harness.section(name)
            cases += [(name, case) for layer in layers for case in module.cases(layer, torch)
                      if case.mode in args.mode]
    if not cases:
        parser.error(f"no {' or '.join(args.mode)} case in the layers chosen")
    return cases


def print_report(results, machine, modes):
    print(f"FMA peak, highest of the probes: {machine.peak_gflops:.0f} GFLOP/s")
    print(harness.format_table(results, machine))
    print("\nmedian ratios (fastconv vs peer):")
    peer_names = sorted({n for r in results for n in r.seconds if n not in r.case.ours})
    for mode in modes:
        for peer in peer_names:
            ratio, count = harness.summarise(results, "fastconv", peer, mode)
            if ratio is not None:
                print(f"  {mode:8} vs {peer:10} {ratio:5.2f}x over {count} cases")
    for mode in modes:  # both on channels_last arrays
        ratio, count = harness.summarise(results, "fastconv_cl", "torch_cl", mode)
        if ratio is not None:
            print(f"  {mode:8} fastconv_cl vs torch_cl {ratio:5.2f}x over {count} cases (both channels_last)")


def main(argv=None):
    if argv is None:  # run as a command: the process is ours to re-execute
        _prepare_blas_environment()
    parser = build_parser()
    args = parser.parse_args(argv)
    _, selected = check_arguments(parser, args)

    fastconv.set_num_threads(args.threads)
    # auto's choices start from none on every run (not from the user's disk cache), so the
    # first call of each layer shows what choosing costs.
    os.environ["FASTCONV_CACHE_DIR"] = tempfile.mkdtemp(prefix="fastconv-bench-")
    status("loading torch (the main peer)...")
    torch = peers.load_torch(args.threads)
    blas_note = peers.limit_numpy_threads(args.threads)
    cases = prepare_cases(parser, args, selected, torch)
    status("probing the FMA peak and the copy bandwidth...")
    machine = harness.Machine.probe(args.threads)
    date = time.strftime("%Y-%m-%d %H:%M")
    print(f"fastconv {fastconv.__version__} | {machine.description} | {args.threads} threads | {date}")
    print(f"peers: torch {torch.__version__ + ' (CPU, oneDNN)' if torch else 'not installed'}; {blas_note}")
    print(f"machine: FMA peak {machine.peak_gflops:.0f} GFLOP/s (float32, measured now, probed again "
          f"after each case; %peak uses the highest); copy {machine.copy_gbs:.1f} GB/s (read + write)")
    print("ratios: peer time / fastconv time, same process, interleaved runs, median; > 1 is faster; "
          "spread: half the distance between the quartiles of the rounds, of the median\n", flush=True)

    progress = harness.Progress(len(cases))
    results = []
    for name, case in cases:
        progress.case(f"{name} {case.name} {case.mode}")
        results.append(harness.Result.from_samples(
            case, harness.time_interleaved_samples(case.runners, repeats=args.repeats)))
        machine.probe_peak_again()
    status(f"measured {len(cases)} cases in {time.perf_counter() - progress.start:.0f} s")

    print_report(results, machine, args.mode)
    if args.json:
        harness.write_json(args.json, results, machine, date)
        print(f"wrote the results to {os.path.abspath(args.json)}")
    if args.plot:
        try:
            harness.write_plot(args.plot, results, machine, date)
            print(f"wrote the plot to {os.path.abspath(args.plot)}")
        except ValueError as e:  # every case ran without a peer
            print(f"no plot written: {e}")
    if args.roofline:
        try:
            harness.write_roofline(args.roofline, results, machine, date)
            print(f"wrote the roofline to {os.path.abspath(args.roofline)}")
        except ValueError as e:  # no compute-bound case was run
            print(f"no roofline written: {e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
