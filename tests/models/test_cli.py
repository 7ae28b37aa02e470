"""`fastconv train MODEL` and the python/ scripts: each model runs end to end and reports one line."""
import importlib.util
import runpy
import sys
from pathlib import Path

import pytest

from fastconv import cli

pytestmark = pytest.mark.skipif(importlib.util.find_spec("sklearn") is None or importlib.util.find_spec("tqdm") is None,
                                reason="needs scikit-learn (digits) and tqdm")
SCRIPTS = Path(__file__).resolve().parents[2] / "python"


CLASSIC = sorted(m for m, run in cli.MODELS.items() if run.__module__.endswith("classic_runs"))


@pytest.mark.parametrize("model", CLASSIC)  # the networks' CLI runs are in test_deep.py, on fewer samples
def test_each_model_trains_on_digits_and_prints_a_summary(model, capsys):
    result = cli.main(["train", model, "--data", "digits", "--epochs", "2"])
    line = capsys.readouterr().out.strip()
    assert line == result.summary() and "digits" in line and "test acc" in line
    assert result.test_accuracy > 0.5  # ten classes: chance is 0.1


def test_plot_writes_a_png(tmp_path):
    path = tmp_path / "softmax.png"
    cli.main(["train", "softmax", "--data", "digits", "--epochs", "2", "--plot", str(path)])
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_help_after_the_model_lists_its_options(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "resnet20", "--help"])
    assert "--checkpoint PATH" in capsys.readouterr().out


def test_unknown_model_is_refused(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "transformer"])
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize("script", ["knn.py", "linear_svm.py", "softmax_classifier.py", "perceptron.py", "mlp.py"])
def test_scripts_are_thin_wrappers(script, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [script, "--data", "digits", "--epochs", "1"])
    runpy.run_path(str(SCRIPTS / script), run_name="__main__")
    assert "on digits 8x8" in capsys.readouterr().out
