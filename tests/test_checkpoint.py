"""Checkpoints: round trip, exact resume, and a kill mid-save that must leave the previous
checkpoint intact."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastconv
from fastconv import Tensor, checkpoint, nn, optim
from fastconv.optim import lr_scheduler


def make_run():
    fastconv.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Dropout(0.2), nn.Linear(4, 2))
    return model, optim.Adam(model.parameters(), lr=0.01)


def train(model, optimizer, steps):
    rng = np.random.default_rng(len(optimizer.state))  # same data whatever the history
    for _ in range(steps):
        x = Tensor(rng.standard_normal((8, 3)).astype(np.float32))
        loss = nn.CrossEntropyLoss()(model(x), rng.integers(0, 2, 8))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def test_resume_continues_exactly(tmp_path):
    path = str(tmp_path / "run.npz")
    model, optimizer = make_run()
    train(model, optimizer, 2)
    checkpoint.save(path, model, optimizer, epoch=2)
    train(model, optimizer, 2)

    resumed_model, resumed_optimizer = make_run()
    assert checkpoint.load(path, resumed_model, resumed_optimizer) == {"epoch": 2}
    train(resumed_model, resumed_optimizer, 2)  # dropout masks too: the random state is restored
    for (name, a), b in zip(model.state_dict().items(), resumed_model.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_extra_values_round_trip(tmp_path):
    path = str(tmp_path / "run.npz")
    model, optimizer = make_run()
    scheduler = lr_scheduler.StepLR(optimizer, step_size=2)
    checkpoint.save(path, model, optimizer, epoch=7, scheduler=scheduler.state_dict(),
                    best=np.arange(3.0), note="warmup done")
    info = checkpoint.load(path, *make_run())
    assert info["epoch"] == 7 and info["note"] == "warmup done"
    assert info["scheduler"] == scheduler.state_dict()
    np.testing.assert_array_equal(info["best"], np.arange(3.0))
    with np.load(path, allow_pickle=False) as stored:  # no pickled objects inside
        assert all(stored[k].dtype != object for k in stored.files)


def test_model_only_checkpoint(tmp_path):
    path = str(tmp_path / "weights.npz")
    model, optimizer = make_run()
    checkpoint.save(path, model)
    checkpoint.load(path, model)
    with pytest.raises(ValueError, match="no optimizer state"):
        checkpoint.load(path, model, optimizer)


def test_failed_save_keeps_previous_and_leaves_no_temp_file(tmp_path, monkeypatch):
    path = str(tmp_path / "run.npz")
    model, optimizer = make_run()
    checkpoint.save(path, model, optimizer, epoch=1)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(path, model, optimizer, epoch=2)
    assert os.listdir(tmp_path) == ["run.npz"]
    assert checkpoint.load(path, *make_run())["epoch"] == 1


def test_kill_mid_save_leaves_previous_checkpoint_intact(tmp_path):
    """A child process saves epoch 1, then is killed (os._exit: no cleanup, no finally) halfway
    through writing epoch 2. The checkpoint must still load as epoch 1."""
    path = str(tmp_path / "run.npz")
    child = textwrap.dedent(f"""
        import os, numpy as np
        from fastconv import checkpoint, nn
        model = nn.Linear(200, 200)
        checkpoint.save({path!r}, model, epoch=1)
        real_savez = np.savez
        def killed_mid_write(f, **arrays):
            real_savez(f, **arrays)
            f.truncate(f.tell() // 2)
            f.flush()
            os._exit(9)
        np.savez = killed_mid_write
        checkpoint.save({path!r}, model, epoch=2)
    """)
    src = os.path.join(os.path.dirname(fastconv.__file__), os.pardir)
    result = subprocess.run([sys.executable, "-c", child], env={**os.environ, "PYTHONPATH": src})
    assert result.returncode == 9
    assert checkpoint.load(path, nn.Linear(200, 200))["epoch"] == 1
    assert len(os.listdir(tmp_path)) == 2  # the killed save's temporary file
    checkpoint.save(path, nn.Linear(200, 200), epoch=3)
    assert os.listdir(tmp_path) == ["run.npz"]
    assert checkpoint.load(path, nn.Linear(200, 200))["epoch"] == 3


def _saved_unfit(path, case):
    """Saves, under `path`, a trained run whose state does not fit make_run()'s in one way."""
    model, optimizer = make_run()
    train(model, optimizer, 1)
    params = list(model.parameters())
    first, last = params[0], params[-1]
    if case == "model key":
        model = nn.Sequential(model, nn.Linear(2, 2))
    elif case == "model shape":
        last.data = last.data[:-1].copy()
    elif case == "model dtype":
        first.data = first.data.astype(np.float64)
    elif case == "optimizer state shape":
        optimizer.state[last]["exp_avg"] = np.zeros(7, np.float32)
    elif case == "optimizer state dtype":
        optimizer.state[last]["exp_avg"] = optimizer.state[last]["exp_avg"].astype(np.float64)
    elif case == "optimizer groups":
        optimizer = optim.Adam(params[:-1], lr=0.01)
    checkpoint.save(path, model, optimizer)


@pytest.mark.parametrize("case,message", [
    ("model key", r"model state lacks \['0\.bias'"), ("model shape", r"model state 3\.bias is float32 \(1,\)"),
    ("model dtype", r"model state 0\.weight is float64"),
    ("optimizer state shape", r"optimizer state of parameter 5: exp_avg is float32 \(7,\)"),
    ("optimizer state dtype", r"optimizer state of parameter 5: exp_avg is float64"),
    ("optimizer groups", r"parameter groups have sizes \[5\], this optimizer's \[6\]"),
])
def test_load_of_a_state_that_does_not_fit_changes_nothing(tmp_path, case, message):
    path = str(tmp_path / "run.npz")
    _saved_unfit(path, case)
    model, optimizer = make_run()
    train(model, optimizer, 1)
    before, optimizer_before = model.state_dict(), optimizer.state_dict()
    rng_before = fastconv.backend.get_rng_state()
    with pytest.raises(ValueError, match=rf"^checkpoint {path}: .*{message}"):
        checkpoint.load(path, model, optimizer)
    for name, array in model.state_dict().items():
        np.testing.assert_array_equal(array, before[name], err_msg=name)
    for index, state in optimizer.state_dict()["state"].items():
        for name, value in state.items():
            np.testing.assert_array_equal(value, optimizer_before["state"][index][name])
    assert fastconv.backend.get_rng_state() == rng_before
