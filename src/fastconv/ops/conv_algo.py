"""Choosing conv2d's algorithm per shape, like cuDNN's benchmark mode, without its first call.

algo="auto" resolves, once per (shapes, arguments, dtype, threads), to the fastest algorithm
that supports the shape, timed on the calls' own arrays. The timing costs next to nothing: it is
spread over the shape's first calls. Each of them runs one candidate, timed, in order of
likelihood (the fixed rule's pick first, so the first call costs what that algorithm costs), and
produces the call's result with it; once the candidates' times are clear the fastest is kept.
Only the likely candidates run, one over twice the leader's time is dropped once it has run
warm (its second run; its first pays its warm-up), runs over 50 ms decide after two each, and a
candidate that fails (for lack of memory, or any other reason) is skipped within the call.
(Timing on a slice of the batch was tried and misjudged: Winograd on one or four images ran 2-3x
slower per image than on the whole batch, and auto picked direct convolution where Winograd
won.) The winner is cached for the process and on disk (ops/conv_cache.py), so a
later process on the same machine runs it from its first call. The algorithms differ only in
rounding, so the choosing calls' results are as exact as the later ones'. In deterministic mode
the choice is a fixed rule instead (no timing, no cache), so two runs of a program always run
the same algorithms.

The choice is made on shapes alone, so it asks fastconv.backend.kernels with no arrays: it
chooses among the host library's algorithms.
"""
import os
import time

from fastconv.backend import kernels
from fastconv.ops import conv_cache

_MODES = ("benchmark", "deterministic")
_mode = os.environ.get("FASTCONV_CONV_ALGO_MODE", "benchmark")
_choices = {}  # key -> algorithm name
_tunings = {}  # key -> _Tuning, while the key's first calls are still choosing
_trials = 0    # candidates run on trial so far: one run inside another's timing spoils that time


def _own_kernel(algo, direction, input_shape, weight_shape, args):
    """Whether `algo` runs a kernel of its own in this direction. A gradient without one runs
    another algorithm's (csrc/conv/cpu/kernels.h says which), so timing it would time that twice."""
    if direction not in ("input", "weight"):
        return True
    return kernels().conv2d_gradient_kernel(algo, direction, input_shape, weight_shape, *args) == algo


def algorithms():
    """Every conv2d algorithm this build has."""
    return list(kernels().conv2d_algorithms())


def set_mode(mode):
    """'benchmark' (time candidates once per shape) or 'deterministic' (a fixed rule)."""
    global _mode
    if mode not in _MODES:
        raise ValueError(f"mode: expected one of {_MODES}, got {mode!r}")
    _mode = mode
    forget_choices()


def forget_choices():
    """Drops this process's choices and the timings of those still being made
    (conv_cache.clear() also empties the disk cache)."""
    _choices.clear()
    _tunings.clear()


def trials():
    """How many calls so far ran a candidate on trial: a call that leaves it unchanged ran only
    chosen algorithms."""
    return _trials


def run_until_chosen(run, limit=200):
    """Calls run() until a call runs no algorithm on trial (every shape it convolves has its
    choice), at most `limit` times: (the last call's result, how many calls ran a trial; `limit`
    when choosing had not ended). A benchmark warms a runner up so; tests reach the choice so."""
    result = None
    for calls in range(limit):
        before = _trials
        result = run()
        if _trials == before:
            return result, calls
    return result, limit


def get_mode():
    return _mode


def choice(key):
    """This process's choice for `key` (a resolve key), or None."""
    return _choices.get(key)


def chosen():
    """{(input shape, weight shape, args, dtype, threads, direction): algorithm} picked so far."""
    return dict(_choices)


def supported(input_shape, weight_shape, args):
    lib = kernels()
    return [a for a in algorithms() if lib.conv2d_unsupported_reason(a, input_shape, weight_shape, *args) is None]


def _phase_kernel(weight_shape, stride):
    """The kernel of each stride phase, ceil(kernel / stride): what Winograd convolves with."""
    return tuple(-(-k // s) for k, s in zip(weight_shape[2:], stride))


def winograd_variant(input_shape, weight_shape, args):
    """'winograd_4x2' for a 2x2 kernel, 'winograd_2x7' for 7x7; for 3x3 'winograd_4x3' or
    'winograd_2x3', for 5x5 'winograd_4x5' or 'winograd_2x5': the one with fewer transform-domain
    points for the output (F(4x4, 3x3) costs 36 points per 4x4 tile, F(2x2, 3x3) 16 per 2x2;
    F(4x4, 5x5) 64, F(2x2, 5x5) 36: F(4x4) unless the output is too small to fill its tiles); a
    tie goes to F(2x2), the more accurate. A strided kernel counts as its stride phases' (11x11
    at stride 4: 3x3; 4x4 at stride 2: 2x2)."""
    phase_kernel = _phase_kernel(weight_shape, args[0])
    if phase_kernel == (2, 2):
        return "winograd_4x2"
    if phase_kernel == (7, 7):
        return "winograd_2x7"
    points = _winograd_points(input_shape, weight_shape, args, 5 if phase_kernel == (5, 5) else 3)
    small, large = sorted(points)  # 'winograd_2xR' < 'winograd_4xR'
    return large if points[large] < points[small] else small


def _winograd_points(input_shape, weight_shape, args, r):
    """The transform-domain points each tiling of an r x r kernel (F(2x2) and F(4x4)) needs for
    the output, per channel pair."""
    p, q = kernels().conv2d_output_shape(input_shape, weight_shape, *args)[2:]
    return {f"winograd_{m}x{r}": -(-p // m) * -(-q // m) * (m + r - 1) ** 2 for m in (2, 4)}


def heuristic(input_shape, weight_shape, args, candidates, direction="forward"):
    """The deterministic rule: the algorithm that usually wins on such a layer on a CPU."""
    stride, _, _, dilation, groups = args
    kh, kw = weight_shape[2:]
    if "depthwise" in candidates:
        return "depthwise"
    unit = stride == (1, 1) and dilation == (1, 1) and groups == 1
    # Winograd F(4x4) does a quarter of the multiplications; its transforms cost about as much as
    # the GEMMs once fewer than 32 channels share them (measured: resnet20's 16-channel layer runs
    # 1.4x faster direct, the 32-channel one 1.1x faster by Winograd, every direction). A strided
    # kernel runs as its stride phases: AlexNet's 11x11 at stride 4 as 3x3 over 48 channels
    # (measured, 2 threads: forward 18 ms against implicit GEMM's 28, input gradient 23 against
    # im2col's 38, weight gradient 18 against im2col's 32).
    phase_channels = weight_shape[1] * stride[0] * stride[1]
    if (dilation == (1, 1) and groups == 1 and _phase_kernel(weight_shape, stride) == (3, 3)
            and min(weight_shape[0], phase_channels) >= 32 and "winograd_4x3" in candidates):
        return "winograd_4x3"
    # F(4x4, 5x5): 64 multiplications per 4x4 tile instead of 400; F(2x2, 5x5) 36 per 2x2 tile
    # instead of 100 (measured on conv5x5, 2 threads: forward and input gradient 3.1-3.2 ms by
    # F(4x4), 6.3-6.7 by F(2x2); F(2x2) one thread 30 ms against direct's 41).
    if unit and kh == kw == 5 and min(weight_shape[:2]) >= 32:
        variant = winograd_variant(input_shape, weight_shape, args)
        if variant in candidates:
            return variant
    # F(2x2, 7x7): 64 per 2x2 tile instead of 196 (measured on conv7x7_s1, 2 threads: forward and
    # input gradient 7.2 ms against implicit GEMM's 10.1; its weight gradient 13.9 ms against
    # direct's 10.3, so that one stays direct).
    if (unit and kh == kw == 7 and min(weight_shape[:2]) >= 32 and direction != "weight"
            and "winograd_2x7" in candidates):
        return "winograd_2x7"
    # FFT from 7x7 on: its per-frequency GEMMs cost the same whatever the kernel's size
    # (measured, 2 threads, forward, filter spectra cached: conv7x7_s1 23 ms against direct's
    # 33, conv11x11_s1 11 ms against 19).
    if unit and min(kh, kw) >= 7 and "fft" in candidates:
        return "fft"
    # Direct convolution wins where the GEMM formulation's packing dominates: few output
    # channels, or large kernels (measured here: 16-64 channels 1.2-1.8x implicit GEMM; strided,
    # by its phases: resnet20's 3x3/2 forward 1.1x implicit GEMM on 1 and 2 threads, the 7x7/2
    # stem 1.05-1.1x). A strided 1x1 is a plain GEMM over every other pixel: im2col's copy of
    # them is cheaper than direct's phase planes (measured 1.4x forward, 1.5x weight gradient).
    # Its weight gradient from 16 input channels on (no groups, 3x3 taps or more: the C++ rule,
    # csrc/conv/cpu/kernels.h's weight_taps_fit) runs tap tiles over vectors of channels: 2x
    # im2col's on resnet20's 3x3/2 and 16-channel layers, 1.3x direct's per-plane kernel on
    # conv7x7_s1 (measured, 2 threads). With fewer channels the
    # per-plane kernel runs: a strided one no faster than im2col on two threads (resnet20's
    # 3x3/2: 1.7-2.2 ms against 1.7), and on small maps (8x8) its per-image copies outweigh it.
    strided = stride != (1, 1)
    tap_tiles = groups == 1 and weight_shape[1] >= 16 and kh * kw >= 9
    if (("direct" in candidates and (weight_shape[0] <= 64 or min(kh, kw) >= 5))
            and not (strided and (kh == kw == 1 or (direction == "weight" and not tap_tiles)))):
        p, q = kernels().conv2d_output_shape(input_shape, weight_shape, *args)[2:]
        if direction != "weight" or p * q >= 256 or tap_tiles:
            return "direct"
    if unit and min(kh, kw) >= 5 and "fft" in candidates:
        return "fft"
    return "implicit" if "implicit" in candidates else "im2col"


def likely_candidates(input_shape, weight_shape, args, candidates):
    """The candidates worth timing: FFT only from 5x5 kernels on (below, its transforms cost more
    than the multiplications they save: it never won a 3x3 layer of the bench); F(4x4, 2x2) only
    where the stride divides the kernel (a 3x3 kernel at stride 2 has 2x2 phases too, but 7 of
    their 16 taps are zero: on resnet20's 3x3/2 layer it took 1.4-1.9x direct's time in every
    direction); and of the two Winograd tilings of a 3x3 or 5x5 kernel the one winograd_variant()
    picks, the other only while it needs less than 1.5x its transform points: F(4x4)'s tiles
    overhanging a 14x14 output (1.36x the points) ran resnet50's 3x3 layer 1.2x slower than
    F(2x2) on an Intel Xeon; on 16x16 and 8x8 outputs (1.78x) F(4x4) always won."""
    kh, kw = weight_shape[2:]
    likely = [a for a in candidates if a != "fft" or min(kh, kw) >= 5]
    if any(k % s for k, s in zip((kh, kw), args[0])):  # stride phases with padded taps
        likely = [a for a in likely if a != "winograd_4x2"]
    for r in (3, 5):
        pair = {f"winograd_2x{r}", f"winograd_4x{r}"}
        if pair <= set(likely):
            picked = winograd_variant(input_shape, weight_shape, args)
            points = _winograd_points(input_shape, weight_shape, args, r)
            other = (pair - {picked}).pop()
            if points[other] >= 1.5 * points[picked]:
                likely.remove(other)
    return likely


def _host_likely(input_shape, weight_shape, args, candidates):
    """likely_candidates on the CPU, where a depthwise layer (one input channel per group, more
    than one group) times only its own kernel and direct convolution: the others run it as
    thousands of one-channel products, 2-30x slower (the bench's 128-channel 3x3 layer, forward
    and both gradients: 4 ms against 13-106 ms), each trial run of them costing the time of many
    calls."""
    if weight_shape[1] == 1 and args[-1] > 1 and "depthwise" in candidates:
        return [a for a in candidates if a in ("depthwise", "direct")]
    return likely_candidates(input_shape, weight_shape, args, candidates)


_DTYPE_NAMES = {}  # dtype -> str(dtype), which runs numpy's Python code: 2.5 us, on every auto call


def _key(input_shape, weight_shape, args, dtype, direction):
    name = _DTYPE_NAMES.get(dtype)
    if name is None:
        name = _DTYPE_NAMES[dtype] = str(dtype)
    return (tuple(input_shape), tuple(weight_shape), args, name, kernels().num_threads(), direction)


def resolve(direction, run, input_shape, weight_shape, args, dtype, extra=(), prefer=None):
    """The algorithm for one call. `run(algo)` executes the call with that algorithm (made with
    reusing(): while auto is choosing, resolve runs the call's candidate itself, and the caller's
    run of it is then free). `extra`: kernels beyond conv2d's own that `run` also takes (a strided
    convolution's gradients by conv_transpose2d's subpixel kernels), timed beside the likely
    ones, the fixed rule's pick only as `prefer`; a choice among them, or with another fixed
    rule, is kept apart from one made without."""
    name = "+".join((direction, *extra)) + (f" ({prefer} first)" if prefer else "")
    key = _key(input_shape, weight_shape, args, dtype, name)
    algo = _choices.get(key)
    if algo is None:
        candidates = [a for a in supported(input_shape, weight_shape, args)
                      if _own_kernel(a, direction, input_shape, weight_shape, args)]
        first = prefer or heuristic(input_shape, weight_shape, args, candidates, direction)
        likely = _host_likely(input_shape, weight_shape, args, candidates) + list(extra)
        algo = choose(key, _disk_key(key), run, first, candidates + list(extra), likely)
    return algo


def choose(key, disk_key, run, first, candidates, likely, machine=None, online=True, **timing):
    """The timed choice among `candidates` (`first`, the fixed rule's, alone in deterministic
    mode or when it is the only one): this process's earlier choice for `key`, else the disk
    cache's for `disk_key` on `machine` (conv_cache.machine_key() by default), else the fastest
    of `first` and `likely`, then remembered in both. `online`: chosen over the key's first calls
    (_trial: this call's candidate, already run); else here and now, by _fastest(run, ...,
    **timing). Shared by the CPU's choice and a device library's
    (fastconv.cuda.conv.conv2d_resolve, whose first run of a kernel compiles it)."""
    algo = _choices.get(key)
    if algo is not None:
        return algo
    if _mode == "deterministic" or len(candidates) == 1:
        algo = first
    else:
        algo = _remembered(disk_key, candidates, machine)
        if algo is None:
            ordered = [first] + [a for a in likely if a != first]
            if online:
                return _trial(key, disk_key, run, ordered, machine)
            algo = _fastest(run, ordered, **timing)
            conv_cache.store(disk_key, algo, machine)
    _choices[key] = algo
    return algo


def resolve_among(direction, run, input_shape, weight_shape, args, dtype, candidates):
    """resolve() over given candidates (tuples of algorithms), the first of which is the
    deterministic mode's choice: for calls that run several kernels at once (conv_transpose2d's
    two gradients, which share work when both run im2col), where the fastest pair is not always
    the pair of fastest. The choice is kept (and listed by chosen()) as the names joined by
    commas."""
    key = _key(input_shape, weight_shape, args, dtype, direction)
    unique = list(dict.fromkeys(",".join(pair) for pair in candidates))
    joined = choose(key, _disk_key(key), lambda pair: run(tuple(pair.split(","))), unique[0], unique, unique)
    return tuple(joined.split(","))


# How a channels_last call with algo="auto" can run: in place (ops.conv's channels_last kernels,
# the fixed rule's pick) or on NCHW copies, its result copied back.
LAYOUTS = ("channels_last", "nchw_copy")


def resolve_layout(direction, run, input_shape, weight_shape, args, dtype):
    """One of LAYOUTS for a channels_last call, `run(layout)` executing it so: timed over the
    shape's first calls as algorithms are, and kept the same way. A run of the NCHW copies
    during which their own calls are still choosing is not counted. On AVX-512 the NCHW side's Winograd
    and FFT do fewer multiplications than the in-place kernels, whose NHWC forms are direct or
    GEMMs, and win where their gain outweighs two copies (resnet's wide 3x3 layers)."""
    key = _key(input_shape, weight_shape, args, dtype, direction + "@channels_last")
    return choose(key, _disk_key(key), run, LAYOUTS[0], list(LAYOUTS), list(LAYOUTS))


def _disk_key(key):
    return repr(key[:-2] + key[-1:])  # the thread count is in conv_cache's machine key


def _remembered(disk_key, candidates, machine=None):
    """The disk cache's choice for `disk_key`, if it is still one of the candidates."""
    algo = conv_cache.lookup(disk_key, machine)
    return algo if algo in candidates else None


def wall_time(run, algo):
    """Seconds one run(algo) takes on the host's clock (the CPU kernels return when done)."""
    started = time.perf_counter()
    run(algo)
    return time.perf_counter() - started


def reusing(run):
    """run(algo), except that repeating the last run made returns its result without running
    again: the caller's run of the algorithm auto has just run on trial (or timed last), whose
    output it already holds. Made once per call, around that call's arrays."""
    last = {}

    def run_once(algo):
        if last.get("algo") != algo:
            last.clear()  # a run that raises leaves its output unknown
            result = run(algo)
            last.update(algo=algo, result=result)
        return last["result"]
    return run_once


class _Tuning:
    """The times of one choice's candidates, in order of likelihood. The first run of each is
    timed too, though it warms the candidate up (scratch buffers, filter transforms): a candidate
    over `drop_after` times the leader's is not run again once it has run warm, after its second
    run, or after its first when that took over `long_run` seconds (where the warm-up is a small
    share). (Dropped after a cold first run, Winograd lost resnet20's 16-channel forward with
    fixed weights to implicit GEMM, 1.31 against its 1.11 ms.) Another process taking a core
    only ever adds time, so the minimum of a candidate's runs is its estimate. The fastest is
    clear after `rounds` runs each beyond the first, once the two best are more than `margin`
    apart, else after `max_rounds` (on a shared machine three rounds can all be disturbed, and a
    wrong pick stays); runs over `long_run` seconds average their own noise: one round after the
    first decides. A candidate whose run raised is dropped (failed()); when every one has, the
    first error is raised."""

    def __init__(self, candidates, rounds=3, max_rounds=9, margin=0.1, drop_after=2.0, long_run=0.05):
        self.candidates = list(candidates)
        self.times = {a: [] for a in candidates}  # the candidates still in the running
        self.errors = []
        self.rounds, self.max_rounds, self.margin = rounds, max_rounds, margin
        self.drop_after, self.long_run = drop_after, long_run

    def next(self):
        """The candidate to run next: the one with the fewest runs, the likeliest first."""
        return min(self.times, key=lambda a: len(self.times[a]))

    def record(self, algo, seconds):
        self.times[algo].append(seconds)
        if all(self.times.values()):
            best = {a: min(t) for a, t in self.times.items()}
            leader = min(best.values())
            self.times = {a: t for a, t in self.times.items()
                          if best[a] <= self.drop_after * leader or not self._warm(t)}

    def _warm(self, times):
        """Whether `times` (one candidate's runs) include a run past its warm-up."""
        return len(times) >= 2 or times[0] > self.long_run

    def failed(self, algo, error):
        """Drops `algo`, whose run raised `error`; raises the first error when none is left."""
        self.errors.append(error)
        del self.times[algo]
        if not self.times:
            raise self.errors[0]

    def winner(self):
        """The fastest candidate once that is clear, else None."""
        if not all(self.times.values()):
            return None
        best = {a: min(t) for a, t in self.times.items()}
        ranked = sorted(best.values())
        runs = min(len(t) for t in self.times.values()) - 1  # rounds beyond the first run
        rounds, max_rounds = (1, 1) if ranked[0] > self.long_run else (self.rounds, self.max_rounds)
        clear = len(ranked) < 2 or ranked[1] > (1 + self.margin) * ranked[0]
        if runs >= max_rounds or (runs >= rounds and clear):
            return min(best, key=best.get)
        return None


def _trial(key, disk_key, run, candidates, machine=None, skipped=(Exception,)):
    """Runs this call by `key`'s next candidate (timed) and returns it; once the fastest is
    clear it becomes the choice, for the process and on disk. A time is not counted when
    another choice ran a trial inside it (the NCHW copies' own first calls under a layout's
    trial). A candidate whose run raises one of `skipped` (out of memory, over the workspace
    limit, or any other failure: one candidate must not fail the call) is dropped and the next
    runs instead; when every one has failed, the first one's error is raised."""
    global _trials
    tuning = _tunings.get(key)
    if tuning is None or tuning.candidates != candidates:  # candidates built from others' trials
        tuning = _tunings[key] = _Tuning(candidates)
    while True:
        algo = tuning.next()
        _trials += 1
        trials_before = _trials
        try:
            seconds = wall_time(run, algo)
        except skipped as error:
            try:
                tuning.failed(algo, error)
            except skipped:
                del _tunings[key]  # every candidate failed: a later call starts over
                raise
            continue
        if _trials == trials_before:
            tuning.record(algo, seconds)
        break
    winner = tuning.winner()
    if winner is not None:
        del _tunings[key]
        _choices[key] = winner
        conv_cache.store(disk_key, winner, machine)
    return algo


def _fastest(run, candidates, timer=wall_time, skipped=(MemoryError,), warm_up=False, **rules):
    """The fastest of `candidates` (in order of likelihood), timed here and now, interleaved,
    by _Tuning's `rules`. `timer(run, algo)` is the seconds one run takes (wall_time; a device's
    events). With `warm_up`, each candidate first runs once untimed (a GPU's first call compiles
    its kernels and makes its FFT plans: seconds, which would drop it)."""
    tuning = _Tuning(candidates, **rules)
    while (winner := tuning.winner()) is None:
        algo = tuning.next()
        try:
            if warm_up and not tuning.times[algo]:
                run(algo)
            tuning.record(algo, timer(run, algo))
        except skipped as error:
            tuning.failed(algo, error)
    return winner
