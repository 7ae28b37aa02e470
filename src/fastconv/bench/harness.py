"""Timing and reporting shared by every benchmark section.

Rules (the machines are noisy): every implementation of a case is timed in the same process,
interleaved (ours, peer, ours, peer, ...), after a warm-up, and reported as a median; figures
are ratios against peers measured in that same run.
"""
import dataclasses
import json
import platform
import sys
import time
from typing import Callable, Dict, List, Optional

import numpy as np

from fastconv import _C


@dataclasses.dataclass
class Case:
    name: str                          # layer name from layers.json
    mode: str                          # "fwd" or "fwd+bwd"
    runners: Dict[str, Callable[[], object]]  # implementation name -> zero-argument call
    ours: List[str]                    # which runners are fastconv's (the rest are peers)
    flops: Optional[float] = None      # direct-convolution FLOPs, for compute-bound kernels
    bytes: Optional[float] = None      # bytes moved at least once, for memory-bound kernels
    extra: Dict[str, str] = dataclasses.field(default_factory=dict)  # notes printed after the row


@dataclasses.dataclass
class Result:
    case: Case
    seconds: Dict[str, float]          # median per runner

    def ratio(self, ours, peer):
        """> 1: ours is faster than the peer."""
        return self.seconds[peer] / self.seconds[ours]


def time_interleaved(runners, repeats=7, warmup=1, min_seconds=0.0):
    """Median seconds per runner; each round runs every runner once, in turn."""
    for fn in runners.values():
        for _ in range(warmup):
            fn()
    samples = {name: [] for name in runners}
    rounds = 0
    start = time.perf_counter()
    while rounds < repeats or (time.perf_counter() - start < min_seconds and rounds < 10 * repeats):
        for name, fn in runners.items():
            t0 = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - t0)
        rounds += 1
    return {name: float(np.median(s)) for name, s in samples.items()}


@dataclasses.dataclass
class Machine:
    threads: int
    peak_gflops: float       # measured FMA peak, float32, all threads: the highest probe so far
    copy_gbs: float          # measured copy bandwidth (read + write), all threads
    description: str

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
        return Machine(threads, peak, 2 * src.nbytes / copy / 1e9,
                       f"{platform.processor() or platform.machine()}, isa {_C.isa()}")


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
    head = f"{'layer':22} {'mode':8} {'impl':22} {'ms':>9} {'rate':>14} {'%peak':>6}"
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
            row = f"{r.case.name:22} {r.case.mode:8} {name:22} {sec * 1e3:9.3f} {rate:>14} {peak:>6}"
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


def to_json(results: List[Result], machine: Machine):
    return {
        "machine": dataclasses.asdict(machine),
        "python": sys.version.split()[0],
        "results": [
            {"name": r.case.name, "mode": r.case.mode, "flops": r.case.flops, "bytes": r.case.bytes,
             "ours": r.case.ours, "seconds": r.seconds, "extra": r.case.extra}
            for r in results
        ],
    }


def write_json(path, results, machine):
    with open(path, "w") as f:
        json.dump(to_json(results, machine), f, indent=1)


def write_plot(path, results: List[Result], peers):
    """Bar chart of ours/peer speed ratios per case (needs matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, series = [], {p: [] for p in peers}
    for r in results:
        ours = r.case.ours[-1]
        labels.append(f"{r.case.name} {r.case.mode}")
        for p in peers:
            series[p].append(r.ratio(ours, p) if p in r.seconds else np.nan)
    fig, ax = plt.subplots(figsize=(max(8, 0.45 * len(labels)), 5))
    width = 0.8 / max(1, len(peers))
    for i, p in enumerate(peers):
        ax.bar(np.arange(len(labels)) + i * width, series[p], width, label=f"vs {p}")
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(np.arange(len(labels)) + 0.4 - width / 2)
    ax.set_xticklabels(labels, rotation=70, ha="right", fontsize=7)
    ax.set_ylabel("speed ratio (fastconv / peer; > 1 is faster)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
