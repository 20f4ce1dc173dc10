"""DRY ("don't repeat yourself"): a penalty on the token that would make a repeat longer.

A per-token repeat penalty cannot see a repeated sequence: a loop of a whole line reuses words
that are common anyway. DRY looks at sequences. In the last `last_n` tokens of the history
w[0..n-1] (the start text counts), each earlier position i ends a match of length

    m(i) = the largest m with w[i-m+1 .. i] == w[n-m .. n-1], none of those m tokens a sequence
           breaker and i-m+1 >= 0 (the match stays inside the window),

so the token that followed it, w[i+1], would extend a repeat of m(i) + 1 tokens. A candidate c
gets the longest of its matches, M(c) = max m(i) over the i < n-1 with w[i+1] = c, and where
M(c) >= allowed_length its score is lowered by

    multiplier * base ** (M(c) - allowed_length)

(capped at MAX_PENALTY so that it stays finite). Sequence breakers are never penalised. The
penalty is subtracted from log-probabilities or logits alike (softmax is unchanged by a shift),
so DRY works the same before any temperature, including greedy.

How the matches are found: candidates are extended one token back at a time, numpy over the
positions still matching (a handful in ordinary text, after a few tokens none); past
EXTEND_STEPS tokens of match (a loop, or a start text that repeats itself) the Z-function of the
reversed window, a linear-time pass, gives every match length at once. Letters: n window.
"""

import math

import numpy as np

MAX_PENALTY = 1e9  # a score lowered this much is never drawn, and stays finite
EXTEND_STEPS = 32  # match lengths worth extending one numpy step at a time


def match_lengths(window, breakers=frozenset()) -> np.ndarray:
    """m(i) for i = 0 .. n-2 of the window (n,) ids: (n-1,) int64 (see the module docstring)."""
    w = np.asarray(window, dtype=np.int64)
    n = len(w)
    out = np.zeros(max(n - 1, 0), dtype=np.int64)
    if n < 2:
        return out
    limit = _unbroken(w, breakers)  # no match is longer than the breaker-free end of the window
    if limit == 0:
        return out
    positions = np.flatnonzero(w[:-1] == w[-1])  # (k,) candidates matching the last token
    length = 1
    while len(positions) and length < min(limit, EXTEND_STEPS):
        out[positions] = length
        back = positions - length
        keep = back >= 0
        positions, back = positions[keep], back[keep]
        positions = positions[w[back] == w[n - 1 - length]]
        length += 1
    out[positions] = length  # matched so far (or all the way, if the loop ran out)
    if len(positions) and length < limit:  # long repeats: every length in one linear pass
        z = _z_function(w[::-1].tolist())
        # position i ends n-1-i tokens before the last: its match is z[n-1-i]
        out = np.minimum(np.array(z[:0:-1], dtype=np.int64), limit)
    return out


def penalties(history, multiplier, base, allowed_length, last_n, breakers=frozenset()):
    """The DRY penalties after `history` (ids): (ids (k,) int64 distinct, amounts (k,) float64),
    to be subtracted from the scores of those ids. last_n: the window (-1: all of history)."""
    empty = np.zeros(0, dtype=np.int64), np.zeros(0)
    if multiplier == 0 or last_n == 0 or len(history) < 2:
        return empty
    window = np.asarray(history if last_n < 0 else history[-last_n:], dtype=np.int64)
    lengths = match_lengths(window, breakers)
    nxt = window[1:]  # (n-1,) the token after each position
    use = lengths >= allowed_length
    if breakers:
        use &= ~np.isin(nxt, np.fromiter(breakers, dtype=np.int64, count=len(breakers)))
    if not use.any():
        return empty
    ids, where = np.unique(nxt[use], return_inverse=True)
    longest = np.zeros(len(ids), dtype=np.int64)
    np.maximum.at(longest, where, lengths[use])
    exponent = (longest - allowed_length).astype(np.float64)
    if base > 1:  # no overflow: past the cap's exponent the penalty is the cap
        exponent = np.minimum(exponent, max(math.log(MAX_PENALTY / multiplier, base), 0.0))
    return ids, np.minimum(multiplier * base**exponent, MAX_PENALTY)


def apply(scores, ids, amounts) -> np.ndarray:
    """scores (V,) with amounts subtracted at ids: a new float64 array."""
    out = np.array(scores, dtype=np.float64)
    out[ids] -= amounts
    return out


def _unbroken(w, breakers) -> int:
    """Tokens at the end of w after its last breaker (all of w when it has none)."""
    if not breakers:
        return len(w)
    hits = np.flatnonzero(np.isin(w, np.fromiter(breakers, dtype=np.int64, count=len(breakers))))
    return len(w) - 1 - int(hits[-1]) if len(hits) else len(w)


def _z_function(s: list) -> list:
    """z[k]: the length of the longest common prefix of s and s[k:] (z[0] = len(s))."""
    n = len(s)
    z = [0] * n
    if n:
        z[0] = n
    left = right = 0  # s[left:right] is the rightmost window known to match a prefix
    for k in range(1, n):
        if k < right:
            z[k] = min(right - k, z[k - left])
        while k + z[k] < n and s[z[k]] == s[k + z[k]]:
            z[k] += 1
        if k + z[k] > right:
            left, right = k, k + z[k]
    return z
