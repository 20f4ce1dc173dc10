"""A model too large for the memory there is is refused before anything is allocated: one line,
exit code 2, naming the size and the option to make smaller (core/model.py memory_bytes)."""

import numpy as np
import pytest
from typer.testing import CliRunner

from rnngen.cli.app import app
from rnngen.core import backend
from rnngen.core.model import ModelConfig, check_memory, init_params, memory_bytes
from rnngen.errors import ConfigError

runner = CliRunner()


def test_the_estimate_covers_the_weights_and_grows_with_each_size():
    cfg = ModelConfig(1000, embed=32, hidden=64, layers=2, cell="lstm")
    weights = sum(p.nbytes for p in init_params(cfg, np.random.default_rng(0)).values())
    base = memory_bytes(cfg, 16, 20)
    assert base >= 4 * weights  # weights, gradients and Adam's two moments
    assert memory_bytes(cfg, 32, 20) > base and memory_bytes(cfg, 16, 40) > base
    assert (
        memory_bytes(ModelConfig(1000, embed=32, hidden=128, layers=2, cell="lstm"), 16, 20) > base
    )
    assert memory_bytes(cfg, 16, 20, itemsize=8) == 2 * base
    assert memory_bytes(cfg, 16, 20, slots=0) < base  # SGD keeps no optimiser arrays
    assert memory_bytes(cfg, 1, 1, training=False) < base


def test_check_names_what_to_make_smaller(monkeypatch):
    monkeypatch.setattr(backend, "available_memory", lambda: 10**6)
    with pytest.raises(ConfigError) as caught:
        check_memory(ModelConfig(1000, embed=512, hidden=512), 1, 1)
    assert caught.value.fields == ("model.hidden", "model.embed")
    with pytest.raises(ConfigError) as caught:
        check_memory(ModelConfig(50, embed=8, hidden=8), 10000, 100)
    assert caught.value.fields == ("train.batch_size", "train.seq_len")
    check_memory(ModelConfig(50, embed=8, hidden=8), 4, 4)  # fits
    monkeypatch.setattr(backend, "available_memory", lambda: None)
    check_memory(ModelConfig(1000, embed=512, hidden=512), 10**6, 10**6)  # unknown: no refusal


def test_train_refuses_a_model_too_large(tmp_path):
    from conftest import write_excerpt

    book = write_excerpt(tmp_path / "book.txt", 3000)
    out = tmp_path / "m.npz"
    result = runner.invoke(app, ["train", str(book), "-o", str(out), "--hidden", "100000000"])
    assert result.exit_code == 2, result.stderr
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1 and line.startswith("rnngen: error: "), line
    assert "TiB" in line and "--hidden" in line and "bug" not in line
    assert not out.exists()
