"""Choosing the neural cache and dynamic evaluation settings on a held-out text (`rnngen tune`).

A small fixed grid, searched by held-out perplexity, each method's grid holding "off":
    cache      size W in CACHE_SIZES x theta in CACHE_THETAS x lambda in CACHE_LAMBDAS (0: off)
    dynamic    lr in DYNAMIC_LRS at DynamicSettings' decay and segment length, or off (lr 0)
The model reads the text once per dynamic setting, off included (the static run); each run keeps
every position's score and hidden state through the Reader, so the whole cache grid costs one
product with the cache per window size over a run (the thetas share it, the lambdas are a mix of
two numbers), and no run of the model. "Both" is the best pair over the two grids together, so
on the tuning text it is never worse than either method alone (each alone is a pair with the
other off).

Letters: n tokens scored, H hidden.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..core import backend
from .cache import NeuralCache, mix
from .evaluate import perplexity
from .reader import Reader
from .settings import Adaptation, CacheSettings, DynamicSettings

CACHE_SIZES = (500, 1000, 2000)
CACHE_THETAS = (0.3, 0.6, 1.0, 2.0)
CACHE_LAMBDAS = (0.0, 0.05, 0.1, 0.15, 0.2)  # 0: the cache off
DYNAMIC_LRS = (0.0001, 0.0003, 0.001, 0.003)
DYNAMIC_OFF = DynamicSettings(lr=0.0, decay=0.0)  # the trained weights, bit for bit
TUNE_TOKENS = 200_000  # tokens of the held-out text used, at most


@dataclass(frozen=True)
class TuneResult:
    tokens: int  # tokens scored
    static: float  # perplexity without adaptation
    cache: CacheSettings
    cache_ppl: float
    dynamic: DynamicSettings | None  # None without gradient statistics
    dynamic_ppl: float | None
    both_cache: CacheSettings | None  # the best pair of the joint search (either may be off)
    both_ppl: float | None
    both_dynamic: DynamicSettings | None = None

    def settings(self) -> dict:
        """What `tune --write` stores in the model file."""
        out = {"cache": self.cache.to_dict()}
        if self.dynamic is not None:
            out["dynamic"] = self.dynamic.to_dict()
            out["both"] = self.both_cache.to_dict()
            out["both_dynamic"] = self.both_dynamic.to_dict()
        return out

    def to_dict(self) -> dict:
        return {
            "tokens": self.tokens,
            "static_perplexity": self.static,
            "cache": self.cache.to_dict(),
            "cache_perplexity": self.cache_ppl,
            "dynamic": None if self.dynamic is None else self.dynamic.to_dict(),
            "dynamic_perplexity": self.dynamic_ppl,
            "both_cache": None if self.both_cache is None else self.both_cache.to_dict(),
            "both_dynamic": None if self.both_dynamic is None else self.both_dynamic.to_dict(),
            "both_perplexity": self.both_ppl,
        }


def _read(params, cfg, ids, adaptation: Adaptation) -> tuple:
    """One run of the Reader over ids: every position's -log p_model (n,) float64 NumPy, its top
    hidden state (n, H) and its target (n,)."""
    chunks = list(Reader(params, cfg, adaptation).chunks(ids))
    xp = backend.xp
    nll = np.concatenate([backend.to_numpy(c.model_nll) for c in chunks])
    tops = xp.concatenate([c.top for c in chunks])  # (n, H), a copy of each chunk's
    return nll, tops, xp.concatenate([c.targets for c in chunks])


def _search_cache(nll, tops, targets, dtype, tick) -> tuple:
    """(best loss, its CacheSettings) over the cache grid, off (lambda 0) included, for one
    run's scores."""
    best = (math.inf, None)
    for size in CACHE_SIZES:
        cache = NeuralCache(CacheSettings(size=size), tops.shape[1], dtype)
        logp = []
        for lo in range(0, len(nll), 128):
            hi = lo + 128
            logp.append(backend.to_numpy(cache.target_log_probs(tops[lo:hi], targets[lo:hi],
                                                                CACHE_THETAS)))  # fmt: skip
        logp = np.concatenate(logp, axis=1)  # (thetas, n)
        for k, theta in enumerate(CACHE_THETAS):
            for lam in CACHE_LAMBDAS:
                loss = float(mix(nll, logp[k], lam).mean())
                if loss < best[0]:
                    best = (loss, CacheSettings(size, theta, lam))
        tick()
    return best


def tune(params, cfg, ids, stats: dict | None, on_progress: Callable | None = None) -> TuneResult:
    """Search the grid on ids (a held-out text, at most TUNE_TOKENS of it); without gradient
    statistics only the cache. on_progress(done, total, what) after each step of the search."""
    ids = np.asarray(ids)[: TUNE_TOKENS + 1]
    dtype = params["embed"].dtype
    grid = [DYNAMIC_OFF]
    if stats is not None:
        grid += [DynamicSettings(lr=lr) for lr in DYNAMIC_LRS]
    total = len(grid) * (1 + len(CACHE_SIZES))
    done = [0]

    def tick(what=""):
        done[0] += 1
        if on_progress is not None:
            on_progress(done[0], total, what)

    runs = []  # (dynamic settings, loss without the cache, (loss, cache settings) with it)
    for settings in grid:
        adaptation = Adaptation(None, None if settings is DYNAMIC_OFF else settings, stats)
        run = _read(params, cfg, ids, adaptation)
        tick("static" if settings is DYNAMIC_OFF else "dynamic")
        best_cache = _search_cache(*run, dtype, lambda: tick("cache"))
        runs.append((settings, float(run[0].mean()), best_cache))
    static_loss, (cache_loss, cache) = runs[0][1], runs[0][2]
    result = TuneResult(len(ids) - 1, perplexity(static_loss), cache, perplexity(cache_loss),
                        None, None, None, None)  # fmt: skip
    if stats is None:
        return result
    dynamic, dynamic_loss = min(((s, loss) for s, loss, _ in runs), key=lambda r: r[1])
    both_dynamic, _, (both_loss, both_cache) = min(runs, key=lambda r: r[2][0])
    return TuneResult(result.tokens, result.static, cache, result.cache_ppl, dynamic,
                      perplexity(dynamic_loss), both_cache, perplexity(both_loss),
                      both_dynamic)  # fmt: skip
