"""Which process this is: init() reads the launcher's environment (mpiexec sets PMI_* under MPICH
and OMPI_COMM_WORLD_* under Open MPI) and, only when more than one process was launched, imports
mpi4py. A plain `python script.py` is world size 1 and needs no MPI at all."""
import os
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Any, Optional

# (size, rank) variables of the launchers mpi4py's MPI libraries come with
_LAUNCHER_ENV = (("PMI_SIZE", "PMI_RANK"), ("OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK"),
                 ("PMIX_SIZE", "PMIX_RANK"))


@dataclass(frozen=True)
class Context:
    rank: int
    world_size: int
    comm: Optional[Any] = None   # mpi4py's COMM_WORLD; None in a 1-process run

    @property
    def is_main(self):
        return self.rank == 0


_context: Optional[Context] = None
_ABORT_GRACE_S = 1.0
DEFAULT_COLLECTIVE_TIMEOUT_S = 600.0
_TIMEOUT_ENV = "FASTCONV_COLLECTIVE_TIMEOUT"


class CollectiveTimeout(RuntimeError):
    """A collective waited longer than collective_timeout() for the other ranks."""


def _launched_size():
    for size, _ in _LAUNCHER_ENV:
        if size in os.environ:
            return int(os.environ[size])
    return 1


def init() -> Context:
    """Joins the processes mpiexec started (once; later calls return the same Context). In a run
    of several processes it also installs an excepthook that aborts every rank when one raises:
    the others would otherwise wait forever in their next collective."""
    global _context
    if _context is not None:
        return _context
    if _launched_size() <= 1:
        _context = Context(rank=0, world_size=1)
        return _context
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise ModuleNotFoundError("a run under mpiexec needs mpi4py: pip install mpi4py mpich "
                                  "(or: pip install fastconv[mpi])") from e
    comm = MPI.COMM_WORLD
    _context = Context(rank=comm.Get_rank(), world_size=comm.Get_size(), comm=comm)
    sys.excepthook = _abort_all_ranks
    return _context


def is_initialized() -> bool:
    """True once init() found more than one process: the Trainer then trains data-parallel."""
    return _context is not None and _context.world_size > 1


def context() -> Context:
    """The Context of init(), initialising on first use."""
    return _context if _context is not None else init()


def collective_timeout() -> float:
    """Seconds a rank waits in a collective for the others before it gives up and aborts the
    run: $FASTCONV_COLLECTIVE_TIMEOUT, else 600 (longer than any step of the suite's models)."""
    text = os.environ.get(_TIMEOUT_ENV)
    if text is None:
        return DEFAULT_COLLECTIVE_TIMEOUT_S
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0:
        raise ValueError(f"{_TIMEOUT_ENV}: expected a positive number of seconds, got {text!r}")
    return seconds


def wait_all(requests, what, timeout=None):
    """Waits for MPI requests, polling, so that a rank that died or hangs turns into a
    CollectiveTimeout (and, through the excepthook, an abort of every rank) instead of a hang.
    Returns the seconds waited."""
    from mpi4py import MPI
    timeout = collective_timeout() if timeout is None else timeout
    started = time.perf_counter()
    pause = 20e-6
    while not MPI.Request.Testall(requests):
        waited = time.perf_counter() - started
        if waited > timeout:
            rank = _context.rank if _context is not None else "?"
            raise CollectiveTimeout(f"{what}: rank {rank} waited {waited:.1f} s for the other ranks "
                                    f"(timeout {timeout:g} s, set by {_TIMEOUT_ENV}); one of them has died "
                                    f"or hangs")
        time.sleep(pause)
        pause = min(2 * pause, 1e-3)  # quick answers stay quick; long waits cost little CPU
    return time.perf_counter() - started


def rendezvous(ctx: Context, what):
    """Returns once every rank has reached this point, or raises CollectiveTimeout: placed before
    a blocking collective (the object ones mpi4py offers only blocking), it bounds its wait."""
    if ctx.world_size > 1:
        wait_all([ctx.comm.Ibarrier()], what)


def _abort_all_ranks(kind, value, tb):
    rank = _context.rank if _context is not None else "?"
    sys.stderr.write(f"fastconv.distributed: rank {rank} raised; aborting all ranks\n")
    sys.stderr.write("".join(traceback.format_exception(kind, value, tb)))
    sys.stderr.flush()
    # The launcher forwards each rank's stderr through a pipe and handles the abort on another
    # channel; under load it can kill every rank before it has read the traceback. A pause lets
    # the message reach the user, and costs nothing beside a run that is ending anyway.
    time.sleep(_ABORT_GRACE_S)
    _context.comm.Abort(1)
