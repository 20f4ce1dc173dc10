"""Dynamic evaluation's cheaper variant, params "output" (reading/dynamic.py): the output layer's
step at the segment's words and their likeliest alternatives, against a plain NumPy reference."""

import numpy as np
import pytest
from test_adapt import V, setup

from rnngen.core.model import ModelConfig, init_params, init_state, join_output, sequence_top
from rnngen.errors import ConfigError
from rnngen.reading import adapt
from rnngen.training.stats import gradient_stats

TIED = ModelConfig(V, embed=12, hidden=12, cell="rnn", dropout=0.0, tie_weights=True)
UNTIED = ModelConfig(V, embed=8, hidden=12, cell="gru", dropout=0.0)


def reference_step(W, b, t0W, t0b, pullW, pullb, stepW, stepb, top, y):
    """One segment by hand: W (V, H) the output matrix as rows, b (V,). Returns each target's
    -log p and the updated (W, b)."""
    M = len(y)
    logits = top @ W.T + b  # (M, V)
    logp = logits - np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1, keepdims=True))
    logp -= logits.max(1, keepdims=True)
    p = np.exp(logp)
    nll = -logp[np.arange(M), y]
    k = 2 * M
    words = np.union1d(np.argsort(p.sum(0))[-k:], y)
    d = p / M
    d[np.arange(M), y] -= 1 / M
    d = d[:, words]  # (M, R)
    gW, gb = d.T @ top, d.sum(0)
    W, b = W.copy(), b.copy()
    W[words] += pullW[words] * (t0W[words] - W[words]) - stepW[words] * gW
    b[words] += pullb[words] * (t0b[words] - b[words]) - stepb[words] * gb
    return nll, W, b


@pytest.mark.parametrize("cfg", [TIED, UNTIED], ids=["tied", "untied"])
def test_the_output_variant_equals_its_reference(cfg):
    rng = np.random.default_rng(0)
    params = {k: v.astype(np.float64) for k, v in join_output(init_params(cfg, rng)).items()}
    stats = {k: v.astype(np.float64) for k, v in
             gradient_stats(params, cfg, rng.integers(0, V, 400)).items()}  # fmt: skip
    settings = adapt.DynamicSettings(lr=0.01, decay=0.02, length=7, params="output")
    weights = adapt.DynamicWeights(params, cfg, stats, settings, margin=None)  # no guard

    def as_rows(d):  # (W (V, H), b (V,)) of an output layer, whichever the layout
        if cfg.tie_weights:
            return d["embed"], d["out.b"]
        return d["out.Wb"][:-1].T, d["out.Wb"][-1]

    W, b = (a.copy() for a in as_rows(params))
    t0W, t0b = as_rows(params)
    pullW, pullb = as_rows(weights.pull)
    stepW, stepb = as_rows(weights.step_size)
    other = {k: v for k, v in params.items() if k not in ("out.Wb", "out.b")}
    ids = rng.integers(0, V, 64)
    h = h_ref = init_state(cfg, 1, np.float64)
    for start in range(0, len(ids) - 1, 7):
        x, y = ids[start : start + 7], ids[start + 1 : start + 8]
        x = x[: len(y)]
        got = weights.read(x[:, None], y[:, None], h)
        ref_params = {**other, "embed": W} if cfg.tie_weights else other
        top, h_ref = sequence_top({**params, **ref_params}, cfg, x[:, None], h_ref)
        nll, W, b = reference_step(W, b, t0W, t0b, pullW, pullb, stepW, stepb, top, y)
        np.testing.assert_allclose(got.token_nll[:, 0], nll, rtol=1e-10)
        h = got.state
    gotW, gotb = as_rows(weights.params)
    np.testing.assert_allclose(gotW, W, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(gotb, b, rtol=1e-10, atol=1e-13)
    assert np.abs(W - t0W).max() > 1e-3  # it moved
    for k, v in other.items():  # nothing else did
        if not cfg.tie_weights or k != "embed":
            np.testing.assert_array_equal(weights.params[k], v)


def test_the_output_variant_needs_the_full_softmax():
    cfg, params, stats = setup("rnn-class")
    with pytest.raises(ConfigError, match="full softmax"):
        adapt.DynamicWeights(params, cfg, stats, adapt.DynamicSettings(params="output"))


def test_params_round_trip_and_default_for_older_settings():
    s = adapt.DynamicSettings(params="output")
    assert adapt.DynamicSettings.from_dict(s.to_dict()) == s
    assert adapt.DynamicSettings.from_dict({"lr": 1e-4, "decay": 0, "length": 5}).params == "all"
    with pytest.raises(ConfigError, match="params"):
        adapt.DynamicSettings(params="some")
