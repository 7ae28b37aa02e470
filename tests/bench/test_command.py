"""The fastconv-bench command: mistakes are one line and exit status 2 before anything is
measured; a short run reports progress in plain lines and writes the JSON and the plot."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import fastconv
from fastconv.bench.__main__ import main


@pytest.mark.parametrize("argv, message", [
    (["--only", "resnet99"], "--only resnet99: no layer name contains it"),
    (["--section", "conv2d"], "argument --section: invalid choice: 'conv2d'"),
    (["--section", "pool", "--only", "resnet20_c16"], "--only resnet20_c16: no layer name contains it (sections pool)"),
    (["--threads", "0"], "argument --threads: expected a whole number of at least 1"),
    (["--plot", "{tmp}/absent/bench.png"], "--plot {tmp}/absent/bench.png: the folder {tmp}/absent does not exist"),
    (["--layers", "{tmp}/absent.json"], "--layers {tmp}/absent.json"),
])
def test_a_mistake_is_one_line_and_exit_status_2(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit:
        main([a.format(tmp=tmp_path) for a in argv])
    err = capsys.readouterr().err
    assert exit.value.code == 2
    assert err.count("\n") == 1 and err.startswith("fastconv-bench: error: ")
    assert message.format(tmp=tmp_path) in err


def test_a_short_run_says_what_it_does_and_writes_json_and_plot(tmp_path):
    """As a user runs it (a process of its own, which re-executes itself with its BLAS settings),
    through pipes: no terminal."""
    plot, results = tmp_path / "bench.png", tmp_path / "bench.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(fastconv.__file__).parents[1]),
                                                         os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-m", "fastconv.bench", "--section", "pool", "--mode", "fwd",
                          "--repeats", "1", "--threads", "1", "--plot", str(plot), "--json", str(results)],
                         capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "\r" not in run.stderr and "\x1b" not in run.stderr
    status = run.stderr.splitlines()
    assert status[0] == "loading torch (the main peer)..."
    assert any(line.startswith("preparing pool: 1 layer") for line in status)
    assert "probing the FMA peak and the copy bandwidth..." in status
    assert any(line.startswith("[1/1] pool maxpool2x2 fwd") and "ETA" in line for line in status)
    assert f"wrote the plot to {plot}" in run.stdout and plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads(results.read_text())
    assert [r["name"] for r in report["results"]] == ["maxpool2x2"] and report["machine"]["isa"]


def test_quick_is_one_small_layer_per_family_forward_only_on_one_thread():
    """--quick changes the defaults only: what the command line sets stays."""
    from fastconv.bench.__main__ import build_parser, check_arguments

    parser = build_parser()
    args = parser.parse_args(["--quick"])
    _, selected = check_arguments(parser, args)
    assert (args.repeats, args.mode, args.threads) == (3, ["fwd"], 1)
    assert sorted(section for section, _ in selected) == ["conv", "gemm", "norm", "pool"]
    assert all(layer.get("N", 0) <= 256 for _, layer in selected)

    args = parser.parse_args(["--quick", "--repeats", "5", "--threads", "2", "--mode", "fwd+bwd"])
    check_arguments(parser, args)
    assert (args.repeats, args.mode, args.threads) == (5, ["fwd+bwd"], 2)
    args = parser.parse_args([])
    check_arguments(parser, args)
    assert (args.repeats, args.mode, args.threads) == (7, ["fwd", "fwd+bwd"], 2)
