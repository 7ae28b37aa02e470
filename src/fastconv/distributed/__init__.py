"""Data-parallel training over MPI (mpi4py): every rank holds the whole model, trains on its
share of each global batch, and averages gradients with the others before each step.

    mpiexec -n 2 fastconv train resnet20 --distributed
    mpiexec -n 2 python python/resnet20.py --distributed

init() joins the ranks mpiexec started (a plain 1-process run is world size 1 and imports no
MPI); check_parameter_shapes() and broadcast_parameters() make them start from rank 0's model
and optimiser; DistributedSampler shards each epoch; GradientReducer averages the gradients in
buckets of non-blocking all-reduces that start during backward. Every collective waits at most
collective_timeout() seconds ($FASTCONV_COLLECTIVE_TIMEOUT), then aborts every rank. The Trainer
does all of it with TrainConfig(distributed=True).
"""
from fastconv.distributed.reducer import DEFAULT_BUCKET_BYTES, GradientReducer
from fastconv.distributed.runtime import (CollectiveTimeout, Context, collective_timeout, context, init,
                                          is_initialized)
from fastconv.distributed.sampler import DistributedSampler, ShardedLoader, global_batch_split
from fastconv.distributed.sync import (allreduce_sum, broadcast_buffers, broadcast_parameters,
                                       check_parameter_shapes)

__all__ = ["Context", "init", "context", "is_initialized", "DistributedSampler", "ShardedLoader",
           "global_batch_split", "broadcast_parameters", "broadcast_buffers", "check_parameter_shapes",
           "GradientReducer", "DEFAULT_BUCKET_BYTES", "allreduce_sum", "CollectiveTimeout",
           "collective_timeout"]
