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
