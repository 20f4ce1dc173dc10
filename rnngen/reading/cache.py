"""The neural cache (Grave, Joulin and Usunier, 2017), over the last W positions i before t whose
next word y_i is already known:
    p(w) = (1 - lam) p_model(w) + lam p_cache(w)
    p_cache(w) = sum_{i: y_i = w} exp(theta h_t.h_i) / sum_i exp(theta h_t.h_i)
h is the top layer's output. Both parts sum to one, so the mixture does; scoring needs p_model only
at the target, so the class softmax works unchanged. The first token has an empty cache and is
scored by the model alone.

Letters: T positions of a chunk, P positions held in the cache, H hidden, V vocabulary, W window.
"""

import math

import numpy as np

from ..core import backend
from .settings import CacheSettings


class NeuralCache:
    """The last `size` (hidden state, next word) pairs of the text read so far."""

    def __init__(self, settings: CacheSettings, hidden: int, dtype=np.float32):
        self.settings = settings
        xp = backend.xp
        self.keys = xp.zeros((0, hidden), dtype=dtype)  # (P, H)
        self.values = xp.zeros(0, dtype=xp.int64)  # (P,)

    def _scores(self, h, targets):
        """theta-free parts for a chunk h (T, H) with its targets (T,): the dot products with the
        cache and the chunk's own earlier positions (T, P+T), which of them each row may use,
        and which hold the row's target."""
        xp = backend.xp
        T, P, W = len(h), len(self.keys), self.settings.size
        keys = xp.concatenate([self.keys, h])  # (P+T, H)
        values = xp.concatenate([self.values, xp.asarray(targets, dtype=xp.int64)])
        dots = (h @ keys.T).astype(xp.float64)  # (T, P+T)
        col = xp.arange(P + T)[None, :]
        row = P + xp.arange(T)[:, None]  # the row's own position among the keys
        allowed = (col < row) & (col >= row - W)
        match = values[None, :] == values[P:, None]
        return dots, allowed, match

    def add_chunk(self, h, targets):
        """Remember the positions h (T, H) and their next words targets (T,)."""
        xp = backend.xp
        W = self.settings.size
        self.keys = xp.concatenate([self.keys, h])[-W:]
        self.values = xp.concatenate([self.values, xp.asarray(targets, dtype=xp.int64)])[-W:]

    def target_log_probs(self, h, targets, thetas=None):
        """log p_cache(target) (len(thetas), T) for a chunk h (T, H) whose targets (T,) follow
        the cache's positions (each row sees only earlier positions): -inf where the target is
        not in the cache, NaN where the cache is empty. Then the chunk joins the cache."""
        xp = backend.xp
        thetas = [self.settings.theta] if thetas is None else thetas
        dots, allowed, match = self._scores(h, targets)
        out = xp.full((len(thetas), len(h)), -xp.inf)
        any_allowed = allowed.any(axis=1)
        for k, theta in enumerate(thetas):
            s = xp.where(allowed, theta * dots, -xp.inf)
            top = xp.where(any_allowed, s.max(axis=1), 0.0)
            e = xp.exp(s - top[:, None])  # 0 where not allowed
            num = (e * match).sum(axis=1)
            den = e.sum(axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                out[k] = xp.where(num > 0, xp.log(num) - xp.log(den), -xp.inf)
        out[:, ~any_allowed] = xp.nan
        self.add_chunk(h, targets)
        return out

    def probs(self, h, vocab_size: int):
        """p_cache over the whole vocabulary (V,) for one hidden state h (H,) (generation), or
        None while the cache is empty; the caller adds the position with `add`."""
        xp = backend.xp
        if len(self.keys) == 0:
            return None
        s = self.settings.theta * (self.keys @ h).astype(xp.float64)
        e = xp.exp(s - s.max())
        return xp.bincount(self.values, weights=e, minlength=vocab_size) / e.sum()

    def add(self, h, target: int):
        self.add_chunk(h[None], [target])


def mix(model_nll, cache_logp, lam: float):
    """-log((1 - lam) p_model + lam p_cache) from -log p_model and log p_cache, elementwise;
    where the cache was empty (NaN) the model's alone. lam 0 gives model_nll back."""
    xp = backend.xp
    if lam == 0:
        return model_nll
    empty = xp.isnan(cache_logp)
    with np.errstate(divide="ignore", invalid="ignore"):
        mixed = -xp.logaddexp(math.log1p(-lam) - model_nll, math.log(lam) + cache_logp)
    return xp.where(empty, model_nll, mixed)
