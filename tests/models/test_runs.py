"""The typed face of the model suite: options dataclasses with each model's defaults, the Split,
and what a RunResult plots against what."""
import dataclasses
import importlib.util

import pytest

from fastconv.models import classic_runs, deep_runs
from fastconv.models.datasets import load_split
from fastconv.models.suite import SUITE

needs_digits = pytest.mark.skipif(importlib.util.find_spec("sklearn") is None or importlib.util.find_spec("tqdm") is None,
                                  reason="needs scikit-learn (digits) and tqdm")


def test_every_model_has_frozen_typed_options_whose_defaults_are_its_own():
    for name, model in SUITE.items():
        options = model.default_options(model.datasets[0])
        assert dataclasses.is_dataclass(options) and options.seed == 0, name
        with pytest.raises(dataclasses.FrozenInstanceError):
            options.seed = 1
    assert SUITE["resnet20"].options() == deep_runs.ResNet20Options(epochs=2, lr=0.1, weight_decay=1e-4,
                                                                    schedule="step", width=16, shortcut="A")
    assert SUITE["softmax"].options().lr == 0.5 and SUITE["linear_svm"].options().lr == 0.01
    assert SUITE["mlp"].default_options("xor") == deep_runs.XOR_MLP_OPTIONS
    assert SUITE["mlp"].default_options("mnist") == deep_runs.MLPOptions()
    assert "xor" not in SUITE["lenet5"].datasets and "xor" in SUITE["mlp"].datasets


def test_network_options_become_the_trainers_config():
    config = deep_runs.VGGOptions(epochs=3, nesterov=True, checkpoint="vgg.npz").train_config()
    assert (config.epochs, config.lr, config.nesterov, config.checkpoint, config.schedule) == (
        3, 0.05, True, "vgg.npz", "cosine")


def test_a_split_of_xor_and_its_limit():
    split = load_split("xor", seed=1, limit=50)
    assert split.dataset == "xor" and split.num_classes == 2 and split.sample_shape == (2,)
    assert len(split.x_train) == 50 and len(split.x_test) == 100 and "50 training samples" in split.name
    with pytest.raises(ValueError, match="limit"):
        load_split("xor", limit=0)


@needs_digits
def test_the_knn_plot_is_accuracy_against_k_not_epochs():
    split = load_split("digits", limit=200)
    result = classic_runs.run_knn(split, classic_runs.KnnOptions(candidates=(1, 3, 10), folds=2))
    [(metric, label, xs, values)] = result.panels()
    assert metric == "cv accuracy by k" and label.startswith("k ") and xs == [1, 3, 10] and len(values) == 3


@needs_digits
def test_per_epoch_metrics_are_plotted_against_the_epoch():
    result = classic_runs.run_softmax(load_split("digits", limit=200), classic_runs.SoftmaxOptions(epochs=2))
    assert [(label, xs) for _, label, xs, _ in result.panels()] == [("epoch", [1, 2])] * 3
