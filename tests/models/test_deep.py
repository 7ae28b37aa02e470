"""The neural networks: output shapes, ResNet's shortcut against PyTorch, brief training on real
digits, XOR (perceptron fails, MLP solves it), exact resume from a checkpoint, and the CLI.

Convolution algorithms are fixed (deterministic mode) and one thread is used: the runs are then
reproducible, and small layers are not slowed by an OpenMP team fighting the other test worker.
"""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastconv
from fastconv import Tensor, backend, cli, gradcheck
from fastconv import functional as F
from fastconv.bench.models import resnet20_torch
from fastconv.data.formats import CIFAR10_TEST_BATCHES, CIFAR10_TRAIN_BATCHES
from fastconv.models import classic_runs, deep, deep_runs
from fastconv.models.datasets import load_split
from fastconv.models.suite import SUITE
from fastconv.models.trainer import Trainer, TrainConfig
from tests.data.test_formats import write_cifar_batch

pytestmark = [pytest.mark.skipif(importlib.util.find_spec("sklearn") is None or importlib.util.find_spec("tqdm") is None,
                                 reason="needs scikit-learn (digits) and tqdm"),
              pytest.mark.usefixtures("deterministic_algorithms")]
ROOT = Path(__file__).resolve().parents[2]


def load_digits32():
    """300 real 8x8 digits brought to 32x32 for training, 360 held out, and their transforms."""
    split = deep_runs.network_inputs(load_split("digits", limit=300))
    train_transform, eval_transform = deep_runs.image_transforms(split)
    return split.x_train, split.x_test, split.y_train, split.y_test, train_transform, eval_transform


@pytest.fixture(scope="module")
def digits32():
    return load_digits32()


NETS = {
    "mlp": lambda c: deep.MLP(c * 32 * 32, 10, hidden=16),
    "lenet5": lambda c: deep.LeNet5(c, 10),
    "alexnet": lambda c: deep.AlexNetSmall(c, 10, width=4, hidden=32),
    "vgg": lambda c: deep.VGGSmall(c, 10, width=4, hidden=32),
    "resnet20-A": lambda c: deep.ResNet20(c, 10, width=4, shortcut="A"),
    "resnet20-B": lambda c: deep.ResNet20(c, 10, width=4, shortcut="B"),
}


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name", NETS)
def test_output_shapes(name, channels, rng):
    model = NETS[name](channels)
    x = Tensor(rng.standard_normal((2, channels, 32, 32)).astype(np.float32))
    for mode in (model.train, model.eval):
        mode()
        y = model(x)
        assert y.shape == (2, 10) and y.dtype == np.float32


def test_resnet20_has_the_papers_size():
    """He et al. 2016, table 6: 0.27M parameters, 20 weighted layers (19 convolutions + 1 fc)."""
    model = deep.ResNet20(3, 10)
    assert 0.265e6 < sum(p.size for p in model.parameters()) < 0.275e6
    assert sum(isinstance(m, fastconv.nn.Conv2d) for m in model.modules()) == 19
    assert sum(isinstance(m, fastconv.nn.BatchNorm2d) for m in model.modules()) == 19


@pytest.fixture(params=["numpy", "threaded"])
def copies(request, monkeypatch):
    """The shortcut's copies by numpy, or by the compiled threaded copy (backend.copy_into) for
    arrays of any size."""
    if request.param == "threaded":
        monkeypatch.setattr(backend, "_THREADED_BYTES", 0)
    return request.param


def test_zero_pad_shortcut_matches_a_direct_construction_and_its_gradient_checks(rng, copies):
    x = rng.standard_normal((2, 3, 5, 5))
    y = deep.ZeroPadShortcut.apply(Tensor(x), 8, 2).data
    expected = np.zeros((2, 8, 3, 3))
    for c in range(3):
        for i in range(3):
            for j in range(3):
                expected[:, 2 + c, i, j] = x[:, c, 2 * i, 2 * j]  # (8 - 3) // 2 = 2 zero channels first
    np.testing.assert_array_equal(y, expected)
    assert gradcheck(lambda t: deep.ZeroPadShortcut.apply(t, 8, 2), [Tensor(x, requires_grad=True)])


def test_zero_pad_shortcut_writes_every_output_value(monkeypatch, rng, copies):
    def poisoned(shape, dtype=np.float64, device="cpu"):  # as a recycled output-cache block may hold
        return np.full(shape, np.nan, dtype)

    monkeypatch.setattr(backend, "empty", poisoned)
    x = rng.standard_normal((2, 3, 6, 6))
    y = deep.ZeroPadShortcut.apply(Tensor(x), 8, 2).data
    np.testing.assert_array_equal(y[:, 2:5], x[:, :, ::2, ::2])
    assert not y[:, :2].any() and not y[:, 5:].any()


def test_zero_pad_shortcut_keeps_a_channels_last_inputs_layout(rng, copies):
    from fastconv.ops import is_channels_last, to_channels_last
    x = rng.standard_normal((2, 4, 9, 9))
    grad = rng.standard_normal((2, 8, 5, 5))
    results = {}
    for layout, array in (("nchw", x), ("channels_last", to_channels_last(x))):
        t = Tensor(array, requires_grad=True)
        y = deep.ZeroPadShortcut.apply(t, 8, 2)
        y.backward(Tensor(to_channels_last(grad) if layout == "channels_last" else grad))
        results[layout] = (y.data, t.grad.data)
    for ours in results["channels_last"]:
        assert is_channels_last(ours)
    for ours, expected in zip(results["channels_last"], results["nchw"]):
        np.testing.assert_array_equal(ours, expected)


@pytest.mark.parametrize("shortcut", ["A", "B"])
def test_resnet20_matches_a_pytorch_copy(shortcut, rng, torch):
    """Same weights in float64: logits and every parameter's gradient of the cross-entropy. The
    PyTorch copy is the models benchmark's peer, so this also checks that the two compare like with like."""
    ours = deep.ResNet20(3, 10, width=4, shortcut=shortcut)
    for t in list(ours.parameters()) + [b for _, b in ours.named_buffers()]:
        t.data = t.data.astype(np.float64)
    theirs = resnet20_torch(torch, 3, 10, width=4, shortcut=shortcut).double()
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()}, strict=False)
    x, y = rng.standard_normal((4, 3, 32, 32)), np.array([0, 3, 7, 9])
    logits = ours(Tensor(x))
    F.cross_entropy(logits, y).backward()
    expected = theirs(torch.from_numpy(x))
    torch.nn.functional.cross_entropy(expected, torch.from_numpy(y)).backward()
    np.testing.assert_allclose(logits.data, expected.detach().numpy(), rtol=1e-9, atol=1e-10)
    their_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.data, their_params[name].grad.numpy(), rtol=1e-7, atol=1e-10, err_msg=name)


# Small widths and a few epochs on 300 digits; each net's hyperparameters are ones it learns
# with in that budget (AlexNet without batch norm needs a gentler lr and no dropout this early).
LEARNING = {
    "mlp": (lambda: deep.MLP(32 * 32, 10, hidden=32), dict(epochs=3, lr=0.05), 0.6),
    "lenet5": (lambda: deep.LeNet5(1, 10), dict(epochs=3, lr=0.1), 0.4),
    "alexnet": (lambda: deep.AlexNetSmall(1, 10, width=8, dropout=0.0), dict(epochs=8, lr=0.005), 0.4),
    "vgg": (lambda: deep.VGGSmall(1, 10, width=8), dict(epochs=3, lr=0.05), 0.5),
    "resnet20": (lambda: deep.ResNet20(1, 10, width=4), dict(epochs=5, lr=0.05, batch_size=16), 0.3),
}


@pytest.mark.parametrize("name", LEARNING)
def test_each_model_learns_real_digits(name, digits32):
    build, options, threshold = LEARNING[name]
    x_train, x_test, y_train, y_test, train_transform, eval_transform = digits32
    fastconv.manual_seed(0)
    trainer = Trainer(build(), TrainConfig(**{"batch_size": 32, **options}), train_transform, eval_transform)
    history = trainer.fit(x_train, y_train, x_test, y_test)
    assert history["loss"][-1] < 0.9 * history["loss"][0]
    assert history["test accuracy"][-1] > threshold  # ten classes: chance is 0.1


def test_perceptron_fails_on_xor_and_the_mlp_solves_it():
    xor = load_split("xor")
    perceptron = classic_runs.run_perceptron(xor)
    mlp = deep_runs.run_mlp(xor, SUITE["mlp"].default_options("xor"))
    assert perceptron.test_accuracy < 0.8  # a line gets at most three of the four clusters
    assert mlp.test_accuracy > 0.95 and "XOR" in mlp.data


def train_vgg(checkpoint, digits32, resume=False, on_epoch_end=None):
    """A fresh process's worth of setup (seed, model, trainer), then 3 epochs; batch norm,
    dropout, augmentation, Nesterov momentum and the cosine schedule all carry state across epochs
    (3, so that a schedule not restored would show in the last epoch's lr)."""
    x_train, x_test, y_train, y_test, train_transform, eval_transform = digits32
    fastconv.manual_seed(0)
    model = deep.VGGSmall(1, 10, width=4, hidden=16)
    config = TrainConfig(epochs=3, lr=0.05, batch_size=32, nesterov=True, checkpoint=checkpoint, resume=resume)
    trainer = Trainer(model, config, train_transform, eval_transform)
    trainer.fit(x_train[:128], y_train[:128], x_test[:64], y_test[:64], on_epoch_end=on_epoch_end)
    return model, trainer


# Run in a child process that dies abruptly (os._exit: no cleanup, no finally) once epoch 1's
# checkpoint is written; the same settings as this process (one thread, fixed algorithms).
KILLED_RUN = """
import os, sys
import fastconv
from fastconv.ops import conv_algo
fastconv.set_num_threads(1)
conv_algo.set_mode("deterministic")
from tests.models.test_deep import load_digits32, train_vgg
train_vgg(sys.argv[1], load_digits32(), on_epoch_end=lambda epoch: os._exit(9))
"""


def test_a_killed_run_resumes_onto_the_same_parameters(tmp_path, digits32):
    straight, straight_trainer = train_vgg(None, digits32)
    path = tmp_path / "vgg.npz"
    paths = [str(Path(fastconv.__file__).parents[1]), str(ROOT)]  # the fastconv under test, and tests/
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths + [os.environ.get("PYTHONPATH", "")])}
    child = subprocess.run([sys.executable, "-c", KILLED_RUN, str(path)], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=300)
    assert child.returncode == 9, child.stderr[-2000:]
    epochs_run = []
    resumed, resumed_trainer = train_vgg(str(path), digits32, resume=True, on_epoch_end=epochs_run.append)
    assert epochs_run == [2, 3]  # it ran only the epochs the killed run did not finish
    for name, value in straight.state_dict().items():
        np.testing.assert_allclose(resumed.state_dict()[name], value, rtol=1e-6, atol=1e-7, err_msg=name)
    assert resumed_trainer.history.keys() == straight_trainer.history.keys()
    for metric, values in straight_trainer.history.items():  # approx takes no nested dicts
        assert resumed_trainer.history[metric] == pytest.approx(values), metric


def train_from_the_command_line(argv):
    """`fastconv train` on argv: the RunResult that main() prints."""
    return cli.train(cli.build_parser().parse_args(["train", *argv]))


def test_cli_trains_lenet5_prints_the_summary_and_writes_a_png(tmp_path, capsys):
    plot = tmp_path / "lenet5.png"
    status = cli.main(["train", "lenet5", "--data", "digits", "--limit", "200", "--epochs", "1",
                       "--plot", str(plot), "--checkpoint", str(tmp_path / "lenet5.npz")])
    summary, wrote = capsys.readouterr().out.strip().split("\n")
    assert status == 0
    assert summary.startswith("lenet5 on digits 8x8") and "padded to 32x32" in summary
    assert wrote == f"wrote the plot to {plot}" and plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "lenet5.npz").is_file()


def test_cifar10_files_train_through_the_cli(tmp_path, rng, capsys):
    """Written in the published format (tests/data); 32x32 RGB goes in unpadded, flips on."""
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    for name in CIFAR10_TRAIN_BATCHES + CIFAR10_TEST_BATCHES:
        write_cifar_batch(root / name, rng, 8)
    result = train_from_the_command_line(["resnet20", "--data", "cifar10", "--data-dir", str(root), "--epochs", "1",
                                          "--width", "4", "--batch-size", "8"])
    assert capsys.readouterr().out.strip() == "resnet20 on CIFAR-10 (32x32 RGB): " + result.summary().split(": ", 1)[1]
    assert len(result.history["loss"]) == 1 and np.isfinite(result.history["loss"][0])


def test_resume_without_a_checkpoint_is_refused(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "lenet5", "--resume"])
    assert "--resume needs --checkpoint" in capsys.readouterr().err


def test_convolutional_nets_refuse_xor():
    with pytest.raises(ValueError, match="holds no images"):
        deep_runs.run_lenet5(load_split("xor"))


def test_benchmark_flop_count_is_resnet20s():
    """40.55M multiply-adds per 32x32 image: stem 3*16*9*1024, stage 1 6*16*16*9*1024, stages 2
    and 3 each (c*2c + 5*(2c)^2)*9*pixels, fc 64*10 - the figure usually quoted as 41M."""
    from fastconv.bench.models import resnet20_flops
    assert resnet20_flops(1) == 2 * 40_551_040
