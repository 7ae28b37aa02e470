"""Timing and reporting shared by every benchmark section.

Rules (the machines are noisy): every implementation of a case is timed in the same process,
interleaved (ours, peer, ours, peer, ...), after a warm-up, and reported as a median; figures
are ratios against peers measured in that same run.

A section is the module fastconv.bench.<family> (SECTIONS): its `layers(layer_set)` picks the
entries of the layer set (layers.json) it measures, and its `cases(layer, torch)` turns one
entry into Cases, a forward and usually a forward+backward one.
"""
import dataclasses
import importlib
import json
import sys
import time
from importlib import resources
from typing import Callable, Dict, List, Optional

import numpy as np

from fastconv import _C
from fastconv._runtime import cpu_model
from fastconv.ops import conv_algo

# One per kernel family (the order of a full run), and the whole network last.
SECTIONS = ("gemm", "conv", "conv_transpose", "roi", "sampling", "norm", "pool", "models")


def section(name):
    """The module that measures family `name`."""
    if name not in SECTIONS:
        raise ValueError(f"unknown benchmark section {name!r}; expected one of {', '.join(SECTIONS)}")
    return importlib.import_module(f"fastconv.bench.{name}")


def load_layers(path=None, quick=False):
    """The layer set: the JSON file at `path`, or the one shipped in the package (layers.json, or
    with `quick` layers_quick.json: one small layer per family, for a run of a few seconds)."""
    if path:
        with open(path) as f:
            return json.load(f)
    shipped = "layers_quick.json" if quick else "layers.json"
    return json.loads(resources.files("fastconv.bench").joinpath(shipped).read_text())


def select_layers(sections, layer_set, only=()):
    """[(section name, layer)] of `sections`, in order, keeping the layers whose name contains one
    of the strings in `only` (every layer when it is empty)."""
    return [(name, layer) for name in sections for layer in section(name).layers(layer_set)
            if not only or any(term in layer["name"] for term in only)]


def section_cases(name, layer_set, torch):
    """Every case of section `name`, built one layer after another."""
    module = section(name)
    for layer in module.layers(layer_set):
        yield from module.cases(layer, torch)


@dataclasses.dataclass
class Case:
    name: str                          # layer name from layers.json
    mode: str                          # "fwd" or "fwd+bwd"
    runners: Dict[str, Callable[[], object]]  # implementation name -> zero-argument call
    ours: List[str]                    # which runners are fastconv's (the rest are peers); the
                                       # first is what a user gets by default (algo "auto")
    flops: Optional[float] = None      # direct-convolution FLOPs, for compute-bound kernels
    bytes: Optional[float] = None      # bytes moved at least once: the rate of memory-bound
                                       # kernels; beside flops, the roofline's intensity
    extra: Dict[str, str] = dataclasses.field(default_factory=dict)  # notes printed after the row


@dataclasses.dataclass
class Result:
    case: Case
    seconds: Dict[str, float]          # median per runner
    # per runner, the quartiles' distance from the median over the rounds, relative to the
    # median (0.05: half the rounds within -5%..+5%): how much a figure can be trusted
    spread: Dict[str, float] = dataclasses.field(default_factory=dict)

    @staticmethod
    def from_samples(case, samples):
        seconds = {name: float(np.median(s)) for name, s in samples.items()}
        spread = {name: float(np.subtract(*np.percentile(s, [75, 25])) / 2 / seconds[name])
                  for name, s in samples.items() if seconds[name] > 0}
        return Result(case, seconds, spread)

    def ratio(self, ours, peer):
        """> 1: ours is faster than the peer."""
        return self.seconds[peer] / self.seconds[ours]


def settle(run, limit=200):
    """Calls run() until a call runs no algorithm on trial: algo="auto" chooses over a shape's
    first calls (ops/conv_algo.py), and a runner is timed on its chosen algorithms. Returns how
    many of the calls ran a trial."""
    return conv_algo.run_until_chosen(run, limit)[1]


def time_interleaved(runners, repeats=7, warmup=1, min_seconds=0.0):
    """Median seconds per runner; each round runs every runner once, in turn."""
    samples = time_interleaved_samples(runners, repeats, warmup, min_seconds)
    return {name: float(np.median(s)) for name, s in samples.items()}


def carryover_orders(n):
    """Orders of n runners, one per round, in which each runner follows every other within n
    rounds (n + 1 for an odd n): the rows of a Williams square (each row a rotation of 0, 1, n-1, 2, n-2, ...), whose
    n rows put every ordered pair side by side exactly once. An odd n takes the square of n + 1
    without its last runner: its n + 1 rows put every pair side by side once or twice."""
    m = n + n % 2
    first, low, high = [0], 1, m - 1
    while len(first) < m:
        first.append(low)
        low += 1
        if len(first) < m:
            first.append(high)
            high -= 1
    return [[v for v in ((u + shift) % m for u in first) if v < n] for shift in range(m)]


def time_interleaved_samples(runners, repeats=7, warmup=1, min_seconds=0.0):
    """Seconds of every round per runner; each round runs every runner once in turn, twice in a
    row, and times the second call: every runner is timed warm, right after a call of its own.
    Timing the first call of each would charge a runner for what the one before it left behind
    (caches full of another library's data, its threads): on resnet20_c32, 2 threads, the same
    Winograd call took 1.27 ms right after the peers and 0.83 ms after another fastconv call.
    Some of that outlasts one call: on resnet20_c16, Winograd's timed call took 1.11-1.16 ms
    after another fastconv runner, 1.23-1.27 ms after ONNX Runtime or torch, 1.52 ms after
    numpy. So each round's order is another row of carryover_orders, under which each runner
    follows every other in turn, where random draws repeat some and skip others. The rows are
    the same in every run."""
    for fn in runners.values():
        for _ in range(warmup - 1):
            fn()
        if warmup:
            settle(fn)  # the last warm-up call, and more while auto is choosing
    samples = {name: [] for name in runners}
    names = list(runners)
    orders = carryover_orders(len(names))
    rounds = 0
    start = time.perf_counter()
    while rounds < repeats or (time.perf_counter() - start < min_seconds and rounds < 10 * repeats):
        for i in orders[rounds % len(orders)]:
            fn = runners[names[i]]
            fn()
            t0 = time.perf_counter()
            fn()
            samples[names[i]].append(time.perf_counter() - t0)
        rounds += 1
    return samples


@dataclasses.dataclass
class Machine:
    threads: int
    peak_gflops: float       # measured FMA peak, float32, all threads: the highest probe so far
    copy_gbs: float          # measured copy bandwidth (read + write), all threads
    cpu: str                 # the processor's model name
    isa: str                 # the micro-kernel variant fastconv runs (avx512, avx2, generic)

    @property
    def description(self):
        return f"{self.cpu}, isa {self.isa}"

    def probe_peak_again(self):
        """Probes the FMA peak once more and keeps the highest reading. Another tenant running
        during the first probes had made it read 94-147 GFLOP/s instead of about 185, which
        inflated every %peak of the run; the peak is the most the machine has shown."""
        self.peak_gflops = max(self.peak_gflops, _C.fma_peak_gflops(False))

    @staticmethod
    def probe(threads):
        peak = max(_C.fma_peak_gflops(False) for _ in range(3))
        src = np.ones(128 << 20, np.uint8)
        dst = np.empty_like(src)
        _C.parallel_copy(src, dst)
        copy = min(_timed(lambda: _C.parallel_copy(src, dst)) for _ in range(5))
        return Machine(threads, peak, 2 * src.nbytes / copy / 1e9, cpu_model(), _C.isa())


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _fmt_ratio(x):
    return f"{x:5.2f}x"


def format_table(results: List[Result], machine: Machine) -> str:
    """One row per implementation of each case: time, throughput, and ours/peer ratios."""
    peers = []
    for r in results:
        for name in r.seconds:
            if name not in r.case.ours and name not in peers:
                peers.append(name)
    head = f"{'layer':22} {'mode':8} {'impl':22} {'ms':>9} {'spread':>7} {'rate':>14} {'%peak':>6}"
    head += "".join(f" {'vs ' + p:>12}" for p in peers)
    lines = [head, "-" * len(head)]
    for r in results:
        for name, sec in r.seconds.items():
            if r.case.flops:
                rate = f"{r.case.flops / sec / 1e9:8.1f} GFLOP/s"
                peak = f"{100 * r.case.flops / sec / 1e9 / machine.peak_gflops:5.0f}%"
            elif r.case.bytes:
                rate = f"{r.case.bytes / sec / 1e9:9.1f} GB/s"
                peak = f"{100 * r.case.bytes / sec / 1e9 / machine.copy_gbs:5.0f}%"
            else:
                rate, peak = "", ""
            spread = f"±{100 * r.spread[name]:.0f}%" if name in r.spread else ""
            row = f"{r.case.name:22} {r.case.mode:8} {name:22} {sec * 1e3:9.3f} {spread:>7} {rate:>14} {peak:>6}"
            if name in r.case.ours:
                row += "".join(f" {_fmt_ratio(r.ratio(name, p)) if p in r.seconds else '':>12}" for p in peers)
            lines.append(row)
        for key, value in r.case.extra.items():
            lines.append(f"{'':22} {'':8} {key}: {value}")
    return "\n".join(lines)


def summarise(results: List[Result], ours: str, peer: str, mode: str):
    """Median ratio of `ours` over `peer` for the cases of one mode that have both."""
    ratios = [r.ratio(ours, peer) for r in results
              if r.case.mode == mode and ours in r.seconds and peer in r.seconds]
    return (float(np.median(ratios)), len(ratios)) if ratios else (None, 0)


def to_json(results: List[Result], machine: Machine, date: str):
    return {
        "machine": {**dataclasses.asdict(machine), "description": machine.description},
        "date": date,
        "python": sys.version.split()[0],
        "results": [
            {"name": r.case.name, "mode": r.case.mode, "flops": r.case.flops, "bytes": r.case.bytes,
             "ours": r.case.ours, "seconds": r.seconds, "spread": r.spread, "extra": r.case.extra}
            for r in results
        ],
    }


def write_json(path, results, machine, date):
    with open(path, "w") as f:
        json.dump(to_json(results, machine, date), f, indent=1)


def _clock(seconds):
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes}:{seconds:02d}"


class Progress:
    """One plain line per case as it starts: its number, its name, the time since the first
    case and the time the rest should take at the mean pace so far. No carriage returns or
    other control characters, so it reads the same on a terminal, through a pipe and in a log."""

    def __init__(self, total, stream=None, clock=time.perf_counter):
        self.total, self.done = total, 0
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self.start = clock()

    def case(self, label):
        """Reports that case `label` starts; each call counts the previous case as finished."""
        elapsed = self.clock() - self.start
        eta = _clock(elapsed / self.done * (self.total - self.done)) if self.done else "-:--"
        width = len(str(self.total))
        print(f"[{self.done + 1:{width}}/{self.total}] {label:40} elapsed {_clock(elapsed)}  ETA {eta}",
              file=self.stream, flush=True)
        self.done += 1


def plot_series(results: List[Result]):
    """What the plot shows: {mode: [(case name, {peer: (auto's ratio, best algorithm's ratio or None)})]}.

    Auto (ours[0]) is what a user gets; where a case times several of our algorithms, the best
    of them shows how far auto's choice is from the fastest one measured. Ratios are peer time
    / our time (> 1: ours is faster). Only the peers a case was measured against appear, and a
    case with none is left out.
    """
    series = {}
    for r in results:
        ours = [name for name in r.case.ours if name in r.seconds]
        peers = [name for name in r.seconds if name not in r.case.ours]
        if not ours or not peers:
            continue
        best = min(ours, key=r.seconds.get) if len(ours) > 1 else None
        ratios = {p: (r.ratio(ours[0], p), r.ratio(best, p) if best else None) for p in peers}
        series.setdefault(r.case.mode, []).append((r.case.name, ratios))
    return series


def plot_title(machine: Machine, date: str):
    return (f"fastconv (auto) vs each peer: peer time / fastconv time, > 1 is faster\n"
            f"{machine.cpu}, isa {machine.isa}, {machine.threads} threads, {date}")


def write_plot(path, results: List[Result], machine: Machine, date: str):
    """A bar per (case, peer) from 1 to auto's speed ratio on a log axis (2x faster and 2x
    slower are the same length), a tick at the best algorithm's ratio; one panel per mode.
    Needs matplotlib."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed to write a PNG
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    series = plot_series(results)
    if not series:
        raise ValueError("no case was measured against a peer: nothing to plot")
    peers = sorted({p for rows in series.values() for _, ratios in rows for p in ratios})
    colours = dict(zip(peers, plt.get_cmap("tab10").colors))
    most_bars = max(sum(len(ratios) for _, ratios in rows) for rows in series.values())
    fig, axes = plt.subplots(len(series), 1, figsize=(max(8, 3 + 0.32 * most_bars), 1.6 + 3.6 * len(series)),
                             squeeze=False)
    for ax, (mode, rows) in zip(axes[:, 0], series.items()):
        position, centres = 0.0, []
        for name, ratios in rows:
            first = position
            for peer, (auto, best) in ratios.items():
                ax.bar(position, auto - 1, 0.9, bottom=1, color=colours[peer], label=f"vs {peer}")
                if best is not None:
                    ax.plot([position - 0.45, position + 0.45], [best, best], color="black", linewidth=1.5,
                            label="best fastconv algorithm measured")
                ax.annotate(f"{auto:.2f}", (position, auto), textcoords="offset points",
                            xytext=(0, 2 if auto >= 1 else -8), ha="center", fontsize=6)
                position += 1
            centres.append((first + position - 1) / 2)
            position += 0.8  # the gap between cases
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1, 2, 5)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        low, high = ax.get_ylim()
        ax.set_ylim(min(low, 0.5), max(high, 2))  # 2x slower and 2x faster always on the scale
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks(centres)
        ax.set_xticklabels([name for name, _ in rows], rotation=45, ha="right", fontsize=7)
        ax.set_xlim(-0.8, position - 0.2)
        ax.set_ylabel(f"{mode}: speed ratio")
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles))  # every bar repeats its peer's label; one entry each
        ax.legend(unique.values(), unique.keys(), fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    left_out = [f"{r.case.name} {r.case.mode}" for r in results
                if not any(name not in r.case.ours for name in r.seconds)]
    if left_out:
        fig.text(0.01, 0.005, "no peer measured, not shown: " + ", ".join(left_out), fontsize=7)
    fig.suptitle(plot_title(machine, date), fontsize=9)
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def roofline_points(results: List[Result]):
    """[(case name, mode, arithmetic intensity in FLOP/byte, auto's GFLOP/s)] of the cases that
    have both a FLOP count and a least-traffic byte count."""
    return [(r.case.name, r.case.mode, r.case.flops / r.case.bytes, r.case.flops / r.seconds[r.case.ours[0]] / 1e9)
            for r in results if r.case.flops and r.case.bytes and r.case.ours and r.case.ours[0] in r.seconds]


def write_roofline(path, results: List[Result], machine: Machine, date: str):
    """Auto's GFLOP/s of each layer against its arithmetic intensity (FLOPs over the bytes each
    array needs to move once), under the roof of the measured FMA peak and copy bandwidth:
    a point far below the roof at its intensity is a kernel with room left. Needs matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = roofline_points(results)
    if not points:
        raise ValueError("no case has both FLOPs and bytes: nothing to place on a roofline")
    bandwidth = machine.copy_gbs / 2  # GB/s of one direction: a kernel reads or writes each byte once
    intensities = [p[2] for p in points]
    x = np.geomspace(min(intensities + [0.1]) / 2, max(intensities) * 2, 200)
    fig, ax = plt.subplots(figsize=(8, 5.5))
    ax.plot(x, np.minimum(machine.peak_gflops, bandwidth * x), color="black", linewidth=1.2,
            label=f"roof: FMA peak {machine.peak_gflops:.0f} GFLOP/s, memory {bandwidth:.1f} GB/s")
    for mode, marker in (("fwd", "o"), ("fwd+bwd", "s")):
        chosen = [p for p in points if p[1] == mode]
        if chosen:
            ax.scatter([p[2] for p in chosen], [p[3] for p in chosen], marker=marker, label=f"fastconv auto, {mode}")
            for name, _, intensity, rate in chosen:
                ax.annotate(name, (intensity, rate), textcoords="offset points", xytext=(3, 3), fontsize=6)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOP per byte moved once)")
    ax.set_ylabel("GFLOP/s")
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(f"roofline: {machine.cpu}, isa {machine.isa}, {machine.threads} threads, {date}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
