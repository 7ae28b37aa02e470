"""conv2d's algo="auto" on CUDA (fastconv/cuda/conv.py: conv2d_resolve) and the workspace limit,
on the host: the device's name, its free memory and its event timer are injected (module-level
hooks device_properties, free_device_memory, event_time), so these tests check which candidates
are timed, that a failing or too large one is skipped, what the disk cache keeps and when it is
read, and the MemoryError of a named algorithm whose workspace does not fit."""
import numpy as np
import pytest

import fastconv
from fastconv import _C, ops
from fastconv.cuda import conv as cuda_conv
from fastconv.cuda import kernels as cuda_kernels
from fastconv.ops import conv_algo
from tests.cuda import host_kernels

UNIT = ((1, 1), (1, 1), (1, 1), (1, 1), 1)
SAME_7X7 = ((1, 1), (3, 3), (3, 3), (1, 1), 1)
RESNET_3X3 = ((8, 64, 56, 56), (64, 64, 3, 3), UNIT)
LARGE_7X7 = ((8, 32, 64, 64), (32, 32, 7, 7), SAME_7X7)
DEVICE = ("NVIDIA H200", "9.0")


@pytest.fixture
def device(monkeypatch, tmp_path):
    """A fake GPU: its name, 80 GB free, and a timer that runs the call and reads the time from
    `costs` (seconds per algorithm; an exception instance is raised instead). Yields
    (costs, timed: the algorithms timed, in order)."""
    monkeypatch.setenv("FASTCONV_CACHE_DIR", str(tmp_path))
    fastconv.conv_cache.clear()
    conv_algo.set_mode("benchmark")
    monkeypatch.setattr(cuda_conv, "device_properties", lambda: DEVICE)
    monkeypatch.setattr(cuda_conv, "free_device_memory", lambda array=None: 80 << 30)
    costs, timed = {}, []

    def event_time(run, algo):
        timed.append(algo)
        run(algo)
        if isinstance(costs[algo], Exception):
            raise costs[algo]
        return costs[algo]
    monkeypatch.setattr(cuda_conv, "event_time", event_time)
    yield costs, timed
    fastconv.conv_cache.clear()


def _resolve(layer, direction="forward", run=lambda algo: None):
    """conv2d_resolve's choice; run(algo) stands for the call."""
    input_shape, weight_shape, geometry = layer
    return cuda_conv.conv2d_resolve(direction, run, input_shape, weight_shape, geometry, np.float32)


def test_the_rule_s_pick_and_the_likely_others_are_timed(device):
    """3x3: one Winograd tiling (the rule's, timed first), no FFT; 7x7: FFT first; a gradient:
    only the algorithms with a gradient kernel of their own (im2col's is the others')."""
    costs, timed = device
    costs.update(im2col=3e-3, implicit=2e-3, winograd_4x3=1e-3, winograd_2x3=1e-3, fft=4e-3, depthwise=1e-3)
    runs = []
    assert _resolve(RESNET_3X3, run=runs.append) == "winograd_4x3"
    assert timed[0] == "winograd_4x3" and set(timed) == {"winograd_4x3", "im2col", "implicit"}
    for algo in set(timed):  # an untimed warm-up (the timer runs the others) and the timed runs
        assert runs.count(algo) == timed.count(algo) + 1
    # over twice the best after a second run too (a first may be cold): dropped then
    assert timed.count("im2col") == 2 and timed.count("winograd_4x3") == 2
    timed.clear()
    assert _resolve(LARGE_7X7) == "implicit"
    assert timed[0] == "fft" and set(timed) == {"fft", "im2col", "implicit"}
    timed.clear()
    assert _resolve(LARGE_7X7, "input") == "im2col"
    assert set(timed) == {"fft", "im2col"}


def test_a_candidate_that_raises_is_skipped(device):
    """cuFFT failing (or running out of memory) on the fastest-looking candidate: the next wins."""
    costs, timed = device
    costs.update(fft=RuntimeError("cuFFT failed to make a plan"), im2col=3e-3, implicit=2e-3)
    assert _resolve(LARGE_7X7) == "implicit"
    assert timed.count("fft") == 1  # its warm-up only


def test_a_candidate_whose_workspace_exceeds_free_memory_is_not_run(device, monkeypatch):
    """With less free memory than FFT's and im2col's workspaces, implicit GEMM (none) is the only
    candidate: chosen without timing; with room for im2col's but not FFT's, FFT is left out."""
    costs, timed = device
    costs.update(im2col=3e-3, implicit=2e-3)
    shapes = (*LARGE_7X7[:2], *LARGE_7X7[2], np.float32)
    fft_bytes = cuda_conv.conv2d_workspace_bytes("fft", "forward", *shapes)
    im2col_bytes = cuda_conv.conv2d_workspace_bytes("im2col", "forward", *shapes)
    assert 0 < fft_bytes < im2col_bytes
    monkeypatch.setattr(cuda_conv, "free_device_memory", lambda array=None: fft_bytes - 1)
    assert _resolve(LARGE_7X7) == "implicit" and timed == []
    fastconv.conv_cache.clear()
    monkeypatch.setattr(cuda_conv, "free_device_memory", lambda array=None: im2col_bytes)
    costs.update(fft=1e-3)
    _resolve(LARGE_7X7)
    assert "fft" in timed
    fastconv.conv_cache.clear()
    timed.clear()
    monkeypatch.setattr(cuda_conv, "free_device_memory", lambda array=None: fft_bytes)
    _resolve(LARGE_7X7)
    assert "im2col" not in timed and "fft" in timed


def test_the_choice_is_kept_on_disk_per_device_and_cleared(device, monkeypatch):
    costs, timed = device
    costs.update(winograd_4x3=1e-3, im2col=3e-3, implicit=2e-3)
    assert _resolve(RESNET_3X3) == "winograd_4x3"
    stored = fastconv.conv_cache.entries()
    assert len(stored) == 1
    key, algo = next(iter(stored.items()))
    assert algo == "winograd_4x3" and "NVIDIA H200|sm 9.0" in key and "float32" in key and "(64, 64, 3, 3)" in key
    timed.clear()
    conv_algo.forget_choices()  # a new process: the disk answers, nothing is timed
    costs.update(winograd_4x3=9.0)
    assert _resolve(RESNET_3X3) == "winograd_4x3" and timed == []
    monkeypatch.setattr(cuda_conv, "device_properties", lambda: ("NVIDIA A100-SXM4-80GB", "8.0"))
    assert _resolve(RESNET_3X3) == "implicit" and timed  # another GPU times afresh
    assert len(fastconv.conv_cache.entries()) == 2
    timed.clear()
    with cuda_conv.gemm.allow_tf32():  # TF32 GEMMs time differently: a key of their own
        _resolve(RESNET_3X3)
    assert timed and len(fastconv.conv_cache.entries()) == 3
    assert sum("|tf32 1|" in key for key in fastconv.conv_cache.entries()) == 1
    fastconv.conv_cache.clear()
    assert fastconv.conv_cache.entries() == {} and not conv_algo.chosen()
    timed.clear()
    _resolve(RESNET_3X3)
    assert timed


def test_the_same_process_asks_the_timer_once_per_shape(device):
    costs, timed = device
    costs.update(winograd_4x3=1e-3, im2col=3e-3, implicit=2e-3)
    _resolve(RESNET_3X3)
    count = len(timed)
    assert _resolve(RESNET_3X3) == "winograd_4x3" and len(timed) == count


def test_deterministic_mode_runs_the_rule_untimed(device):
    _, timed = device
    conv_algo.set_mode("deterministic")
    try:
        assert _resolve(LARGE_7X7) == "fft" and timed == []
    finally:
        conv_algo.set_mode("benchmark")


def test_ops_auto_asks_the_device_library(device, monkeypatch):
    """fastconv.ops resolves algo="auto" through the kernel library's conv2d_resolve where it
    has one (fastconv.cuda.kernels), through conv_algo.resolve on the CPU."""
    costs, _ = device
    costs.update(winograd_4x3=1e-3, im2col=3e-3, implicit=2e-3)
    args = RESNET_3X3[2]
    assert ops.conv._algorithm(cuda_kernels, "auto", "forward", lambda a: None, *RESNET_3X3[:2], args,
                               np.float32) == "winograd_4x3"
    monkeypatch.setattr(conv_algo, "resolve", lambda *a: "the CPU's choice")
    assert ops.conv._algorithm(_C, "auto", "forward", lambda a: None, *RESNET_3X3[:2], args,
                               np.float32) == "the CPU's choice"


# ---- the workspace ----

def test_workspace_sizes_follow_what_each_algorithm_allocates():
    shapes = ((2, 3, 8, 8), (4, 3, 3, 3), *UNIT)
    columns, output = 2 * 3 * 9 * 64, 2 * 4 * 64
    assert cuda_conv.conv2d_workspace_bytes("im2col", "forward", *shapes, np.float32) == 4 * (columns + output)
    assert cuda_conv.conv2d_workspace_bytes("im2col", "input", *shapes, np.float64) == 8 * columns
    assert cuda_conv.conv2d_workspace_bytes("implicit", "forward", *shapes) == 0
    assert cuda_conv.conv2d_workspace_bytes("implicit", "input", *shapes) == 4 * columns  # im2col's gradient
    tiles = 2 * 4 * 4
    assert cuda_conv.conv2d_workspace_bytes("winograd_2x3", "forward", *shapes) == 4 * 16 * (4 * 3 + 3 * tiles
                                                                                              + 4 * tiles)
    # FFT on a 10 x 10 grid (8 + 1 + 1), 10 x 6 complex bins: x padded and its spectra, the
    # filters' spectra, the products' spectra and their inverse.
    plane, spectrum = 100, 2 * 60
    assert cuda_conv.conv2d_workspace_bytes("fft", "forward", *shapes) == 4 * (
        6 * (plane + spectrum) + 12 * spectrum + 8 * (spectrum + plane))


def test_workspace_sizes_do_not_wrap_past_32_or_64_bits():
    shapes = ((2 ** 14, 2 ** 10, 2 ** 12, 2 ** 12), (2 ** 10, 2 ** 10, 7, 7), *SAME_7X7)
    pixels = 2 ** 24
    assert cuda_conv.conv2d_workspace_bytes("im2col", "forward", *shapes) == 4 * (
        2 ** 24 * 49 * pixels + 2 ** 24 * pixels)


@pytest.fixture
def launched(monkeypatch):
    host_kernels.install(monkeypatch, "conv")
    names, function = [], cuda_conv.loader.function

    def recording(family, name):
        names.append(name)
        return function(family, name)
    monkeypatch.setattr(cuda_conv.loader, "function", recording)
    return names


@pytest.mark.parametrize("algo, direction", [("im2col", "forward"), ("fft", "forward"), ("fft", "input"),
                                             ("winograd_4x3", "forward"), ("implicit", "weight")])
def test_a_named_algorithm_whose_workspace_does_not_fit_raises_memory_error(launched, monkeypatch, algo,
                                                                            direction):
    """Before anything is allocated or launched: the message names the algorithm, the bytes it
    needs and the bytes free."""
    x, w = np.zeros((2, 3, 8, 8), np.float32), np.zeros((4, 3, 3, 3), np.float32)
    dy = np.zeros(_C.conv2d_output_shape(x.shape, w.shape, *UNIT), np.float32)
    needed = cuda_conv.conv2d_workspace_bytes(algo, direction, x.shape, w.shape, *UNIT)
    monkeypatch.setattr(cuda_conv, "free_device_memory", lambda array=None: needed - 1)
    calls = {"forward": lambda: cuda_conv.conv2d_forward(x, w, None, np.empty_like(dy), *UNIT, algo),
             "input": lambda: cuda_conv.conv2d_backward_input(dy, w, np.empty_like(x), *UNIT, algo),
             "weight": lambda: cuda_conv.conv2d_backward_weight(x, dy, np.empty_like(w), None, *UNIT, algo)}
    with pytest.raises(MemoryError, match=f"algo='{algo}' needs {needed} bytes .* {needed - 1} bytes are free"):
        calls[direction]()
    assert launched == []
    monkeypatch.setattr(cuda_conv, "free_device_memory", lambda array=None: needed)
    calls[direction]()  # exactly enough


def test_auto_called_directly_falls_back_to_an_algorithm_that_fits(launched, monkeypatch):
    chosen = []
    monkeypatch.setitem(cuda_conv.FORWARD, "implicit", lambda *a: chosen.append("implicit"))
    monkeypatch.setitem(cuda_conv.FORWARD, "im2col", lambda *a: chosen.append("im2col"))
    x, w = np.zeros((1, 4, 6, 6)), np.zeros((4, 4, 3, 3))
    out = np.empty((1, 4, 6, 6))
    cuda_conv.conv2d_forward(x, w, None, out, *UNIT[:4], 1, "auto")
    monkeypatch.setattr(cuda_conv, "free_device_memory", lambda array=None: 100)
    cuda_conv.conv2d_forward(x, w, None, out, *UNIT[:4], 1, "auto")
    assert chosen == ["im2col", "implicit"]
