"""The GPU path: `--device gpu` through CuPy. Skipped where CuPy or a GPU is missing; the
stand-in array module of test_backend.py covers the same code paths everywhere."""

import numpy as np
import pytest
from typer.testing import CliRunner

from rnngen.cli.app import app
from rnngen.core import backend
from rnngen.core import model as M
from rnngen.errors import MissingExtraError


def _gpu_available() -> bool:
    try:
        backend.use_device("gpu")
    except MissingExtraError:
        return False
    finally:
        backend.use_device("cpu")
    return True


def test_device_gpu_without_cupy_or_gpu_is_a_clear_error(tmp_path):
    if _gpu_available():
        pytest.skip("this machine has CuPy and a GPU")
    result = CliRunner().invoke(app, ["eval", "-", "--device", "gpu"], input="text")
    assert result.exit_code == 69, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--device gpu" in lines[0] and "Traceback" not in result.stderr


def test_unknown_device():
    result = CliRunner().invoke(app, ["eval", "-", "--device", "tpu"], input="text")
    assert result.exit_code == 2 and "unknown device" in result.stderr


@pytest.mark.gpu
@pytest.mark.skipif(not _gpu_available(), reason="needs CuPy and a GPU")
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_gpu_matches_cpu(cell):
    cfg = M.ModelConfig(300, embed=32, hidden=48, layers=2, cell=cell, dropout=0.0)
    rng = np.random.default_rng(0)
    inputs, targets = rng.integers(0, 300, size=(2, 10, 4))
    host = M.init_params(cfg, np.random.default_rng(1), np.float32)
    cpu = M.loss_and_grads(host, cfg, inputs, targets, M.init_state(cfg, 4))
    backend.use_device("gpu")
    try:
        xp = backend.xp
        params = {k: xp.asarray(v) for k, v in host.items()}
        gpu = M.loss_and_grads(params, cfg, xp.asarray(inputs), xp.asarray(targets),
                               M.init_state(cfg, 4))  # fmt: skip
        grads = {k: backend.to_numpy(v) for k, v in gpu.grads.items()}
    finally:
        backend.use_device("cpu")
    assert gpu.loss == pytest.approx(cpu.loss, rel=1e-4)
    for k, g in cpu.grads.items():
        scale = max(np.abs(g).max(), 1e-12)
        assert np.abs(grads[k] - g).max() / scale < 1e-4, k
