"""DRY, the sequence-repeat penalty: rnngen.reading.dry against a naive implementation written
here from the definition (every earlier position, extended back one token at a time)."""

import numpy as np
import pytest

from rnngen.reading import dry


def naive_penalties(history, multiplier, base, allowed, last_n, breakers=frozenset()):
    """{token: penalty} straight from the definition."""
    w = list(history if last_n < 0 else history[-last_n:])
    n = len(w)
    longest = {}
    for i in range(n - 1):
        m = 0
        while m <= i and w[i - m] == w[n - 1 - m] and w[n - 1 - m] not in breakers:
            m += 1
        token = w[i + 1]
        if token not in breakers:
            longest[token] = max(longest.get(token, 0), m)
    return {
        t: min(multiplier * base ** (m - allowed), dry.MAX_PENALTY)
        for t, m in longest.items()
        if m >= allowed and multiplier > 0
    }


def as_dict(result):
    ids, amounts = result
    return dict(zip(ids.tolist(), amounts.tolist(), strict=True))


def check(history, multiplier=0.8, base=1.75, allowed=2, last_n=-1, breakers=frozenset()):
    got = as_dict(dry.penalties(history, multiplier, base, allowed, last_n, breakers))
    want = naive_penalties(history, multiplier, base, allowed, last_n, breakers)
    assert got.keys() == want.keys()
    for t in want:
        assert got[t] == pytest.approx(want[t], rel=1e-12)


def test_a_repeated_phrase_penalises_the_token_that_continued_it():
    # 5 6 7 8 ... 5 6 7: the 8 would repeat a 3-token match
    history = [5, 6, 7, 8, 1, 2, 5, 6, 7]
    ids, amounts = dry.penalties(history, 1.0, 2.0, 2, -1)
    assert ids.tolist() == [8]
    assert amounts.tolist() == [2.0]  # 1 * 2 ** (3 - 2)
    assert len(dry.penalties(history, 1.0, 2.0, 4, -1)[0]) == 0  # shorter than allowed


def test_breakers_cut_matches_and_are_never_penalised():
    history = [5, 6, 9, 7, 1, 5, 6, 9, 7]
    assert as_dict(dry.penalties(history, 1.0, 2.0, 1, -1)) == {1: 8.0}  # 4-token match
    assert as_dict(dry.penalties(history, 1.0, 2.0, 1, -1, frozenset({9}))) == {1: 1.0}
    assert as_dict(dry.penalties(history, 1.0, 2.0, 1, -1, frozenset({1}))) == {}
    ending = [5, 9, 3, 5, 9]
    assert as_dict(dry.penalties(ending, 1.0, 2.0, 1, -1, frozenset({9}))) == {}


def test_window_bounds_the_match():
    history = [1, 2, 3, 4, 1, 2, 3]
    assert as_dict(dry.penalties(history, 1.0, 2.0, 1, -1)) == {4: 4.0}
    assert as_dict(dry.penalties(history, 1.0, 2.0, 1, 5)) == {4: 1.0}  # [3 4 1 2 3]: 1 token
    assert as_dict(dry.penalties(history, 1.0, 2.0, 1, 0)) == {}


@pytest.mark.parametrize("seed", range(40))
def test_random_histories_match_the_naive_definition(seed):
    rng = np.random.default_rng(seed)
    vocab = int(rng.integers(2, 6))  # few tokens: many matches
    history = rng.integers(0, vocab, int(rng.integers(0, 80))).tolist()
    breakers = frozenset(rng.choice(vocab, int(rng.integers(0, 2)), replace=False).tolist())
    check(history, allowed=int(rng.integers(1, 4)), breakers=breakers)
    check(history, last_n=int(rng.integers(1, 30)), breakers=breakers)


@pytest.mark.parametrize("period", [1, 3, 7])
def test_loops_longer_than_the_stepwise_extension_use_the_linear_pass(period):
    # a loop of `period` tokens repeated far past EXTEND_STEPS, after some other text
    rng = np.random.default_rng(period)
    history = rng.integers(10, 20, 15).tolist() + list(range(period)) * (120 // period)
    history += list(range(period))[: period // 2]
    lengths = dry.match_lengths(history)
    assert lengths.max() > dry.EXTEND_STEPS
    check(history)
    check(history, breakers=frozenset({0}))
    check(history + [99] + history[-50:], last_n=70)
    # a breaker further back than the stepwise extension reaches cuts the linear pass's matches
    loop = list(range(period)) * (45 // period + 1)
    history = [5, 99] + loop + [99] + loop[:40]
    assert dry.match_lengths(history)[40 + 1] == 40 + 1  # through the 99
    check(history, base=1.1, breakers=frozenset({99}))  # a base small enough not to cap


def test_penalty_is_capped_and_finite():
    history = [3] * 500
    ids, amounts = dry.penalties(history, 1.0, 1.75, 2, -1)
    assert ids.tolist() == [3] and amounts.tolist() == [dry.MAX_PENALTY]
    assert np.isfinite(dry.apply(np.zeros(5), ids, amounts)).all()


def test_match_lengths_of_tiny_windows():
    assert dry.match_lengths([]).tolist() == []
    assert dry.match_lengths([4]).tolist() == []
    assert dry.match_lengths([4, 4]).tolist() == [1]
    assert dry._z_function([1, 1, 2, 1, 1]) == [5, 1, 0, 2, 1]
