"""Averaging gradients across ranks in buckets, DistributedDataParallel's way (Li et al. 2020,
"PyTorch Distributed", section 3.2.3): parameters in reverse order, since backward produces the
last layers' gradients first, are packed into buckets of about `bucket_bytes`; each bucket's
sum is a non-blocking Iallreduce, started as soon as all its gradients are marked ready, so the
reductions overlap each other (and, given a per-parameter hook in the backward walk, the rest
of backward). synchronize() starts what is left, waits for all, and divides by the world size."""
import time

import numpy as np

from fastconv.distributed.runtime import Context, context

DEFAULT_BUCKET_BYTES = 2 << 20


class _Bucket:
    def __init__(self, params):
        self.params = params
        self.buffer = np.empty(sum(p.size for p in params), dtype=params[0].dtype)
        self.waiting = len(params)
        self.request = None


class GradientReducer:
    def __init__(self, params, ctx: Context = None, bucket_bytes=DEFAULT_BUCKET_BYTES):
        self.ctx = ctx or context()
        self.buckets, self.bucket_of = [], {}
        current = []
        for p in reversed(list(params)):
            if current and (p.dtype != current[0].dtype or
                            sum(q.data.nbytes for q in current) + p.data.nbytes > bucket_bytes):
                self.buckets.append(_Bucket(current))
                current = []
            current.append(p)
        if current:
            self.buckets.append(_Bucket(current))
        for bucket in self.buckets:
            for p in bucket.params:
                self.bucket_of[id(p)] = bucket
        self.wait_seconds = 0.0   # time spent waiting for reductions, summed over steps

    def mark_ready(self, param):
        """param's gradient is final for this step; its bucket starts reducing once all are."""
        bucket = self.bucket_of[id(param)]
        bucket.waiting -= 1
        if bucket.waiting == 0 and bucket.request is None:  # not twice when backward runs twice
            self._start(bucket)

    def _start(self, bucket):
        offset = 0
        for p in bucket.params:
            chunk = bucket.buffer[offset:offset + p.size]
            if p.grad is None:  # unused this step on this rank; it may be used on another
                chunk[...] = 0
            else:
                chunk[...] = p.grad.data.reshape(-1)
            offset += p.size
        from mpi4py import MPI
        bucket.request = self.ctx.comm.Iallreduce(MPI.IN_PLACE, bucket.buffer, op=MPI.SUM)

    def synchronize(self):
        """Every gradient replaced by its mean over the ranks; call after backward, before the
        optimiser's step."""
        if self.ctx.world_size == 1:
            return
        for bucket in self.buckets:
            if bucket.request is None:
                self._start(bucket)
        started = time.perf_counter()
        for bucket in self.buckets:
            bucket.request.Wait()
        self.wait_seconds += time.perf_counter() - started
        from fastconv.autograd import Tensor
        for bucket in self.buckets:
            bucket.buffer /= self.ctx.world_size
            offset = 0
            for p in bucket.params:
                mean = bucket.buffer[offset:offset + p.size].reshape(p.shape)
                if p.grad is None:
                    p.grad = Tensor(mean.copy())
                else:
                    p.grad.data[...] = mean
                offset += p.size
            bucket.request, bucket.waiting = None, len(bucket.params)
