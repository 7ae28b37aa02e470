"""Data-parallel training on 2 MPI ranks against one process on the same global batches, and
the ways a distributed run must fail: promptly, on every rank, with a message."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import fastconv
from fastconv import distributed
from fastconv.autograd import Tensor
from fastconv import functional as F
from fastconv.models.trainer import make_optimizer
from tests.distributed import mpi_worker

WORKER = os.path.join(os.path.dirname(__file__), "mpi_worker.py")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The ranks import the fastconv this test imported (a source tree or an installed one), and tests/.
PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(fastconv.__file__)))
# mpiexec of the mpich wheel sits beside the interpreter, which need not be on PATH.
MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")
LAUNCHER_ENV = [name for pair in distributed.runtime._LAUNCHER_ENV for name in pair]


def _mpi_missing():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return "mpi4py is not installed (pip install fastconv[mpi])"
    if MPIEXEC is None:
        return "no mpiexec beside the interpreter or on PATH (pip install mpich)"
    return None


needs_mpi = pytest.mark.skipif(_mpi_missing() is not None, reason=str(_mpi_missing()))


def run_ranks(scenario, out, ranks=2, timeout=60, **env_changes):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [PACKAGE_PARENT, ROOT,
                                                                      os.environ.get("PYTHONPATH")])),
               FASTCONV_NUM_THREADS="1", **env_changes)
    return subprocess.run([MPIEXEC, "-n", str(ranks), sys.executable, WORKER, scenario, str(out)], env=env,
                          capture_output=True, text=True, timeout=timeout)


def run_two_ranks(scenario, out, timeout=60, **env_changes):
    return run_ranks(scenario, out, 2, timeout, **env_changes)


@needs_mpi
def test_two_ranks_take_the_steps_of_one_process_on_the_global_batch(tmp_path):
    out = tmp_path / "params.npz"
    run = run_two_ranks("trained", out)
    assert run.returncode == 0, run.stderr
    model = mpi_worker.tiny_net(seed=0)
    config = mpi_worker.train_config()
    optimizer = make_optimizer(list(model.parameters()), config)
    x, y = mpi_worker.tiny_data()
    sampler = distributed.DistributedSampler(len(x), config.batch_size, rank=0, world_size=1, seed=config.seed)
    for epoch in range(config.epochs):
        for indices in sampler.batches(epoch):
            loss = F.cross_entropy(model(Tensor(x[indices])), y[indices])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with np.load(out) as saved:
        for name, p in model.named_parameters():
            np.testing.assert_allclose(saved[name], p.data, rtol=1e-10, atol=1e-12, err_msg=name)


def assert_same_parameters(path, reference_path, rtol=1e-10, atol=1e-12):
    with np.load(reference_path) as reference, np.load(path) as saved:
        for name in reference.files:
            np.testing.assert_allclose(saved[name], reference[name], rtol=rtol, atol=atol, err_msg=name)


def assert_scenario_trains_as_trained(scenario, tmp_path, **tolerances):
    """Runs `scenario` and the uninterrupted `trained` on 2 ranks; their parameters must agree."""
    for name in ("trained", scenario):
        run = run_two_ranks(name, tmp_path / f"{name}.npz")
        assert run.returncode == 0, run.stderr
    assert_same_parameters(tmp_path / f"{scenario}.npz", tmp_path / "trained.npz", **tolerances)


@needs_mpi
def test_a_resumed_distributed_run_takes_the_steps_of_one_that_never_stopped(tmp_path):
    assert_scenario_trains_as_trained("resumed", tmp_path, rtol=1e-12, atol=1e-14)


@needs_mpi
@pytest.mark.parametrize("writers, readers", [(2, 1), (1, 2)])
def test_a_checkpoint_written_by_n_processes_resumes_on_m(writers, readers, tmp_path):
    saved = tmp_path / "run.checkpoint.npz"
    first, whole = run_ranks("first_epoch", saved, writers), run_two_ranks("trained", tmp_path / "whole.npz")
    assert first.returncode == 0 and whole.returncode == 0, first.stderr + whole.stderr
    second = run_ranks("second_epoch", saved, readers)
    assert second.returncode == 0, second.stderr
    assert_same_parameters(str(saved) + ".npz", tmp_path / "whole.npz")


@needs_mpi
def test_accumulating_in_no_sync_takes_the_steps_of_whole_batches(tmp_path):
    assert_scenario_trains_as_trained("accumulated", tmp_path)


@needs_mpi
def test_a_rank_that_hangs_ends_the_run_after_the_collective_timeout(tmp_path):
    run = run_two_ranks("one_rank_hangs", tmp_path / "unused", timeout=60, FASTCONV_COLLECTIVE_TIMEOUT="2")
    assert run.returncode != 0
    assert "sum over ranks: rank 0 waited" in run.stderr
    assert "FASTCONV_COLLECTIVE_TIMEOUT" in run.stderr


def test_the_collective_timeout_must_be_a_positive_number(monkeypatch):
    monkeypatch.setenv("FASTCONV_COLLECTIVE_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="FASTCONV_COLLECTIVE_TIMEOUT: expected a positive number of seconds"):
        distributed.collective_timeout()
    monkeypatch.setenv("FASTCONV_COLLECTIVE_TIMEOUT", "2.5")
    assert distributed.collective_timeout() == 2.5


@needs_mpi
def test_a_rank_that_raises_ends_every_rank_with_its_message(tmp_path):
    run = run_two_ranks("one_rank_raises", tmp_path / "unused", timeout=30)
    assert run.returncode != 0
    assert "rank 1 fails before the barrier" in run.stderr
    assert "rank 1 raised; aborting all ranks" in run.stderr


@needs_mpi
def test_parameter_shapes_that_differ_across_ranks_are_named(tmp_path):
    run = run_two_ranks("shapes_differ", tmp_path / "unused", timeout=30)
    assert run.returncode != 0
    assert "parameter shapes differ across ranks: 3.weight is (3, 144) float64 on rank 0" in run.stderr


def test_each_rank_takes_an_equal_disjoint_share_of_every_global_batch():
    shares = [list(distributed.DistributedSampler(20, 8, rank, 2, seed=3).batches(epoch=1)) for rank in range(2)]
    whole = list(distributed.DistributedSampler(20, 8, 0, 1, seed=3).batches(epoch=1))
    assert len(whole) == 2  # the last 4 samples make no global batch and are dropped
    for step, batch in enumerate(whole):
        assert [len(s[step]) for s in shares] == [4, 4]
        np.testing.assert_array_equal(np.concatenate([s[step] for s in shares]), batch)


def test_epochs_are_shuffled_differently():
    sampler = distributed.DistributedSampler(20, 20, 0, 1, seed=3)
    assert not np.array_equal(next(sampler.batches(0)), next(sampler.batches(1)))


def test_a_global_batch_the_world_size_does_not_divide_is_refused():
    with pytest.raises(ValueError, match="batch_size 9 is the global batch and must be a multiple of the world size 2"):
        distributed.DistributedSampler(100, 9, 0, 2)


def test_one_process_is_world_size_one_without_importing_mpi():
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_ENV}
    env["PYTHONPATH"] = PACKAGE_PARENT
    code = ("import sys; from fastconv import distributed; c = distributed.init(); "
            "print(c.rank, c.world_size, c.is_main, 'mpi4py' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["0", "1", "True", "False"]


@needs_mpi
def test_fastconv_train_distributed_prints_once_and_rank_0_checkpoints(tmp_path):
    saved = tmp_path / "resnet20.npz"
    command = [MPIEXEC, "-n", "2", sys.executable, "-m", "fastconv.cli", "train", "resnet20", "--distributed",
               "--width", "4", "--limit", "128", "--epochs", "1", "--batch-size", "32", "--threads", "1",
               "--checkpoint", str(saved)]
    env = dict(os.environ, PYTHONPATH=PACKAGE_PARENT)
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    summaries = [line for line in run.stdout.splitlines() if line.startswith("resnet20 on ")]
    assert len(summaries) == 1 and "1 epochs" in summaries[0]
    assert saved.exists()


@needs_mpi
def test_fastconv_train_refuses_a_global_batch_the_ranks_cannot_share():
    command = [MPIEXEC, "-n", "2", sys.executable, "-m", "fastconv.cli", "train", "resnet20", "--distributed",
               "--batch-size", "33"]
    env = dict(os.environ, PYTHONPATH=PACKAGE_PARENT)
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert "--batch-size 33 is the global batch and must be a multiple of the 2 processes" in run.stderr
