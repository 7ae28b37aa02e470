"""The programs in python/, one per model of the suite: each runs briefly (a few hundred digits,
a few epochs, narrow networks), exits 0 and learns well above chance."""
import importlib.util
import re
from pathlib import Path

import pytest

from fastconv.models.suite import SUITE

pytestmark = [pytest.mark.skipif(importlib.util.find_spec("sklearn") is None or importlib.util.find_spec("tqdm") is None,
                                 reason="needs scikit-learn (digits) and tqdm"),
              pytest.mark.usefixtures("deterministic_algorithms")]
SCRIPTS = Path(__file__).resolve().parents[2] / "python"
PROGRAM = {model: "softmax_classifier.py" if model == "softmax" else f"{model}.py" for model in SUITE}

# Short runs on the 8x8 digits, each with an accuracy it reaches (ten classes: chance is 0.1).
BRIEF_RUNS = {
    "knn.py": (["--limit", "300", "--folds", "3", "--k", "1", "3"], 0.8),
    "linear_svm.py": (["--epochs", "3", "--lr", "0.05"], 0.8),
    "softmax_classifier.py": (["--epochs", "8"], 0.8),
    "perceptron.py": (["--epochs", "2"], 0.8),
    "mlp.py": (["--limit", "300", "--epochs", "5", "--width", "32", "--batch-size", "32"], 0.6),
    "lenet5.py": (["--limit", "300", "--epochs", "3", "--lr", "0.1", "--batch-size", "32"], 0.4),
    "alexnet.py": (["--limit", "300", "--epochs", "8", "--width", "16", "--batch-size", "32"], 0.3),
    "vgg.py": (["--limit", "300", "--epochs", "2", "--width", "4", "--batch-size", "32"], 0.3),
    "resnet20.py": (["--limit", "300", "--epochs", "3", "--width", "4", "--batch-size", "16", "--lr", "0.05"], 0.3),
}


def load_program(name):
    spec = importlib.util.spec_from_file_location(f"python_{Path(name).stem}", SCRIPTS / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Programs of models outside the `fastconv train` suite, run briefly by their own tests.
OUTSIDE_THE_SUITE = {
    "char_rnn.py", "captioning.py",                   # tests/models/test_sequence.py
    "fcn.py", "hrnet.py", "attention_to_scale.py",    # tests/models/test_segmentation.py
    "faster_rcnn.py", "mask_rcnn.py",                 # tests/models/test_detection.py
    "spatial_transformer.py",                         # tests/models/test_stn.py
    "network_visualization.py", "style_transfer.py",  # tests/models/test_visualization.py
}


def test_every_model_of_the_suite_has_a_program_and_every_program_a_brief_run():
    assert sorted(PROGRAM.values()) == sorted(BRIEF_RUNS)
    assert sorted(set(PROGRAM.values()) | OUTSIDE_THE_SUITE) == sorted(p.name for p in SCRIPTS.glob("*.py"))


@pytest.mark.parametrize("name", BRIEF_RUNS)
def test_each_program_learns_the_digits_and_exits_0(name, capsys):
    argv, threshold = BRIEF_RUNS[name]
    assert load_program(name).main(["--data", "digits", *argv]) == 0
    out = capsys.readouterr().out
    accuracy = float(re.search(r"test acc (\d\.\d+)", out).group(1))
    assert accuracy > threshold, out


def test_the_mlp_program_solves_xor_where_the_perceptron_program_cannot(capsys):
    accuracies = {}
    for name in ("perceptron.py", "mlp.py"):
        assert load_program(name).main(["--data", "xor"]) == 0
        accuracies[name] = float(re.search(r"test acc (\d\.\d+)", capsys.readouterr().out).group(1))
    assert accuracies["perceptron.py"] < 0.8 and accuracies["mlp.py"] > 0.95


def test_a_program_writes_its_plot_and_says_where(tmp_path, capsys):
    path = tmp_path / "lenet5.png"
    argv, _ = BRIEF_RUNS["lenet5.py"]
    assert load_program("lenet5.py").main(["--data", "digits", *argv[:2], "--epochs", "1", "--plot", str(path)]) == 0
    assert capsys.readouterr().out.strip().endswith(f"wrote the plot to {path}")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_program_refuses_a_mistake_in_one_line(capsys):
    with pytest.raises(SystemExit) as exit:
        load_program("resnet20.py").main(["--shortcut", "C"])
    err = capsys.readouterr().err
    assert exit.value.code == 2 and err.count("\n") == 1 and err.startswith("resnet20.py: error: argument --shortcut")


def test_help_shows_the_programs_own_defaults(capsys):
    with pytest.raises(SystemExit):
        load_program("vgg.py").main(["--help"])
    words = " ".join(capsys.readouterr().out.split())  # argparse wraps its help lines
    assert "VGG-style" in words
    assert "--width N hidden units (mlp) or channels of the first stage (default: 8)" in words
