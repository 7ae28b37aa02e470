"""Images per second of ResNet-20 training steps on W ranks at a fixed global batch, and the time
of one blocking all-reduce of its gradients: the figures behind data-parallel efficiency
(images/s on W ranks / (W x images/s on 1)).

    FASTCONV_NUM_THREADS=1 python -m fastconv.distributed.throughput --width 16
    FASTCONV_NUM_THREADS=1 mpiexec -n 2 python -m fastconv.distributed.throughput --width 16
"""
import argparse
import time

import numpy as np

import fastconv
from fastconv import distributed
from fastconv import functional as F
from fastconv.autograd import Tensor
from fastconv.models import deep
from fastconv.models.trainer import TrainConfig, make_optimizer


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fastconv.distributed.throughput", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=16, help="channels of ResNet-20's first stage")
    parser.add_argument("--batch-size", type=int, default=64, help="the global batch")
    parser.add_argument("--steps", type=int, default=12, help="timed steps, after 2 untimed ones")
    args = parser.parse_args(argv)
    ctx = distributed.init()
    local_batch = distributed.global_batch_split(args.batch_size, ctx.world_size)
    fastconv.manual_seed(0)
    model = deep.ResNet20(1, 10, width=args.width)
    params = list(model.parameters())
    optimizer = make_optimizer(params, TrainConfig(epochs=1, lr=0.05))
    distributed.broadcast_parameters(model, optimizer, ctx)
    reducer = distributed.GradientReducer(params, ctx)
    rng = np.random.default_rng(ctx.rank)
    x, y = rng.standard_normal((local_batch, 1, 32, 32)).astype(np.float32), rng.integers(0, 10, local_batch)
    model.train()
    for step in range(2 + args.steps):
        if step == 2:
            _barrier(ctx)
            reducer.wait_seconds, started = 0.0, time.perf_counter()
        loss = F.cross_entropy(model(Tensor(x)), y)
        optimizer.zero_grad()
        loss.backward()
        reducer.synchronize()
        optimizer.step()
    _barrier(ctx)
    seconds = (time.perf_counter() - started) / args.steps
    gradient_bytes = sum(p.data.nbytes for p in params)
    allreduce = _allreduce_seconds(ctx, gradient_bytes)
    if ctx.is_main:
        line = (f"ResNet-20 width {args.width}, global batch {args.batch_size}, {ctx.world_size} rank(s) x "
                f"{fastconv.get_num_threads()} thread(s): {args.batch_size / seconds:.1f} images/s "
                f"({seconds * 1e3:.1f} ms/step); gradients {gradient_bytes / 2**20:.2f} MiB in "
                f"{len(reducer.buckets)} bucket(s)")
        if ctx.world_size > 1:
            line += (f"; waiting for the reduction (and the slower rank) {reducer.wait_seconds / args.steps * 1e3:.2f} "
                     f"ms/step; one blocking all-reduce of them {allreduce * 1e3:.2f} ms (median of 20)")
        print(line)


def _barrier(ctx):
    if ctx.comm is not None:
        ctx.comm.Barrier()


def _allreduce_seconds(ctx, nbytes, repeats=20):
    if ctx.comm is None:
        return 0.0
    from mpi4py import MPI
    buffer, times = np.zeros(nbytes // 4, np.float32), []
    for _ in range(repeats):
        ctx.comm.Barrier()
        started = time.perf_counter()
        ctx.comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)
        times.append(time.perf_counter() - started)
    return float(np.median(times))


if __name__ == "__main__":
    main()
