"""The sampler chain (rnngen/sampling.py): each option on hand-made score vectors, the order of the
chain, the settings' validation, the class-softmax sampler against the full one, and generation
with the start text in one sequence forward against one step per token."""

import math

import numpy as np
import pytest

from rnngen.core import model as M
from rnngen.core.class_softmax import ClassDistribution, class_log_probs, make_class_bounds
from rnngen.core.numerics import logsumexp
from rnngen.errors import ConfigError
from rnngen.reading import sampling as S
from rnngen.reading.generate import generate
from rnngen.reading.reader import Reader

NEG = -np.inf


def kept(scores) -> list:
    return np.flatnonzero(np.isfinite(scores)).tolist()


def log(p) -> np.ndarray:
    return np.log(np.asarray(p, dtype=np.float64))


# --- each option ------------------------------------------------------------------------------


def test_top_k_keeps_exactly_k_ties_by_id():
    z = np.array([2.0, 2.0, 2.0, 1.0, 0.0])
    assert kept(S.top_k(z, 1)) == [0]  # `z >= kth` kept all three
    assert kept(S.top_k(z, 2)) == [0, 1]
    assert kept(S.top_k(z, 4)) == [0, 1, 2, 3]
    assert kept(S.top_k(np.array([0.0, 3.0, 1.0, 3.0]), 1)) == [1]
    assert kept(S.top_k(np.array([0.0, 3.0, 1.0, 3.0]), 3)) == [1, 2, 3]
    np.testing.assert_array_equal(S.top_k(z, 0), z)
    np.testing.assert_array_equal(S.top_k(z, 5), z)
    np.testing.assert_array_equal(S.top_k(z, 9), z)
    assert S.top_k(z, 2)[0] == 2.0  # kept scores unchanged


def test_top_k_counts_only_tokens_still_in():
    z = np.array([NEG, 1.0, NEG, 0.5, 0.2])
    assert kept(S.top_k(z, 2)) == [1, 3]
    assert kept(S.top_k(z, 3)) == [1, 3, 4]


def test_top_p_nucleus():
    z = log([0.1, 0.5, 0.3, 0.05, 0.05])
    assert kept(S.top_p(z, 0.45)) == [1]
    assert kept(S.top_p(z, 0.7)) == [1, 2]  # 0.5 < 0.7 <= 0.8
    assert kept(S.top_p(z, 0.85)) == [0, 1, 2]
    assert kept(S.top_p(z, 0.0)) == [1]  # always the likeliest
    np.testing.assert_array_equal(S.top_p(z, 1.0), z)
    # shifted scores are the same distribution
    assert kept(S.top_p(z + 7.0, 0.7)) == [1, 2]
    # equal probabilities: the lower id first
    assert kept(S.top_p(log([0.2, 0.4, 0.4]), 0.3)) == [1]


def test_top_p_with_the_mass_of_a_larger_distribution():
    # the scores hold 0.6 of a distribution whose other 0.4 lies elsewhere
    z = log([0.3, 0.2, 0.1])
    assert kept(S.top_p(z, 0.45, log_total=0.0)) == [0, 1]  # 0.3 < 0.45 <= 0.5
    assert kept(S.top_p(z, 0.45)) == [0]  # normalised over the three: 0.5 >= 0.45


def test_min_p():
    z = log([0.5, 0.3, 0.1, 0.1])
    assert kept(S.min_p(z, 0.5)) == [0, 1]  # p >= 0.25
    assert kept(S.min_p(z, 0.2)) == [0, 1, 2, 3]
    assert kept(S.min_p(z, 1.0)) == [0]
    np.testing.assert_array_equal(S.min_p(z, 0.0), z)


def test_repeat_penalty_divides_positive_and_multiplies_negative():
    z = np.array([2.0, -2.0, 1.0, 0.0, 3.0])
    out = S.repeat_penalty(z, [0, 1, 3], 2.0)
    np.testing.assert_array_equal(out, [1.0, -4.0, 1.0, 0.0, 3.0])
    np.testing.assert_array_equal(S.repeat_penalty(z, [0, 1], 1.0), z)
    np.testing.assert_array_equal(z, [2.0, -2.0, 1.0, 0.0, 3.0])  # the input is not changed


def test_recent_ids_window():
    settings = S.SamplerSettings(repeat_penalty=1.5, repeat_last_n=3)
    assert S.recent_ids([5, 1, 2, 2, 7], settings).tolist() == [2, 7]
    every = S.SamplerSettings(repeat_penalty=1.5, repeat_last_n=-1)
    assert S.recent_ids([5, 1, 2, 2, 7], every).tolist() == [1, 2, 5, 7]
    assert len(S.recent_ids([5, 1], S.SamplerSettings(repeat_penalty=1.5, repeat_last_n=0))) == 0
    assert len(S.recent_ids([5, 1], S.SamplerSettings())) == 0  # penalty 1: off


def test_temperature():
    z = np.array([1.0, 3.0, 3.0, NEG])
    np.testing.assert_array_equal(S.temperature(z, 2.0), [0.5, 1.5, 1.5, NEG])
    np.testing.assert_array_equal(S.temperature(z, 1.0), z)
    assert kept(S.temperature(z, 0.0)) == [1]


def test_draw_frequencies_and_removed_tokens():
    p = np.array([0.1, 0.0, 0.6, 0.3])
    z = np.where(p > 0, np.log(np.maximum(p, 1e-300)), NEG)
    rng = np.random.default_rng(0)
    counts = np.bincount([S.draw(z, rng) for _ in range(20000)], minlength=4)
    assert counts[1] == 0
    np.testing.assert_allclose(counts / 20000, p, atol=0.015)


# --- the chain --------------------------------------------------------------------------------


def test_penalty_comes_before_top_k():
    z = np.array([3.0, 2.9, 0.0])
    settings = S.SamplerSettings(top_k=1, repeat_penalty=2.0)
    rng = np.random.default_rng(0)
    # the penalised id 0 (3 -> 1.5) falls below id 1 before top-k chooses
    assert {S.sample_token(z, settings, [0], rng) for _ in range(20)} == {1}
    assert {S.sample_token(z, S.SamplerSettings(top_k=1), [0], rng) for _ in range(20)} == {0}


def test_top_p_after_top_k_normalises_over_the_k():
    z = log([0.4, 0.3, 0.3])
    both = S.truncate(z, S.SamplerSettings(top_k=2, top_p=0.5))
    assert kept(both) == [0]  # 0.4 / 0.7 >= 0.5
    assert kept(S.truncate(z, S.SamplerSettings(top_p=0.5))) == [0, 1]  # 0.4 < 0.5


def test_temperature_comes_after_the_filters():
    z = log([0.5, 0.3, 0.2])
    settings = S.SamplerSettings(min_p=0.5, temperature=100.0)
    rng = np.random.default_rng(1)
    drawn = {S.sample_token(z, settings, [], rng) for _ in range(300)}
    assert drawn == {0, 1}  # a temperature first would have let 0.2 pass min-p


def test_greedy_and_temperature_zero_take_the_first_highest_without_random_numbers():
    z = np.array([1.0, 4.0, 4.0, 2.0])
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    assert S.sample_token(z, S.GREEDY, [], rng) == 1
    assert rng.bit_generator.state == state
    # greedy after the penalty: id 1 penalised
    settings = S.SamplerSettings(temperature=0.0, repeat_penalty=2.0)
    assert S.sample_token(z, settings, [1], rng) == 2


def test_default_settings_draw_as_before():
    """Plain sampling is softmax(logits) through the CDF with one uniform number per token, as
    rnngen drew before the chain, so a seed gives the text it gave."""
    z = np.random.default_rng(3).normal(size=50)
    for seed in range(20):
        a = S.sample_token(z, S.SamplerSettings(), [], np.random.default_rng(seed))
        p = np.exp(z - z.max())
        cdf = np.cumsum(p)
        u = np.random.default_rng(seed).random()
        assert a == int(np.searchsorted(cdf, u * cdf[-1], side="right"))


# --- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad, field",
    [
        (dict(temperature=math.nan), "sampling.temperature"),
        (dict(temperature=math.inf), "sampling.temperature"),
        (dict(temperature=-0.5), "sampling.temperature"),
        (dict(top_p=math.nan), "sampling.top_p"),
        (dict(top_p=-0.1), "sampling.top_p"),
        (dict(top_p=1.5), "sampling.top_p"),
        (dict(top_p=math.inf), "sampling.top_p"),
        (dict(min_p=2.0), "sampling.min_p"),
        (dict(min_p=math.nan), "sampling.min_p"),
        (dict(repeat_penalty=0.0), "sampling.repeat_penalty"),
        (dict(repeat_penalty=math.nan), "sampling.repeat_penalty"),
        (dict(top_k=-1), "sampling.top_k"),
        (dict(repeat_last_n=-2), "sampling.repeat_last_n"),
    ],
)
def test_out_of_range_settings_name_the_setting(bad, field):
    with pytest.raises(ConfigError, match=field) as caught:
        S.SamplerSettings(**bad)
    assert caught.value.fields == (field,)


def test_greedy_with_any_other_option_is_refused():
    for name, value in [("temperature", 0.5), ("top_k", 5), ("top_p", 0.9), ("min_p", 0.1),
                        ("repeat_penalty", 1.1), ("temperature", 1.0)]:  # fmt: skip
        with pytest.raises(ConfigError, match="sampling.greedy"):
            S.sampler_settings(True, **{name: value})
    assert S.sampler_settings(True, top_k=None) == S.GREEDY
    assert S.sampler_settings(False, temperature=0.0).greedy
    with pytest.raises(ConfigError, match="sampling.repeat_last_n"):
        S.sampler_settings(False, repeat_last_n=5)


# --- the class softmax, by its factorisation --------------------------------------------------


def class_setup(seed=0, V=60, H=8, bounds=(0, 2, 5, 9, 14, 22, 35, 60), scale=1.0):
    rng = np.random.default_rng(seed)
    h = rng.normal(size=H) * scale
    Wc, bc = rng.normal(size=(H, len(bounds) - 1)), rng.normal(size=len(bounds) - 1)
    W, b = rng.normal(size=(H, V)), rng.normal(size=V)
    return ClassDistribution(h, Wc, bc, W, b, bounds), (h, Wc, bc, W, b, bounds)


def large_class_setup(seed=0):
    """600 words in 24 classes cut as rnngen cuts them, and a peaked distribution: the sampler
    makes classes one by one (a small vocabulary soon takes its one-product path)."""
    bounds = make_class_bounds(np.maximum((1e5 / np.arange(1, 601)).astype(int), 1), 24)
    return class_setup(seed, V=600, H=8, bounds=bounds, scale=2.0)


class Counting:
    """A ClassDistribution that counts the classes whose word level was made."""

    def __init__(self, dist):
        self.dist, self.bounds, self.class_logp, self.made = dist, dist.bounds, dist.class_logp, []

    def words(self, c):
        self.made.append(c)
        return self.dist.words(c)

    def full(self):
        self.made.extend(range(len(self.bounds) - 1))
        return self.dist.full()


SETTINGS = [
    S.SamplerSettings(),
    S.SamplerSettings(temperature=0.7),
    S.SamplerSettings(temperature=1.6),
    S.GREEDY,
    S.SamplerSettings(top_k=1),
    S.SamplerSettings(top_k=5),
    S.SamplerSettings(top_k=50, temperature=0.8),
    S.SamplerSettings(top_p=0.5),
    S.SamplerSettings(top_p=0.9, temperature=1.3),
    S.SamplerSettings(min_p=0.2),
    S.SamplerSettings(min_p=0.01, temperature=0.5),
    S.SamplerSettings(top_k=8, top_p=0.8, min_p=0.1),
    S.SamplerSettings(repeat_penalty=1.5),
    S.SamplerSettings(repeat_penalty=0.7, repeat_last_n=-1),
    S.SamplerSettings(repeat_penalty=1.3, top_p=0.9),
    S.SamplerSettings(repeat_penalty=1.3, temperature=0.0),
    S.SamplerSettings(repeat_penalty=2.0, top_k=3, temperature=0.6),
]


def test_class_distribution_is_the_class_softmax():
    dist, (h, Wc, bc, W, b, bounds) = class_setup()
    np.testing.assert_allclose(dist.full(), class_log_probs(h[None], Wc, bc, W, b, bounds)[0])
    by_class = np.concatenate([dist.words(c) for c in range(len(bounds) - 1)])
    np.testing.assert_allclose(by_class, dist.full(), rtol=1e-13)
    assert math.isclose(np.exp(dist.full()).sum(), 1.0, rel_tol=1e-12)


@pytest.mark.parametrize("index", range(len(SETTINGS)))
def test_factored_sampler_draws_the_full_samplers_token(index):
    """The same token as the chain on every word's log-probability, for the same random state:
    so the same distribution, option by option."""
    settings = SETTINGS[index]
    for seed in range(6):
        dist, _ = class_setup(seed) if seed < 3 else large_class_setup(seed)
        full = dist.full()
        history = [i for i in (3, 40, 3, 17, 0, 58, 599, 250) if i < dist.bounds[-1]]
        for draw_seed in range(150):
            a = S.sample_factored(dist, settings, history, np.random.default_rng(draw_seed))
            b = S.sample_token(full, settings, history, np.random.default_rng(draw_seed))
            assert a == b, (settings, seed, draw_seed)


def test_factored_sampler_makes_few_classes():
    dist, _ = class_setup()
    counting = Counting(dist)
    rng = np.random.default_rng(0)
    for _ in range(20):
        S.sample_factored(counting, S.SamplerSettings(), [], rng)
    assert len(counting.made) == 20  # one class per token
    counting.made.clear()
    S.sample_factored(counting, S.GREEDY, [], rng)
    assert len(counting.made) < len(dist.bounds) - 1
    large = Counting(large_class_setup()[0])
    for settings in (S.GREEDY, S.SamplerSettings(top_p=0.5), S.SamplerSettings(repeat_penalty=1.2)):
        large.made.clear()
        S.sample_factored(large, settings, [1, 2, 300], rng)
        assert 0 < len(large.made) < 12, settings
    counting.made.clear()
    S.sample_factored(counting, S.SamplerSettings(temperature=0.5), [], rng)
    assert sorted(counting.made) == list(range(len(dist.bounds) - 1))  # needs every class


def test_tempered_class_masses_as_derived():
    """p(w)^(1/T) = p(c)^(1/T) p(w|c)^(1/T): the tempered mass of class c is
    p(c)^(1/T) * sum over its words of p(w|c)^(1/T), normalised over the classes."""
    dist, _ = class_setup(2)
    T = 0.6
    full = np.exp(dist.full() / T)
    full /= full.sum()
    masses = []
    for c in range(len(dist.bounds) - 1):
        within = dist.words(c) - dist.class_logp[c]  # log p(w | c)
        masses.append(np.exp(dist.class_logp[c] / T) * np.exp(within / T).sum())
    masses = np.array(masses) / sum(masses)
    sums = [full[lo:hi].sum() for lo, hi in zip(dist.bounds, dist.bounds[1:], strict=False)]
    np.testing.assert_allclose(masses, sums, rtol=1e-12)


def test_factored_sampler_frequencies():
    """A statistical check with a fixed seed: frequencies against the chain's probabilities."""
    dist, _ = class_setup(1)
    settings = S.SamplerSettings(top_p=0.9, temperature=0.8, repeat_penalty=1.2)
    history = [0, 1, 30]
    s = S.repeat_penalty(dist.full(), S.recent_ids(history, settings), 1.2)
    s = S.temperature(S.truncate(s, settings), 0.8)
    p = np.exp(s - s.max())
    p /= p.sum()
    rng = np.random.default_rng(5)
    n = 6000
    counts = np.bincount(
        [S.sample_factored(dist, settings, history, rng) for _ in range(n)], minlength=len(p)
    )
    assert counts[p == 0].sum() == 0
    big = p > 0.02
    sigma = np.sqrt(p[big] * (1 - p[big]) / n)
    assert np.all(np.abs(counts[big] / n - p[big]) < 5 * sigma)


# --- generation: the start text in one forward ------------------------------------------------


def small_model(softmax="full", cell="rnn", layers=2, V=30):
    bounds = (0, 3, 8, 15, 30) if softmax == "class" else ()
    cfg = M.ModelConfig(V, embed=6, hidden=7, layers=layers, cell=cell, dropout=0.0,
                        softmax=softmax, class_bounds=bounds)  # fmt: skip
    rng = np.random.default_rng(4)
    params = M.init_params(cfg, rng, np.float64)
    for k in params:
        params[k] = params[k] + rng.normal(scale=0.4, size=params[k].shape)
    return cfg, M.join_output(params)


def stepwise(params, cfg, prompt, length, rng, settings):
    """The generation loop written out: the prompt one `step` per token, then the chain on the
    full vector of log-probabilities (the log-softmax of the logits)."""
    h = M.init_state(cfg, 1, np.float64)
    for token in prompt[:-1]:
        _, h = M.step(params, cfg, np.asarray([token]), h)
    current, history, out = prompt[-1], list(prompt), []
    for _ in range(length):
        logits, h = M.step(params, cfg, np.asarray([current]), h)
        logp = logits[0] - logsumexp(logits[0])
        current = S.sample_token(logp, settings, history, rng)
        history.append(current)
        out.append(current)
    return out, h


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_prompt_in_one_forward_gives_the_stepwise_state(cell):
    cfg, params = small_model(cell=cell)
    prompt = [1, 5, 2, 9, 9, 0, 4]
    reader = Reader(params, cfg)
    for _ in reader.chunks(prompt, scores=False):
        pass
    h = M.init_state(cfg, 1, np.float64)
    for token in prompt:
        logits, h = M.step(params, cfg, np.asarray([token]), h)
    want = logits[0] - logsumexp(logits[0])
    np.testing.assert_allclose(reader.next_log_probs(), want, rtol=1e-13, atol=1e-14)
    reader.push(3)  # the state after the last token, forwarded ahead of its successor
    np.testing.assert_allclose(reader.state, h, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("softmax", ["full", "class"])
def test_samples_unchanged_for_a_seed(softmax):
    cfg, params = small_model(softmax, cell="lstm")
    prompt = [2, 7, 1]
    for settings in (S.SamplerSettings(), S.SamplerSettings(top_k=4, temperature=0.7),
                     S.SamplerSettings(top_p=0.8, repeat_penalty=1.3)):  # fmt: skip
        for seed in range(5):
            new = list(generate(params, cfg, prompt, 25, np.random.default_rng(seed), settings))
            old, _ = stepwise(params, cfg, prompt, 25, np.random.default_rng(seed), settings)
            assert new == old, (settings, seed)
