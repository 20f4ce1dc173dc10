"""The Reader (rnngen/reading/reader.py): generating and reading a text give every token the same
probability, static or adapted; a stream read in pieces is read as one; lines score as each
alone, the cache holding the lines before."""

import numpy as np
import pytest
from typer.testing import CliRunner

from rnngen import api
from rnngen.cli.app import app
from rnngen.core.model import ModelConfig, init_params, init_state, join_output, token_scores
from rnngen.reading.cache import NeuralCache, mix
from rnngen.reading.continuation import SampleLog
from rnngen.reading.reader import Reader
from rnngen.reading.sampling import DEFAULT, SamplerSettings
from rnngen.reading.settings import Adaptation, CacheSettings, DynamicSettings
from rnngen.training.stats import gradient_stats

runner = CliRunner()
TINY = ["--epochs", "1", "--hidden", "16", "--embed", "8", "--batch-size", "4", "--seq-len", "8"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A float64 model trained through the command line (with its gradient statistics), and a
    start text from its training text."""
    from conftest import REPO

    folder = tmp_path_factory.mktemp("reader")
    text = (REPO / "corpora" / "peter_pan.txt").read_text(encoding="utf-8")
    train = folder / "train.txt"
    train.write_text(text[:12000], encoding="utf-8")
    path = folder / "model.npz"
    result = runner.invoke(
        app, ["train", str(train), "-o", str(path), "-q", "--dtype", "float64", *TINY]
    )
    assert result.exit_code == 0, result.stderr
    words = text[3000:3600].split()[1:]
    model = api.open_model(str(path))
    for n in range(30, 60):  # segments of 7 must end inside the start text, not at its end
        start = " ".join(words[:n])
        if len(api.prompt_ids(model, start, None)) % 7:
            return path, start
    raise AssertionError("no start text found")


OPTIONS = {
    "cache": ["--cache", "--cache-lambda", "0.3", "--cache-theta", "0.5"],
    "dynamic": ["--dynamic", "--dynamic-lr", "0.003", "--dynamic-len", "7"],
}
OPTIONS["both"] = OPTIONS["cache"] + OPTIONS["dynamic"]


def adaptation_of(model, options) -> Adaptation:
    cache = {"lam": 0.3, "theta": 0.5} if "--cache" in options else None
    dynamic = {"lr": 0.003, "length": 7} if "--dynamic" in options else None
    return api.adaptation_for(model, cache is not None, cache, dynamic is not None, dynamic)


@pytest.mark.parametrize("kind", ["cache", "dynamic", "both"])
def test_generated_tokens_have_the_probabilities_eval_gives_them(trained, kind):
    """`sample --seed` through the command line, the same draw through the API with each token's
    record, then the start text and the generated text scored together by eval's reader: every
    generated token's log-probability under the distribution it was drawn from is eval's."""
    model_path, START = trained
    options = OPTIONS[kind]
    args = ["sample", "-m", str(model_path), "--start", START, "--seed", "5", "--length", "40"]
    result = runner.invoke(app, [*args, "--no-stream", "--width", "0", *options])
    assert result.exit_code == 0, result.stderr
    model = api.open_model(str(model_path))
    adaptation = adaptation_of(model, options)
    log = SampleLog()
    rng = np.random.default_rng(5)
    text = "".join(api.sample_pieces(model, START, 40, rng, DEFAULT, adaptation, log))
    assert result.stdout == text.rstrip("\n") + "\n"  # the command line drew the same tokens
    records = log.tokens
    prompt = api.prompt_ids(model, START, rng)
    assert len(records) == 40 and len(prompt) % 7 != 0  # segments end inside the start text
    ids = prompt + [r.id for r in records]
    nll, _ = api.token_nll(model, ids, adaptation)
    drawn = np.array([r.logprob for r in records])
    np.testing.assert_allclose(drawn, -nll[len(prompt) - 1 :], rtol=1e-9, atol=1e-12)
    # and adapting mattered: the trained model alone gives other probabilities
    static, _ = api.token_nll(model, ids)
    assert np.abs(drawn + static[len(prompt) - 1 :]).max() > 1e-4


def test_a_heavy_cache_makes_generation_repeat_the_text(trained):
    model_path, START = trained
    model = api.open_model(str(model_path))
    adaptation = api.adaptation_for(model, True, {"lam": 0.99, "theta": 1.0})
    log = SampleLog()
    rng = np.random.default_rng(1)
    list(api.sample_pieces(model, START, 60, rng, None, adaptation, log))
    records = log.tokens
    prompt = api.prompt_ids(model, START, np.random.default_rng(1))
    seen = set(prompt[1:])  # the cache holds the tokens that followed a position
    repeated = 0
    for r in records:
        repeated += r.id in seen
        seen.add(r.id)
    assert repeated >= 0.9 * len(records), repeated
    plain = SampleLog()
    list(api.sample_pieces(model, START, 60, np.random.default_rng(1), None, None, plain))
    assert sum(r.id in set(prompt) for r in plain.tokens) < repeated


V = 30
CONFIGS = {
    "gru": ModelConfig(V, embed=8, hidden=10, cell="gru", dropout=0.0),
    "rnn-class": ModelConfig(
        V, embed=8, hidden=10, cell="rnn", dropout=0.0, softmax="class", class_bounds=(0, 3, 11, V)
    ),  # fmt: skip
}


def small(name):
    cfg = CONFIGS[name]
    rng = np.random.default_rng(0)
    params = join_output(init_params(cfg, rng, np.float64))
    for k in params:  # sharper than the initial weights, so the samplers have work
        params[k] = params[k] + rng.normal(scale=0.3, size=params[k].shape)
    stats = gradient_stats(params, cfg, rng.integers(0, V, 300))
    stats = {k: v.astype(np.float64) for k, v in stats.items()}
    adaptation = Adaptation(CacheSettings(size=40, theta=0.8, lam=0.4),
                            DynamicSettings(lr=0.02, decay=0.01, length=6), stats)  # fmt: skip
    return cfg, params, adaptation


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize(
    "settings",
    [SamplerSettings(), SamplerSettings(repeat_penalty=1.5, top_p=0.9), SamplerSettings(top_k=5)],
)
def test_records_match_the_read_stream_for_every_softmax_and_sampler(name, settings):
    """The class softmax's factored sampler too: the record is the model's log-probability
    before the sampler chain, the one the stream gives."""
    cfg, params, both = small(name)
    for adaptation in (None, Adaptation(None, both.dynamic, both.stats), both):
        reader = Reader(params, cfg, adaptation)
        reader.read([4, 9, 2, 2, 7, 1, 0, 5, 3])
        records = list(reader.generate(25, np.random.default_rng(2), settings))
        ids = reader.ids
        want = -Reader(params, cfg, adaptation).read(ids)[-25:]
        np.testing.assert_allclose([r.logprob for r in records], want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", CONFIGS)
def test_a_stream_read_in_pieces_is_read_as_one(name):
    cfg, params, adaptation = small(name)
    ids = np.random.default_rng(3).integers(0, V, 90)
    whole = Reader(params, cfg, adaptation).read(ids)
    reader = Reader(params, cfg, adaptation)
    cuts = [0, 1, 4, 5, 17, 18, 30, 61, 90]
    pieces = [reader.read(ids[a:b]) for a, b in zip(cuts, cuts[1:], strict=False)]
    np.testing.assert_allclose(np.concatenate(pieces), whole, rtol=1e-10)
    # pushed one token at a time, as generation does, after asking for the next distribution
    pushed = Reader(params, cfg, adaptation)
    pushed.read(ids[:1])
    got = []
    for token in ids[1:]:
        got.append(-pushed.next_log_probs()[token])
        pushed.push(token)
    np.testing.assert_allclose(got, whole, rtol=1e-10)
    assert pushed.weights.steps == (len(ids) - 1) // adaptation.dynamic.length


@pytest.mark.parametrize("name", CONFIGS)
def test_lines_score_as_each_alone_with_the_cache_holding_the_lines_before(name):
    cfg, params, adaptation = small(name)
    rng = np.random.default_rng(4)
    lines = [rng.integers(0, V, n) for n in (5, 1, 9, 0, 3, 12, 5, 7)]
    inputs = [np.concatenate([[1], ids[:-1]]).astype(np.int32)[: len(ids)] for ids in lines]
    sequences = list(zip(inputs, lines, strict=True))
    cache_only = Adaptation(adaptation.cache)
    for use_cache in (False, True):
        got = Reader(params, cfg, cache_only if use_cache else None).lines(sequences)
        cache = NeuralCache(adaptation.cache, cfg.hidden, np.float64)
        for (inputs, targets), nll in zip(sequences, got, strict=True):
            if not len(targets):
                assert len(nll) == 0
                continue
            one = token_scores(params, cfg, inputs[:, None], targets[:, None],
                               init_state(cfg, 1, np.float64))  # fmt: skip
            want = one.token_nll[:, 0]
            if use_cache:
                logp = cache.target_log_probs(one.top, targets)[0]
                want = mix(want, logp, adaptation.cache.lam)
            np.testing.assert_allclose(nll, want, rtol=1e-10)
