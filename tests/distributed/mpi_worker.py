"""What each rank runs in tests/distributed/: `mpiexec -n 2 python mpi_worker.py SCENARIO OUT`.
The scenarios' data and model are built here, so the test's single-process reference builds
exactly the same ones."""
import sys

import numpy as np

import fastconv
from fastconv import distributed, nn

SAMPLES, GLOBAL_BATCH, EPOCHS = 48, 8, 2


def tiny_data():
    rng = np.random.default_rng(7)
    return rng.standard_normal((SAMPLES, 1, 6, 6)), rng.integers(0, 3, SAMPLES)


def tiny_net(seed, classes=3):
    """A float64 conv net without dropout or batch norm: its steps are the same however a global
    batch's gradient is summed, up to rounding."""
    fastconv.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, dtype=np.float64), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 6 * 6, classes, dtype=np.float64))


def train_config(**changes):
    from fastconv.models.trainer import TrainConfig
    return TrainConfig(**{**dict(epochs=EPOCHS, lr=0.1, batch_size=GLOBAL_BATCH, momentum=0.9, weight_decay=1e-3,
                                 schedule="none"), **changes})


def trained(out):
    """Trains with the Trainer on 2 ranks, rank 1 starting from other weights (rank 0's must win),
    gradients in buckets of 512 bytes (several per step); rank 0 saves the parameters."""
    from fastconv.models.trainer import Trainer
    ctx = distributed.init()
    model = tiny_net(seed=ctx.rank)
    trainer = Trainer(model, train_config(distributed=True))
    trainer.reducer.close()
    trainer.reducer = distributed.GradientReducer(list(model.parameters()), ctx, bucket_bytes=512)
    assert len(trainer.reducer.buckets) > 1
    x, y = tiny_data()
    trainer.fit(x, y, x[:8], y[:8])
    if ctx.is_main:
        np.savez(out, **{name: p.data for name, p in model.named_parameters()})


def resumed(out):
    """Trains one epoch with a checkpoint, then resumes from it in a new Trainer for the second:
    rank 0 saves the parameters, which must be those of trained()."""
    from fastconv.models.trainer import Trainer
    ctx = distributed.init()
    x, y = tiny_data()
    saved = out + ".checkpoint.npz"
    Trainer(tiny_net(seed=ctx.rank), train_config(distributed=True, checkpoint=saved, epochs=1)).fit(x, y, x[:8], y[:8])
    model = tiny_net(seed=ctx.rank + 10)  # other weights: the checkpoint's must replace them
    Trainer(model, train_config(distributed=True, checkpoint=saved, resume=True)).fit(x, y, x[:8], y[:8])
    if ctx.is_main:
        np.savez(out, **{name: p.data for name, p in model.named_parameters()})


def first_epoch(out):
    """One epoch with a checkpoint at `out` (written by rank 0), for a resume on another world size."""
    from fastconv.models.trainer import Trainer
    ctx = distributed.init()
    x, y = tiny_data()
    Trainer(tiny_net(seed=ctx.rank), train_config(distributed=True, checkpoint=out, epochs=1)).fit(x, y, x[:8], y[:8])


def second_epoch(out):
    """Resumes the checkpoint at `out` for the second epoch; rank 0 saves the parameters to out.npz."""
    from fastconv.models.trainer import Trainer
    ctx = distributed.init()
    x, y = tiny_data()
    model = tiny_net(seed=ctx.rank + 10)  # other weights: the checkpoint's must replace them
    Trainer(model, train_config(distributed=True, checkpoint=out, resume=True)).fit(x, y, x[:8], y[:8])
    if ctx.is_main:
        np.savez(out + ".npz", **{name: p.data for name, p in model.named_parameters()})


def accumulated(out):
    """The steps of trained(), each rank's share of a global batch taken as two micro-batches: the
    first backward inside no_sync() (local accumulation), the second one reduced; then proves a
    second backward outside no_sync() is refused rather than silently mixed into a reduction."""
    from fastconv import functional as F
    from fastconv.autograd import Tensor
    from fastconv.models.trainer import make_optimizer
    ctx = distributed.init()
    model, config = tiny_net(seed=0), train_config()
    optimizer = make_optimizer(list(model.parameters()), config)
    reducer = distributed.GradientReducer(list(model.parameters()), ctx, bucket_bytes=512)
    x, y = tiny_data()
    sampler = distributed.DistributedSampler(len(x), config.batch_size, ctx.rank, ctx.world_size, seed=config.seed)
    for epoch in range(config.epochs):
        for indices in sampler.batches(epoch):
            optimizer.zero_grad()
            halves = np.array_split(indices, 2)
            with reducer.no_sync():
                (F.cross_entropy(model(Tensor(x[halves[0]])), y[halves[0]]) * 0.5).backward()
            (F.cross_entropy(model(Tensor(x[halves[1]])), y[halves[1]]) * 0.5).backward()
            reducer.synchronize()
            optimizer.step()
    if ctx.is_main:
        np.savez(out, **{name: p.data for name, p in model.named_parameters()})
    optimizer.zero_grad()
    F.cross_entropy(model(Tensor(x[:4])), y[:4]).backward()
    try:
        F.cross_entropy(model(Tensor(x[:4])), y[:4]).backward()
    except RuntimeError as e:
        assert "no_sync" in str(e), e
        reducer.synchronize()
        return
    raise AssertionError("a second backward before synchronize() was accepted")


def one_rank_hangs(out):
    """Rank 1 never reaches the first collective: rank 0 must give up after the timeout."""
    ctx = distributed.init()
    if ctx.rank == 1:
        import time
        time.sleep(120)
    distributed.allreduce_sum([1.0], ctx)


def one_rank_raises(out):
    ctx = distributed.init()
    if ctx.rank == 1:
        raise RuntimeError("rank 1 fails before the barrier")
    ctx.comm.Barrier()  # without the abort, rank 0 would wait here forever


def shapes_differ(out):
    from fastconv.models.trainer import Trainer
    ctx = distributed.init()
    Trainer(tiny_net(seed=0, classes=3 + ctx.rank), train_config(distributed=True))


if __name__ == "__main__":
    scenarios = {"trained": trained, "resumed": resumed, "first_epoch": first_epoch, "second_epoch": second_epoch,
                 "accumulated": accumulated, "one_rank_hangs": one_rank_hangs,
                 "one_rank_raises": one_rank_raises, "shapes_differ": shapes_differ}
    scenarios[sys.argv[1]](sys.argv[2])
