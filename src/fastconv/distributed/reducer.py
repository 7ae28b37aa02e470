"""Averaging gradients across ranks in buckets, DistributedDataParallel's way (Li et al. 2020,
"PyTorch Distributed", section 3.2.3): parameters in reverse order, since backward produces the
last layers' gradients first, are packed into buckets of about `bucket_bytes`. A hook on each
parameter (Tensor.register_post_accumulate_grad_hook) marks its gradient ready the moment
backward has passed its last use; a bucket whose gradients are all ready starts a non-blocking
Iallreduce at once, so the reductions of the last layers run while backward computes the first.
synchronize() starts what is left, waits for all (bounded by the collective timeout) and divides
by the world size."""
import contextlib

import numpy as np

from fastconv.distributed.runtime import Context, context, wait_all

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
        self.syncing = True       # False inside no_sync(): gradients accumulate locally
        self.hooked = False
        if self.ctx.world_size > 1:
            for bucket in self.buckets:
                for p in bucket.params:
                    p.register_post_accumulate_grad_hook(self._on_gradient_ready)
            self.hooked = True

    def _on_gradient_ready(self, param):
        if self.hooked and self.syncing:
            self.mark_ready(param)

    def close(self):
        """Stops reacting to backward (another reducer takes these parameters over)."""
        self.hooked = False

    @contextlib.contextmanager
    def no_sync(self):
        """Backward passes inside only accumulate gradients locally (gradient accumulation); the
        first backward after it reduces the accumulated sums, as DDP's no_sync."""
        self.syncing = False
        try:
            yield
        finally:
            self.syncing = True

    def mark_ready(self, param):
        """param's gradient is final for this step; its bucket starts reducing once all are."""
        bucket = self.bucket_of[id(param)]
        if bucket.request is not None:
            raise RuntimeError("GradientReducer: a second backward before synchronize() would add to "
                               "gradients already being reduced; call synchronize() after each backward, "
                               "or run the accumulation steps inside reducer.no_sync()")
        bucket.waiting -= 1
        if bucket.waiting == 0:
            self._start(bucket)
        self._progress()

    def _progress(self):
        """Lets MPI move the reductions in flight along: without a progress thread, a
        non-blocking collective advances only inside MPI calls."""
        from mpi4py import MPI
        MPI.Request.Testall([b.request for b in self.buckets if b.request is not None])

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
        self.wait_seconds += wait_all([b.request for b in self.buckets], "gradient all-reduce")
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
