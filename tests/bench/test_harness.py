"""fastconv-bench's harness: sections by family cover the layer set, the plot shows auto against
each peer it was measured against, and progress lines are plain text."""
import collections
import io
from pathlib import Path

import pytest

from fastconv.bench import harness

ROOT = Path(__file__).resolve().parents[2]


def result(name, mode, seconds, ours=("fastconv", "fastconv[im2col]", "fastconv[fft]")):
    runners = {impl: None for impl in seconds}
    return harness.Result(harness.Case(name, mode, runners, [o for o in ours if o in seconds]), seconds)


def test_each_section_is_a_module_named_after_its_family_with_a_pytest_benchmark_file():
    for name in harness.SECTIONS:
        module = harness.section(name)
        assert module.__name__ == f"fastconv.bench.{name}" and callable(module.layers) and callable(module.cases)
        assert f'SECTION = "{name}"' in (ROOT / "benchmarks" / f"test_bench_{name}.py").read_text()
    with pytest.raises(ValueError, match="unknown benchmark section 'conv2d'"):
        harness.section("conv2d")


def test_every_entry_of_the_layer_set_belongs_to_exactly_one_section():
    layer_set = harness.load_layers()
    entries = layer_set["conv2d"] + layer_set["other"] + layer_set["models"]
    owners = {layer["name"]: [name for name, chosen in harness.select_layers(harness.SECTIONS, layer_set)
                              if chosen is layer] for layer in entries}
    assert all(len(sections) == 1 for sections in owners.values()), owners
    assert owners["roi_align_7x7"] == ["roi"] and owners["grid_sample_affine"] == ["sampling"]
    assert owners["conv_transpose_up2"] == ["conv_transpose"] and owners["bn_relu_train"] == ["norm"]
    assert owners["maxpool2x2"] == ["pool"] and owners["resnet20_c16"] == ["conv"]


def test_only_keeps_the_layers_whose_name_contains_a_term():
    chosen = harness.select_layers(["conv", "pool"], harness.load_layers(), only=["resnet20_c", "maxpool"])
    assert [(section, layer["name"]) for section, layer in chosen] == [
        ("conv", "resnet20_c16"), ("conv", "resnet20_c32"), ("conv", "resnet20_c64"), ("pool", "maxpool2x2")]


def test_plot_series_is_auto_against_each_peer_measured_not_the_last_algorithm():
    results = [
        # auto 2 ms; the last algorithm (fft) 8 ms and the best (im2col) 1 ms; torch 4 ms, numpy 6 ms
        result("conv_a", "fwd", {"fastconv": 2e-3, "fastconv[im2col]": 1e-3, "fastconv[fft]": 8e-3,
                                 "torch": 4e-3, "numpy": 6e-3}),
        result("conv_a", "fwd+bwd", {"fastconv": 5e-3, "fastconv[im2col]": 6e-3, "fastconv[fft]": 9e-3,
                                     "torch": 2.5e-3}),
        result("roi_a", "fwd", {"fastconv": 1e-3}),  # no peer installed: nothing to compare
        result("pool_a", "fwd", {"fastconv": 1e-3, "torch": 3e-3}),
    ]
    series = harness.plot_series(results)
    assert series == {
        "fwd": [("conv_a", {"torch": (2.0, 4.0), "numpy": (3.0, 6.0)}), ("pool_a", {"torch": (3.0, None)})],
        "fwd+bwd": [("conv_a", {"torch": (0.5, 0.5)})],
    }


def test_plot_is_a_png_titled_with_machine_isa_threads_and_date(tmp_path):
    machine = harness.Machine(threads=2, peak_gflops=200.0, copy_gbs=40.0, cpu="AMD EPYC 7B13", isa="avx2")
    title = harness.plot_title(machine, "2026-01-02 03:04")
    assert all(part in title for part in ("AMD EPYC 7B13", "isa avx2", "2 threads", "2026-01-02 03:04"))
    path = tmp_path / "bench.png"
    harness.write_plot(path, [result("conv_a", "fwd", {"fastconv": 1e-3, "torch": 2e-3, "torch_cl": 5e-4}),
                              result("roi_a", "fwd", {"fastconv": 1e-3})], machine, "2026-01-02 03:04")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="nothing to plot"):
        harness.write_plot(path, [result("roi_a", "fwd", {"fastconv": 1e-3})], machine, "today")


def test_progress_is_a_plain_line_per_case_with_elapsed_time_and_eta():
    now = iter([0.0, 0.0, 10.0, 30.0])  # created, then three cases starting at 0, 10 and 30 s
    stream = io.StringIO()
    progress = harness.Progress(3, stream=stream, clock=lambda: next(now))
    for label in ("conv a fwd", "conv a fwd+bwd", "pool b fwd"):
        progress.case(label)
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("[1/3] conv a fwd") and lines[0].endswith("elapsed 0:00  ETA -:--")
    assert lines[1].startswith("[2/3] conv a fwd+bwd") and lines[1].endswith("elapsed 0:10  ETA 0:20")
    assert lines[2].endswith("elapsed 0:30  ETA 0:15")
    assert all(ch == "\n" or ch.isprintable() for ch in stream.getvalue())  # no \r, no escape sequences


def test_a_result_keeps_the_median_and_the_quartile_spread_of_its_rounds():
    case = harness.Case("layer", "fwd", {"fastconv": None, "torch": None}, ["fastconv"])
    r = harness.Result.from_samples(case, {"fastconv": [1.0, 2.0, 2.0, 2.0, 9.0], "torch": [4.0, 4.0, 4.0]})
    assert r.seconds == {"fastconv": 2.0, "torch": 4.0} and r.ratio("fastconv", "torch") == 2.0
    assert r.spread == {"fastconv": 0.0, "torch": 0.0}
    r = harness.Result.from_samples(case, {"fastconv": [1.0, 2.0, 3.0], "torch": [4.0]})
    assert r.spread["fastconv"] == pytest.approx(0.25)   # quartiles 1.5 and 2.5 around 2
    machine = harness.Machine(2, 100.0, 10.0, "cpu", "avx2")
    assert "±25%" in harness.format_table([r], machine)


def test_the_roofline_places_cases_with_flops_and_bytes_under_the_measured_roof(tmp_path):
    pytest.importorskip("matplotlib")
    runners = {"fastconv": None}
    compute = harness.Result(harness.Case("conv", "fwd", runners, ["fastconv"], flops=8e9, bytes=4e6), {"fastconv": 0.1})
    memory = harness.Result(harness.Case("bn", "fwd", runners, ["fastconv"], bytes=4e6), {"fastconv": 0.001})
    assert harness.roofline_points([compute, memory]) == [("conv", "fwd", 2000.0, 80.0)]
    machine = harness.Machine(2, 100.0, 10.0, "cpu", "avx2")
    harness.write_roofline(tmp_path / "roofline.png", [compute, memory], machine, "today")
    assert (tmp_path / "roofline.png").stat().st_size > 10_000
    with pytest.raises(ValueError, match="nothing to place on a roofline"):
        harness.write_roofline(tmp_path / "none.png", [memory], machine, "today")


def test_each_round_times_every_runner_on_its_second_call_in_a_row():
    calls = []
    runners = {name: (lambda name=name: calls.append(name)) for name in "abcd"}
    samples = harness.time_interleaved_samples(runners, repeats=4, warmup=0)
    assert all(len(s) == 4 for s in samples.values())
    rounds = [calls[i:i + 8] for i in range(0, len(calls), 8)]
    assert all(r[0::2] == r[1::2] and sorted(r[0::2]) == list("abcd") for r in rounds)  # each twice in a row
    predecessors = {(r[j - 1], r[j]) for r in rounds for j in range(2, 8, 2)}
    assert len(predecessors) == 12  # in 4 rounds, every runner after each of the 3 others
    again = []
    harness.time_interleaved_samples({n: (lambda n=n: again.append(n)) for n in "abcd"}, repeats=4, warmup=0)
    assert again == calls  # the same orders in every run


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 10, 11, 12])
def test_carryover_orders_put_every_runner_after_every_other_once_or_twice(n):
    orders = harness.carryover_orders(n)
    assert len(orders) == n + n % 2 and all(sorted(order) == list(range(n)) for order in orders)
    pairs = collections.Counter((order[j - 1], order[j]) for order in orders for j in range(1, n))
    assert set(pairs) == {(a, b) for a in range(n) for b in range(n) if a != b}
    assert max(pairs.values(), default=0) <= (1 if n % 2 == 0 else 2)


def test_a_torch_step_computes_fresh_gradients_each_call_not_their_running_sum():
    torch = pytest.importorskip("torch")
    from fastconv.bench.peers import torch_step
    x = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    step = torch_step(lambda t: t * t, x, torch.ones(3))
    step()
    step()  # accumulated, x.grad would be 4x
    assert x.grad.tolist() == [2.0, -4.0, 6.0]
