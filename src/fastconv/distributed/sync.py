"""Making the ranks agree: the same parameter shapes, then rank 0's values; and the sums of
figures over ranks. Every wait is bounded by the collective timeout (runtime.wait_all)."""
import numpy as np

from fastconv.distributed.runtime import Context, context, rendezvous, wait_all


def _broadcast_arrays(arrays, ctx, what):
    """Rank 0's values of `arrays` on every rank, in place; the broadcasts overlap one another."""
    wait_all([ctx.comm.Ibcast(a, root=0) for a in arrays], what)


def allreduce_sum(values, ctx: Context = None):
    """The sum over ranks of a float64 vector of figures (e.g. loss and counts of an epoch)."""
    from mpi4py import MPI
    ctx = ctx or context()
    total = np.array(values, dtype=np.float64)
    if ctx.world_size > 1:
        wait_all([ctx.comm.Iallreduce(MPI.IN_PLACE, total, op=MPI.SUM)], "sum over ranks")
    return total


def check_parameter_shapes(module, ctx: Context = None):
    """Raises ValueError on every rank (none is left waiting) when any rank's parameters or
    buffers differ from rank 0's in name, shape or dtype: their gradients could not be summed."""
    ctx = ctx or context()
    if ctx.world_size == 1:
        return
    mine = [(name, tuple(t.shape), str(t.dtype)) for name, t in module._state_tensors().items()]
    rendezvous(ctx, "parameter shape check")
    every = ctx.comm.allgather(mine)
    for rank, theirs in enumerate(every[1:], start=1):
        if theirs != every[0]:
            first = next(((a, b) for a, b in zip(every[0], theirs) if a != b), None)
            where = (f"{first[0][0]} is {first[0][1]} {first[0][2]} on rank 0 but {first[1][0]} is "
                     f"{first[1][1]} {first[1][2]} on rank {rank}" if first else
                     f"rank 0 has {len(every[0])} tensors, rank {rank} has {len(theirs)}")
            raise ValueError(f"parameter shapes differ across ranks: {where}; every rank must build the same model")


def broadcast_parameters(module, optimizer=None, ctx: Context = None):
    """Rank 0's parameters, buffers (batch norm's running statistics) and, when given, the
    optimiser's state (momentum buffers, Adam moments, lr) copied onto every rank, in place."""
    ctx = ctx or context()
    if ctx.world_size == 1:
        return
    _broadcast_arrays([t.data for t in module._state_tensors().values()], ctx, "parameter broadcast")
    if optimizer is not None:
        rendezvous(ctx, "optimiser state broadcast")
        state = ctx.comm.bcast(optimizer.state_dict() if ctx.is_main else None, root=0)
        if not ctx.is_main:
            optimizer.load_state_dict(state)


def broadcast_buffers(module, ctx: Context = None):
    """Rank 0's buffers onto every rank: each rank's batch norm sees only its share of a batch,
    so their running statistics drift apart; this makes evaluation and checkpoints agree."""
    ctx = ctx or context()
    if ctx.world_size == 1:
        return
    _broadcast_arrays([t.data for _, t in module.named_buffers()], ctx, "buffer broadcast")
