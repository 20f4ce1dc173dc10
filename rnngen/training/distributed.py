"""Data-parallel training across processes and machines with MPI (mpi4py, the `mpi` extra).

Every process (rank) holds the whole model and trains on its share of the batch streams: the
global batch of N streams is cut into `size` equal groups of columns. Rank 0's initial weights are
broadcast; before each update the gradients are averaged with Allreduce, so every rank applies the
same update and the parameters stay identical without further communication. Only rank 0 reports,
writes models, checkpoints and logs. Dropout masks come from a random stream per rank and step,
derived from the one seed, so a run is reproducible and resumable without storing generator
states. A failure on any rank ends the whole job (MPI_Abort) instead of leaving the others waiting.

The training loop talks to a communicator and never asks which kind it has: `SingleProcess` is
the one of an ordinary run, where every collective operation is a no-op, and `Communicator` wraps
an mpi4py one.

Launch with `mpiexec -n 2 python -m mpi4py -m rnngen train ...` (or `mpiexec -n 2 rnngen train`).
"""

import os
import sys

import numpy as np

from ..core import backend
from ..core.layers import RowSparse
from ..errors import ConfigError, MissingExtraError

# Variables that MPI launchers set in the processes they start (MPICH/Hydra, Open MPI, Slurm).
_LAUNCHER_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS")


class SingleProcess:
    """The communicator of an ordinary run: one process holds every stream, so there is nothing
    to share; its dropout masks come from the run's own random stream (saved in checkpoints)."""

    rank = 0
    size = 1

    def broadcast(self, arrays: dict) -> None:
        pass

    def average_grads(self, grads: dict) -> None:
        pass

    def mean(self, value: float) -> float:
        return value

    def any(self, flag: bool) -> bool:
        return flag

    def agree(self, seconds: float) -> float:
        return seconds

    def columns(self, n: int) -> slice:
        return slice(None)

    def gather_columns(self, array, axis: int):
        return array

    def dropout_rng(self, rng: np.random.Generator, seed: int, epoch: int, step: int):
        return rng

    def barrier(self) -> None:
        pass


class Communicator:
    """What data-parallel training needs from an mpi4py communicator."""

    def __init__(self, comm):
        from mpi4py import MPI

        self._MPI = MPI
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()

    def broadcast(self, arrays: dict) -> None:
        """Overwrite every array with rank 0's, in place."""
        for a in arrays.values():
            host = np.ascontiguousarray(backend.to_numpy(a))
            self.comm.Bcast(host, root=0)
            a[...] = backend.xp.asarray(host)

    def average(self, arrays: dict) -> None:
        """Replace every array by its mean over the ranks, in place (sum with Allreduce, then
        divide, the same order on every rank, so all get bit-identical results)."""
        for a in arrays.values():
            host = np.ascontiguousarray(backend.to_numpy(a))
            self.comm.Allreduce(self._MPI.IN_PLACE, host, op=self._MPI.SUM)
            host /= self.size
            a[...] = backend.xp.asarray(host)

    def average_grads(self, grads: dict) -> None:
        """Average grads over the ranks in place. A RowSparse gradient is averaged dense and
        comes back holding the rows any rank used, as one process with the whole batch would
        have them."""
        sparse = {k: g for k, g in grads.items() if isinstance(g, RowSparse)}
        grads.update({k: g.dense() for k, g in sparse.items()})
        self.average(grads)
        xp = backend.xp
        for k in sparse:
            dense = grads[k]
            rows = xp.flatnonzero(xp.any(dense != 0, axis=1))
            grads[k] = RowSparse(rows, dense[rows], dense.shape)

    def mean(self, value: float) -> float:
        return self.comm.allreduce(float(value), op=self._MPI.SUM) / self.size

    def any(self, flag: bool) -> bool:
        return bool(self.comm.allreduce(bool(flag), op=self._MPI.LOR))

    def agree(self, seconds: float) -> float:
        """The latest of the ranks' clock readings, so that every rank plans a time budget on
        the same figures and takes the same steps."""
        return self.comm.allreduce(float(seconds), op=self._MPI.MAX)

    def gather_columns(self, array, axis: int):
        """The ranks' column blocks of an array, joined along `axis`, on every rank."""
        host = backend.to_numpy(array)
        blocks = self.comm.allgather(host)
        return backend.xp.asarray(np.concatenate(blocks, axis=axis))

    def columns(self, n: int) -> slice:
        """This rank's share of n columns (n must be a multiple of the number of ranks)."""
        if n % self.size:
            raise ConfigError(
                f"--batch-size {n} does not split evenly over {self.size} processes; "
                f"use a multiple of {self.size}"
            )
        per = n // self.size
        return slice(self.rank * per, (self.rank + 1) * per)

    def dropout_rng(self, rng, seed: int, epoch: int, step: int) -> np.random.Generator:
        """The random stream for one rank's dropout masks in one step (not the run's `rng`)."""
        return np.random.default_rng([seed, self.rank, epoch, step])

    def barrier(self) -> None:
        self.comm.Barrier()

    def abort(self, code: int) -> None:
        self.comm.Abort(code)


def launched_by_mpi() -> bool:
    return "mpi4py" in sys.modules or any(v in os.environ for v in _LAUNCHER_VARS)


def world() -> Communicator | None:
    """The MPI world when this process runs under an MPI launcher with more than one process;
    None for an ordinary run (mpi4py is then not even imported)."""
    if not launched_by_mpi():
        return None
    try:
        from mpi4py import MPI
    except ImportError:
        size = next(
            (os.environ[v] for v in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE") if v in os.environ), "1"
        )
        if size != "1":
            raise MissingExtraError(
                "started by mpiexec, but mpi4py is missing; install it with: "
                "pip install 'rnngen[mpi]'"
            ) from None
        return None
    comm = MPI.COMM_WORLD
    return Communicator(comm) if comm.Get_size() > 1 else None
