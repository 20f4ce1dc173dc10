"""Data-parallel training under MPI: a 2-process run equals a 1-process run with the same global
batch, a failure on one rank ends the job, and a 2-process checkpoint resumes exactly.
Skipped where mpi4py or mpiexec is missing (`pip install '.[mpi]'` brings both)."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mpi4py")
MPIEXEC = shutil.which("mpiexec", path=os.pathsep.join([str(Path(sys.executable).parent),
                                                        os.environ.get("PATH", "")]))  # fmt: skip
pytestmark = pytest.mark.skipif(MPIEXEC is None, reason="needs mpiexec")
WORKER = str(Path(__file__).with_name("mpi_worker.py"))


def mpirun(n, *args, cwd, timeout=120):
    return subprocess.run(
        [MPIEXEC, "-n", str(n), sys.executable, WORKER, *map(str, args)],
        cwd=cwd, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


@pytest.mark.parametrize("mode", ["train", "train-class"])
def test_two_processes_equal_one(tmp_path, mode):
    """train-class: lazy Adam updates the embedding rows any rank's part of the batch used,
    as one process with the whole batch does."""
    one = mpirun(1, mode, tmp_path / "one.npz", 2, cwd=tmp_path)
    two = mpirun(2, mode, tmp_path / "two.npz", 2, cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr
    a, b = np.load(tmp_path / "one.npz"), np.load(tmp_path / "two.npz")
    assert set(a.files) == set(b.files)
    for name in a.files:
        np.testing.assert_allclose(b[name], a[name], rtol=1e-12, atol=1e-12, err_msg=name)


def test_failure_on_one_rank_ends_the_job(tmp_path):
    from conftest import write_excerpt

    book = tmp_path / "book.txt"
    write_excerpt(book, 8000)
    began = time.monotonic()
    proc = subprocess.run(
        [MPIEXEC, "-n", "2", sys.executable, WORKER, "fail-on-rank-1", str(book)],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode != 0
    assert time.monotonic() - began < 30
    assert (tmp_path / "rank1-failed").exists()  # it was rank 1's failure that ended the job
    assert not (tmp_path / "m.npz").exists()  # and rank 0 did not train on alone


def test_resume_from_a_two_process_checkpoint(tmp_path):
    ckpt = tmp_path / "c.npz"
    straight = mpirun(
        2, "train", tmp_path / "straight.npz", 3, tmp_path / "unused.npz", cwd=tmp_path
    )
    first = mpirun(2, "train", tmp_path / "first.npz", 1, ckpt, cwd=tmp_path)
    resumed = mpirun(2, "train", tmp_path / "resumed.npz", 3, ckpt, "resume", cwd=tmp_path)
    for proc in (straight, first, resumed):
        assert proc.returncode == 0, proc.stderr
    a, b = np.load(tmp_path / "straight.npz"), np.load(tmp_path / "resumed.npz")
    for name in a.files:
        assert a[name].tobytes() == b[name].tobytes(), name


def test_ranks_agree_on_a_time_budget(tmp_path):
    """Each rank's clock runs at its own speed; they plan on the same (the latest) reading, so
    they validate and stop at the same steps and end with the same parameters."""
    proc = mpirun(2, "train-timed", tmp_path / "t", cwd=tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr
    a, b = np.load(tmp_path / "t.rank0.npz"), np.load(tmp_path / "t.rank1.npz")
    assert len(a["steps"]) >= 2 and a["steps"].tolist() == b["steps"].tolist()
    for name in a.files:
        assert a[name].tobytes() == b[name].tobytes(), name
