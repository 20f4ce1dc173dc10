"""Adapting to the text read: the neural cache and dynamic evaluation, read by the Reader
(rnngen/reading/reader.py, cache.py, dynamic.py, tune.py).

No token is scored by a model that has seen it; lr 0 is static bit for bit; lambda 0 is static;
the decay forgets; the trained weights are never written; the model file's statistics and tuned
settings are validated like every other field."""

import math

import numpy as np
import pytest
from reference import log_softmax

from rnngen.core.class_softmax import class_log_probs
from rnngen.core.model import (
    ModelConfig,
    init_params,
    init_state,
    loss_and_grads,
    sequence_nll,
    split_output,
    token_scores,
)
from rnngen.errors import ConfigError, ModelFileError
from rnngen.files.storage import TrainedModel, load_model, save_model
from rnngen.reading import adapt
from rnngen.reading.generate import generate
from rnngen.reading.reader import Reader
from rnngen.reading.tune import tune
from rnngen.text.tokenize import TokenizerConfig
from rnngen.text.vocab import Vocab
from rnngen.training.stats import gradient_stats

V = 40
CONFIGS = {
    "lstm": ModelConfig(V, embed=8, hidden=12, layers=2, cell="lstm", dropout=0.0),
    "rnn-class": ModelConfig(
        V, embed=8, hidden=12, cell="rnn", dropout=0.0, softmax="class", class_bounds=(0, 4, 15, V)
    ),
    "gru-tied": ModelConfig(V, embed=12, hidden=12, cell="gru", dropout=0.0, tie_weights=True),
}


def adapted_token_nll(params, cfg, ids, adaptation):
    """-log p of ids[1:] as eval reads them."""
    return Reader(params, cfg, adaptation).read(ids)


def setup(name, seed=0):
    cfg = CONFIGS[name]
    rng = np.random.default_rng(seed)
    params = init_params(cfg, rng)
    train = rng.integers(0, V, 400)
    return cfg, params, gradient_stats(params, cfg, train)


def repeated(seed=1, n=60):
    passage = np.random.default_rng(seed).integers(0, V, n)
    return np.concatenate([passage, passage]), n


@pytest.mark.parametrize("name", CONFIGS)
def test_token_scores_split_the_summed_nll_by_position(name):
    cfg, params, _ = setup(name)
    rng = np.random.default_rng(3)
    x, y = rng.integers(0, V, (7, 2)), rng.integers(0, V, (7, 2))
    h = init_state(cfg, 2)
    scores = token_scores(params, cfg, x, y, h)
    nll, state = sequence_nll(params, cfg, x, y, h)
    assert scores.token_nll.shape == (7, 2)
    assert math.isclose(scores.token_nll.sum(), nll, rel_tol=1e-6)
    np.testing.assert_array_equal(scores.state, state)
    # against the unfused log-softmax of the whole distribution
    top = scores.top.astype(np.float64)
    if "out.Wb" in params:
        W, b = params["out.Wb"][:-1], params["out.Wb"][-1]
    else:  # tied: the output matrix is the embedding's transpose
        W, b = params["embed"].T, params["out.b"]
    W, b = W.astype(np.float64), b.astype(np.float64)
    if cfg.softmax == "class":
        logp = class_log_probs(top, params["cls.W"], params["cls.b"], W, b, cfg.class_bounds)
    else:
        logp = log_softmax(top @ W + b)
    want = -logp[np.arange(14), y.reshape(-1)].reshape(7, 2)
    np.testing.assert_allclose(scores.token_nll, want, rtol=1e-4, atol=1e-5)
    # the training pass reports the same scores, before any update
    lg = loss_and_grads(params, cfg, x, y, h)
    np.testing.assert_array_equal(lg.token_nll, scores.token_nll)
    np.testing.assert_array_equal(lg.top, scores.top)


@pytest.mark.parametrize("name", CONFIGS)
def test_dynamic_with_lr_zero_is_static_bit_for_bit(name):
    cfg, params, stats = setup(name)
    ids = np.random.default_rng(5).integers(0, V, 300)
    static = adapted_token_nll(params, cfg, ids, adapt.Adaptation())
    settings = adapt.DynamicSettings(lr=0.0, decay=0.3, length=adapt.EVAL_CHUNK)
    dynamic = adapted_token_nll(params, cfg, ids, adapt.Adaptation(None, settings, stats))
    np.testing.assert_array_equal(dynamic, static)
    # and at any segment length, against static scoring in segments of that length
    short = adapt.DynamicSettings(lr=0.0, decay=0.3, length=7)
    dynamic = adapted_token_nll(params, cfg, ids, adapt.Adaptation(None, short, stats))
    np.testing.assert_allclose(dynamic, static, rtol=1e-4)  # float32 rounding


@pytest.mark.parametrize("name", CONFIGS)
def test_cache_with_lambda_zero_is_static(name):
    cfg, params, _ = setup(name)
    ids = np.random.default_rng(5).integers(0, V, 300)
    static = adapted_token_nll(params, cfg, ids, adapt.Adaptation())
    cache = adapt.CacheSettings(size=50, theta=0.5, lam=0.0)
    np.testing.assert_allclose(
        adapted_token_nll(params, cfg, ids, adapt.Adaptation(cache)), static, rtol=1e-12
    )


def adaptations(stats):
    cache = adapt.CacheSettings(size=500, theta=3.0, lam=0.5)
    dynamic = adapt.DynamicSettings(lr=0.003, decay=0.001, length=10)
    return {
        "cache": adapt.Adaptation(cache),
        "dynamic": adapt.Adaptation(None, dynamic, stats),
        "both": adapt.Adaptation(cache, dynamic, stats),
    }


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("kind", ["cache", "dynamic", "both"])
def test_each_score_depends_only_on_the_tokens_before_it(name, kind):
    cfg, params, stats = setup(name)
    ids, n = repeated()
    adaptation = adaptations(stats)[kind]
    static = adapted_token_nll(params, cfg, ids, adapt.Adaptation())
    adapted = adapted_token_nll(params, cfg, ids, adaptation)
    # Up to where adaptation can first act the scores are static ones: the first position for
    # the cache (it is empty), the first segment for dynamic evaluation (no step taken yet).
    first = 1 if adaptation.cache is not None else adaptation.dynamic.length
    np.testing.assert_allclose(adapted[:first], static[:first], rtol=1e-5)
    assert not np.allclose(adapted[first:], static[first:], rtol=1e-3)
    # Cutting the text after any target leaves every score up to it unchanged (but for float32
    # rounding: the last chunk is shorter), so no score saw its own target or anything after.
    for cut in (1, 9, 10, 11, 37, n, n + 13):
        prefix = adapted_token_nll(params, cfg, ids[: cut + 1], adaptation)
        np.testing.assert_allclose(prefix, adapted[:cut], rtol=1e-5)


@pytest.fixture(scope="module")
def trained():
    """A small class-softmax model trained on the bundled book, a passage it has not seen, and
    its gradient statistics."""
    from conftest import REPO

    from rnngen.core.class_softmax import make_class_bounds
    from rnngen.text.tokenize import tokenize
    from rnngen.text.vocab import build_vocab
    from rnngen.training.train import TrainConfig, train

    text = (REPO / "corpora" / "peter_pan.txt").read_text(encoding="utf-8")[:30000]
    tokens = tokenize(text, TokenizerConfig())
    vocab = build_vocab(tokens[:-400], TokenizerConfig().specials, max_size=300)
    ids = vocab.encode(tokens)
    cfg = ModelConfig(len(vocab), embed=16, hidden=32, cell="rnn", dropout=0.0, softmax="class",
                      class_bounds=make_class_bounds(vocab.counts))  # fmt: skip
    params = train(ids[:-400], cfg, TrainConfig(epochs=3, batch_size=8, seq_len=16)).params
    stats = gradient_stats(params, cfg, ids[:-400])
    return cfg, params, stats, ids[-400:-250], ids[:3000]


@pytest.mark.parametrize("kind", ["cache", "dynamic", "both"])
def test_a_passage_read_twice_scores_much_better_the_second_time(trained, kind):
    cfg, params, stats, passage, _ = trained
    ids, n = np.concatenate([passage, passage]), len(passage)
    adaptation = adaptations(stats)[kind]
    static = adapted_token_nll(params, cfg, ids, adapt.Adaptation())
    adapted = adapted_token_nll(params, cfg, ids, adaptation)
    first = 1 if adaptation.cache is not None else adaptation.dynamic.length
    np.testing.assert_allclose(adapted[:first], static[:first], rtol=1e-5)
    # the first copy, new to the model, scores about as static; the second much better
    assert adapted[: n - 1].mean() < 1.1 * static[: n - 1].mean()
    assert adapted[n:].mean() < 0.9 * static[n:].mean(), (adapted[n:].mean(), static[n:].mean())


@pytest.mark.parametrize("name", CONFIGS)
def test_adapting_never_writes_the_trained_weights(name):
    cfg, params, stats = setup(name)
    before = {k: v.copy() for k, v in params.items()}
    ids, _ = repeated()
    for adaptation in adaptations(stats).values():
        adapted_token_nll(params, cfg, ids, adaptation)
        list(generate(params, cfg, list(ids[:30]), 5, np.random.default_rng(0), None, adaptation))
    for k, v in params.items():
        np.testing.assert_array_equal(v, before[k])


def test_decay_pulls_the_weights_back(trained):
    cfg, params, stats, passage, unrelated = trained
    settings = adapt.DynamicSettings(lr=0.003, decay=0.2, length=10)

    def read(weights, ids):
        reader = Reader(params, cfg)
        reader.weights = weights  # a reader with these (already adapted) weights
        reader.read(ids)

    adapted = adapt.DynamicWeights(params, cfg, stats, settings)
    read(adapted, passage)
    moved = adapted.distance()
    assert moved > 0
    read(adapted, unrelated)
    fresh = adapt.DynamicWeights(params, cfg, stats, settings)
    read(fresh, unrelated)
    # after the long unrelated text the passage's imprint has decayed away: the weights are
    # those that the unrelated text alone gives, within a small fraction of how far it moved them
    gap = math.sqrt(
        sum(float(np.square(adapted.params[k] - fresh.params[k]).sum()) for k in params)
        / sum(v.size for v in params.values())
    )
    assert gap < 0.02 * moved, (gap, moved)
    # and with lr 0 nothing but the decay acts: the weights go back to the trained ones
    still = adapt.DynamicSettings(lr=0.0, decay=0.2, length=10)
    back = adapt.DynamicWeights(params, cfg, stats, still)
    back.params = {k: v.copy() for k, v in adapted.params.items()}
    back._scratch = {k: np.empty_like(v) for k, v in params.items()}
    read(back, unrelated)
    assert back.distance() < 0.05 * adapted.distance()


def test_generation_with_a_cache_and_dynamic_is_reproducible():
    cfg, params, stats = setup("lstm")
    ids, _ = repeated()
    both = adaptations(stats)["both"]
    runs = [
        list(generate(params, cfg, list(ids[:40]), 20, np.random.default_rng(4), None, both))
        for _ in range(2)
    ]
    assert runs[0] == runs[1] and len(runs[0]) == 20 and all(0 <= t < V for t in runs[0])


def test_cache_probabilities_sum_to_one_with_the_model():
    cfg, params, _ = setup("lstm")
    settings = adapt.CacheSettings(size=30, theta=0.7, lam=0.4)
    cache = adapt.NeuralCache(settings, cfg.hidden)
    rng = np.random.default_rng(2)
    h = rng.standard_normal((50, cfg.hidden)).astype(np.float32)
    targets = rng.integers(0, V, 50)
    logp = cache.target_log_probs(h[:40], targets[:40])[0]
    assert np.isnan(logp[0])  # the first position has an empty cache
    p = cache.probs(h[40], V)
    assert math.isclose(p.sum(), 1.0, rel_tol=1e-12) and (p >= 0).all()
    # the one-position path agrees with the batched one
    probe = adapt.NeuralCache(settings, cfg.hidden)
    probe.add_chunk(h[:40], targets[:40])
    batched = probe.target_log_probs(h[40:41], targets[40:41])[0][0]
    assert math.isclose(math.exp(batched), p[targets[40]], rel_tol=1e-5, abs_tol=1e-12)


@pytest.mark.parametrize(
    "make",
    [
        lambda: adapt.CacheSettings(size=0),
        lambda: adapt.CacheSettings(theta=-1.0),
        lambda: adapt.CacheSettings(theta=float("nan")),
        lambda: adapt.CacheSettings(lam=1.0),
        lambda: adapt.CacheSettings(lam=float("inf")),
        lambda: adapt.DynamicSettings(lr=-0.1),
        lambda: adapt.DynamicSettings(lr=float("nan")),
        lambda: adapt.DynamicSettings(decay=1.5),
        lambda: adapt.DynamicSettings(length=0),
    ],
)
def test_bad_settings_are_config_errors(make):
    with pytest.raises(ConfigError):
        make()


def test_dynamic_without_statistics_names_the_fix():
    with pytest.raises(ConfigError, match="dynamic.stats"):
        adapt.Adaptation(None, adapt.DynamicSettings(), None)


def test_tune_finds_settings_that_help():
    cfg, params, stats = setup("lstm")
    ids, _ = repeated(n=150)
    result = tune(params, cfg, ids, stats)
    assert result.cache_ppl < result.static and result.dynamic_ppl < result.static
    only_cache = tune(params, cfg, ids, None)
    assert only_cache.dynamic is None and "dynamic" not in only_cache.settings()


@pytest.mark.parametrize("name", ["lstm", "rnn-class"])
@pytest.mark.parametrize("lrs", [None, (0.1,)])
def test_tune_never_stores_a_loss(name, lrs, monkeypatch):
    """The stored "both" is a joint search whose grid holds each method off: on the tuning text
    it is never worse than either method alone, and its perplexity is what reading with it
    gives. With only a learning rate too large for the text, dynamic evaluation is best off,
    alone and with the cache, unless the divergence guard holds it to a gain (the cache searched
    on the dynamic run alone could store a loss)."""
    from rnngen.reading import tune as tuning

    if lrs is not None:
        monkeypatch.setattr(tuning, "DYNAMIC_LRS", lrs)
    cfg, params, stats = setup(name)
    ids, _ = repeated(n=150)
    result = tune(params, cfg, ids, stats)
    assert result.both_ppl <= min(result.cache_ppl, result.dynamic_ppl, result.static)
    if lrs is not None:  # one large rate: the divergence guard may rescue it, or it is off
        assert result.both_dynamic.lr in (0, lrs[0]) and result.both_ppl <= result.cache_ppl
    for cache, dynamic, ppl in [
        (result.cache, None, result.cache_ppl),
        (None, result.dynamic, result.dynamic_ppl),
        (result.both_cache, result.both_dynamic, result.both_ppl),
    ]:
        nll = adapted_token_nll(params, cfg, ids, adapt.Adaptation(cache, dynamic, stats))
        assert math.exp(nll.mean()) == pytest.approx(ppl, rel=1e-5)
    settings = result.settings()
    assert settings["both"] == result.both_cache.to_dict()
    assert settings["both_dynamic"] == result.both_dynamic.to_dict()


# --- the model file -------------------------------------------------------------------------------


def model_with(stats, adapt_settings=None):
    cfg, params, _ = setup("lstm")
    vocab = Vocab(("<unk>", *(f"w{i}" for i in range(1, V))), (0,) * V, 1)
    stats = None if stats is None else split_output(stats)  # the file layout, as params
    return TrainedModel(cfg, TokenizerConfig(), vocab, split_output(params), {}, stats,
                        adapt_settings)  # fmt: skip


def test_statistics_and_settings_round_trip(tmp_path):
    _, _, stats = setup("lstm")
    settings = {
        "cache": {"size": 100, "theta": 0.2, "lambda": 0.1},
        "dynamic": {"lr": 0.01, "decay": 0.001, "length": 20},
    }
    save_model(tmp_path / "m.npz", model_with(stats, settings))
    loaded = load_model(tmp_path / "m.npz")
    assert loaded.adapt == settings
    for k, v in split_output(stats).items():
        np.testing.assert_array_equal(loaded.stats[k], v)
    save_model(tmp_path / "old.npz", model_with(None))
    old = load_model(tmp_path / "old.npz")
    assert old.stats is None and old.adapt is None


@pytest.mark.parametrize(
    "damage",
    ["negative", "nan", "shape", "partial"],
)
def test_bad_statistics_are_refused(tmp_path, damage):
    _, _, stats = setup("lstm")
    stats = dict(stats)
    name = "lstm0.Wx"
    if damage == "negative":
        stats[name] = -stats[name] - 1
    elif damage == "nan":
        stats[name] = stats[name].copy()
        stats[name][0, 0] = np.nan
    path = tmp_path / "m.npz"
    save_model(path, model_with(stats))
    if damage in ("shape", "partial"):
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
        if damage == "shape":
            arrays[f"stats.{name}"] = arrays[f"stats.{name}"][:, :3]
        else:
            del arrays[f"stats.{name}"]
        np.savez(path, **arrays)
    with pytest.raises(ModelFileError):
        load_model(path)


@pytest.mark.parametrize(
    "settings",
    [
        {"cache": {"size": 0, "theta": 0.2, "lambda": 0.1}},
        {"cache": {"size": 10, "theta": 0.2, "lambda": 1.5}},
        {"cache": {"size": 10, "theta": 0.2}},
        {"cache": {"size": 10.5, "theta": 0.2, "lambda": 0.1}},
        {"dynamic": {"lr": -1.0, "decay": 0.001, "length": 20}},
        {"dynamic": {"lr": True, "decay": 0.001, "length": 20}},
        {"other": {}},
        {"both": {"size": 10, "theta": 0.2, "lambda": 0.1}},  # no dynamic settings beside it
        [],
    ],
)
def test_bad_tuned_settings_are_refused(tmp_path, settings):
    import json

    path = tmp_path / "m.npz"
    save_model(path, model_with(None))
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(arrays["meta"].item())
    meta["adapt"] = settings
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)
    with pytest.raises(ModelFileError) as refused:
        load_model(path)
    assert "--" not in str(refused.value)  # the file's setting is named, not a command-line option


@pytest.mark.parametrize("name", CONFIGS)
def test_the_chunked_lazy_update_equals_the_plain_one(name, monkeypatch):
    """Chunked over threads, the embedding's rows updated when read and their decay applied
    late: the same scores and weights, segment after segment, as the plain formula on whole
    dense arrays (float64, so only rounding separates them)."""
    from rnngen.core import backend

    cfg, params, stats = setup(name)
    params = {k: v.astype(np.float64) for k, v in params.items()}
    stats = {k: v.astype(np.float64) for k, v in stats.items()}
    # a few rows whose pull reaches its ceiling of 1
    stats["embed"] = stats["embed"].copy()
    stats["embed"][:2] *= 1e6
    settings = adapt.DynamicSettings(lr=0.01, decay=0.05, length=7)
    monkeypatch.setattr(backend, "CHUNK", 37)  # many chunks, some cut short
    # the plain formula has no guard (this lr makes the random model worse than uniform)
    weights = adapt.DynamicWeights(params, cfg, stats, settings, margin=None)
    weights.workers = 2
    # the plain update, written from the formula (Krause et al.'s RMS-normalised step with a
    # global prior): theta += pull (theta_0 - theta) - step g, every weight, dense gradients;
    # step = lr / (sqrt(MS) + the matrix's RMS gradient), pull = min(decay sqrt(MS) / mean
    # sqrt(MS) over all weights, 1)
    rms = {k: np.sqrt(v) for k, v in stats.items()}
    mean_rms = sum(float(r.sum()) for r in rms.values()) / sum(r.size for r in rms.values())
    step = {k: settings.lr / (r + math.sqrt(float(stats[k].mean()))) for k, r in rms.items()}
    pull = {k: np.minimum(settings.decay * r / mean_rms, 1.0) for k, r in rms.items()}
    assert (pull["embed"] == 1).any() and (pull["embed"] < 1).any()  # the ceiling, and below
    plain = {k: v.copy() for k, v in params.items()}
    ids = np.random.default_rng(7).integers(0, V // 2, 120)  # half the rows never read
    h_fast = h_plain = init_state(cfg, 1, np.float64)
    for start in range(0, len(ids) - 1, settings.length):
        x = ids[start : start + settings.length][:, None]
        y = ids[start + 1 : start + settings.length + 1][:, None]
        x = x[: len(y)]
        fast = weights.read(x, y, h_fast)
        ref = loss_and_grads(plain, cfg, x, y, h_plain)
        np.testing.assert_allclose(fast.token_nll, ref.token_nll, rtol=1e-9)
        for k, theta in plain.items():
            theta += pull[k] * (params[k] - theta) - step[k] * ref.grads[k]
        h_fast, h_plain = fast.state, ref.state
    assert weights.steps > 10
    for k, theta in plain.items():
        np.testing.assert_allclose(weights.params[k], theta, rtol=1e-9, atol=1e-12)
    assert adapt.DynamicWeights(params, cfg, stats, settings).distance() == 0
    assert weights.distance() > 0
