"""The core takes its array module from `rnngen.backend` alone.

A stand-in array module wraps NumPy: its arrays refuse NumPy's array functions (np.concatenate,
np.zeros_like, ...) unless they are called through the stand-in, the way CuPy arrays cannot go
through NumPy. Training steps, evaluation and generation for every cell and both output layers run
under it, so a direct NumPy call on the hot path fails here before it fails on a GPU."""

import types

import numpy as np
import pytest

from rnngen.core import backend
from rnngen.core import model as M
from rnngen.core.class_softmax import make_class_bounds
from rnngen.errors import ConfigError
from rnngen.reading.evaluate import evaluate
from rnngen.reading.generate import generate
from rnngen.training.train import TrainConfig, train

_depth = [0]


class Guarded(np.ndarray):
    def __array_function__(self, func, types_, args, kwargs):
        if not _depth[0]:
            raise AssertionError(f"numpy.{func.__name__} called directly on a core array")
        return super().__array_function__(func, types_, args, kwargs)

    def get(self):  # like CuPy: an explicit copy to the host
        return np.array(self.view(np.ndarray))


def _guard(value):
    if type(value) is np.ndarray:
        return value.view(Guarded)
    if isinstance(value, tuple):
        return tuple(_guard(v) for v in value)
    return value


class StandIn(types.ModuleType):
    """NumPy's namespace, with every function's results turned into Guarded arrays."""

    def __getattr__(self, name):
        obj = getattr(np, name)
        if not callable(obj) or isinstance(obj, type):
            return obj

        def call(*args, **kwargs):
            _depth[0] += 1
            try:
                return _guard(obj(*args, **kwargs))
            finally:
                _depth[0] -= 1

        if isinstance(obj, np.ufunc):  # keep ufunc methods reachable (xp.add.reduceat)
            return _UfuncProxy(obj)
        return call


class _UfuncProxy:
    def __init__(self, ufunc):
        self._ufunc = ufunc

    def _wrap(self, fn):
        def call(*args, **kwargs):
            _depth[0] += 1
            try:
                return _guard(fn(*args, **kwargs))
            finally:
                _depth[0] -= 1

        return call

    def __call__(self, *args, **kwargs):
        return self._wrap(self._ufunc)(*args, **kwargs)

    def __getattr__(self, name):
        return self._wrap(getattr(self._ufunc, name))


@pytest.fixture
def stand_in():
    backend.use(StandIn("standin"))
    yield
    backend.use(np)


def test_guard_catches_direct_numpy_calls(stand_in):
    a = backend.xp.zeros(3)
    assert isinstance(a, Guarded)
    with pytest.raises(AssertionError, match="called directly"):
        np.concatenate([a, a])


CONFIGS = [
    M.ModelConfig(30, embed=6, hidden=8, layers=2, cell="lstm", dropout=0.2),
    M.ModelConfig(30, embed=8, hidden=8, cell="gru", tie_weights=True),
    M.ModelConfig(30, embed=6, hidden=8, cell="rnn", softmax="class",
                  class_bounds=make_class_bounds(np.arange(30, 0, -1))),
]  # fmt: skip


@pytest.mark.parametrize("cfg", CONFIGS, ids=["lstm", "gru-tied", "rnn-class"])
def test_core_runs_on_the_stand_in(stand_in, cfg):
    ids = np.random.default_rng(0).integers(0, 30, size=400)
    result = train(ids, cfg, TrainConfig(epochs=2, batch_size=4, seq_len=10, optimizer="adam"))
    assert all(isinstance(p, Guarded) for p in result.params.values())
    assert evaluate(result.params, cfg, ids[:100]).perplexity > 1
    out = list(generate(result.params, cfg, [1, 2], 5, np.random.default_rng(0)))
    assert len(out) == 5 and all(0 <= i < 30 for i in out)


def test_openblas_workers_are_told_to_sleep_when_rnngen_loads_first():
    """rnngen shortens OpenBLAS's idle spin when it is imported before NumPy (as the command line
    is), keeps a value the user set, and cannot change anything once NumPy has loaded."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}

    def timeout_seen(code, **extra):
        code += "; import os; print(os.environ.get('OPENBLAS_THREAD_TIMEOUT'))"
        run = subprocess.run(
            [sys.executable, "-c", code], env={**env, **extra}, capture_output=True, text=True
        )
        return run.stdout.strip()

    assert timeout_seen("import rnngen") == "20"
    assert timeout_seen("import rnngen", OPENBLAS_THREAD_TIMEOUT="25") == "25"
    assert timeout_seen("import numpy, rnngen") == "None"


# --- --threads ------------------------------------------------------------------------------


def test_set_threads_limits_the_pool_and_the_blas():
    default = backend.blas_threads()
    try:
        backend.set_threads(1)
        assert backend.cpu_workers() == 1
        if default is None:
            pytest.skip("no BLAS here that says its thread count")
        assert backend.blas_threads() == 1
        backend.set_threads(3)
        assert backend.cpu_workers() == 3 and backend.blas_threads() == 3
    finally:
        backend.set_threads(None)
    assert backend.cpu_workers() == min(backend.cores(), 8)
    assert backend.blas_threads() == default  # back to the BLAS's own count


def test_set_threads_refuses_nonsense():
    for bad in (0, -2, 1.5, True):
        with pytest.raises(ConfigError):
            backend.set_threads(bad)


def test_the_command_line_sets_the_threads(tmp_path):
    from conftest import write_excerpt
    from typer.testing import CliRunner

    from rnngen.cli.app import app

    book = write_excerpt(tmp_path / "book.txt", 3000)
    runner = CliRunner()
    try:
        tiny = ["--epochs", "1", "--hidden", "8", "--batch-size", "4", "--seq-len", "8", "-q"]
        args = ["train", str(book), "-o", str(tmp_path / "m.npz"), "--threads", "1", *tiny]
        assert runner.invoke(app, args).exit_code == 0
        assert backend.cpu_workers() == 1
        bad = runner.invoke(app, ["eval", str(book), "--threads", "0"])
        assert bad.exit_code == 2 and "--threads" in bad.stderr
    finally:
        backend.set_threads(None)


def test_a_timed_run_and_the_adapted_reader_run_on_the_stand_in(stand_in, tmp_path):
    """The whole `train --time` run (reading, training, the end-of-run score, the gradient
    statistics, saving) and the reader with a cache and dynamic evaluation, on the stand-in:
    the paths the command line takes, not only the core."""
    from conftest import write_excerpt

    from rnngen import api
    from rnngen.reading.reader import Reader
    from rnngen.reading.settings import Adaptation, CacheSettings, DynamicSettings

    book = write_excerpt(tmp_path / "book.txt", 6000)
    request = api.TrainRequest(
        input=str(book), out=str(tmp_path / "m.npz"),
        model={"hidden": 8, "cell": "gru"},
        train=TrainConfig(batch_size=4, seq_len=8, time_limit=3.0),
    )  # fmt: skip
    outcome = api.run_training(request)
    model = outcome.model
    assert (tmp_path / "m.npz").exists() and model.stats is not None
    assert model.history["val_ppl"] > 1  # the end-of-run figure, read on the stand-in
    params = api.device_params(model)
    assert all(isinstance(p, Guarded) for p in params.values())
    stats = api.device_arrays(model.stats)
    adaptation = Adaptation(CacheSettings(size=50), DynamicSettings(length=7), stats)
    ids = model.vocab.encode(model.vocab.tokens[1:40])
    reader = Reader(params, model.config, adaptation)
    nll = reader.read(ids)
    assert nll.shape == (len(ids) - 1,) and np.isfinite(nll).all()
    record = reader.sample(np.random.default_rng(0))
    assert 0 <= record.id < len(model.vocab) and record.logprob <= 0
