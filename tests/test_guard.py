"""The divergence guard of dynamic evaluation (reading/dynamic.py): a learning rate that makes
the adapted model worse than the static one is caught, its steps dropped, and no NumPy warning
reaches the user."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from test_adapt import CONFIGS, repeated, setup

from rnngen.core.model import init_state
from rnngen.reading import adapt
from rnngen.reading.dynamic import GUARD_MARGIN
from rnngen.reading.reader import Reader


def mean_nll(params, cfg, ids, adaptation):
    return float(np.mean(Reader(params, cfg, adaptation).read(ids)))


@pytest.mark.parametrize("name", CONFIGS)
def test_a_diverging_learning_rate_is_held_to_the_static_loss(name):
    cfg, params, stats = setup(name)
    ids, _ = repeated()
    static = mean_nll(params, cfg, ids, adapt.Adaptation())
    settings = adapt.DynamicSettings(lr=1e3, length=6)
    # without the guard this learning rate is far worse than static: the test can fail
    weights = adapt.DynamicWeights(params, cfg, stats, settings, margin=None)
    unguarded = Reader(params, cfg, weights=weights).read(ids).mean()
    assert not unguarded <= static + GUARD_MARGIN
    with np.errstate(all="raise"):  # and no floating-point warning on the way
        guarded = mean_nll(params, cfg, ids, adapt.Adaptation(None, settings, stats))
    assert math.isfinite(guarded)
    assert guarded <= static + GUARD_MARGIN


def test_dropped_steps_are_counted_and_an_undo_is_exact():
    """The guard's undo puts back the weights from before the step, bit for bit: a run whose
    first step is undone ends where a run that never read the first segment ends."""
    cfg, params, stats = setup("lstm")  # untied: dense weights and the lazy embedding rows
    settings = adapt.DynamicSettings(lr=0.01, decay=0.01, length=6)
    ids = np.random.default_rng(5).integers(0, 40, 13)
    x1, y1 = ids[:6, None], ids[1:7, None]
    x2, y2 = ids[6:12, None], ids[7:13, None]
    h = init_state(cfg, 1)
    undone = adapt.DynamicWeights(params, cfg, stats, settings)
    undone.read(x1, y1, h)
    undone._harmful = lambda *a: True  # every step judged harmful
    undone.read(x2, y2, h)
    assert undone.dropped == 1 and undone.steps == 1
    fresh = adapt.DynamicWeights(params, cfg, stats, settings)
    fresh.read(x2, y2, h)
    for k, v in fresh.params.items():
        np.testing.assert_array_equal(undone.params[k], v)


def test_a_step_to_infinity_is_dropped_at_once():
    cfg, params, stats = setup("gru-tied")
    ids, _ = repeated()
    weights = adapt.DynamicWeights(params, cfg, stats, adapt.DynamicSettings(lr=1e38, length=6))
    with np.errstate(all="raise"):
        nll = Reader(params, cfg, weights=weights).read(ids)
    assert np.isfinite(nll).all()
    assert weights.dropped > 0
    assert all(np.isfinite(v).all() for v in weights.params.values())


def test_the_command_line_shows_no_warning_and_a_sane_perplexity(tmp_path):
    from conftest import REPO

    text = (REPO / "corpora" / "peter_pan.txt").read_text(encoding="utf-8")
    train, held = tmp_path / "train.txt", tmp_path / "held.txt"
    train.write_text(text[:8000], encoding="utf-8")
    held.write_text(text[8000:12000], encoding="utf-8")
    model = tmp_path / "model.npz"
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def rnngen(*args):
        cmd = [sys.executable, "-W", "error", "-m", "rnngen", *args]
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)

    tiny = ["--epochs", "1", "--hidden", "16", "--batch-size", "4", "--seq-len", "8", "-q"]
    assert rnngen("train", str(train), "-o", str(model), *tiny).returncode == 0
    run = rnngen("eval", str(held), "-m", str(model), "--dynamic", "--dynamic-lr", "1e3", "--json")
    assert run.returncode == 0, run.stderr
    assert "Warning" not in run.stderr
    values = json.loads(run.stdout)
    adapted = values["adapted"]["cross_entropy"]
    assert math.isfinite(adapted)
    assert adapted <= values["cross_entropy"] + GUARD_MARGIN
