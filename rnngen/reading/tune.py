"""Choosing the neural cache and dynamic evaluation settings on a held-out text (`rnngen tune`).

A small fixed grid, searched by held-out perplexity:
    cache      size W in CACHE_SIZES x theta in CACHE_THETAS x lambda in CACHE_LAMBDAS
    dynamic    lr in DYNAMIC_LRS x decay in DYNAMIC_DECAYS, segments of DynamicSettings.length
The model is run once without adaptation and once per dynamic setting; each of those runs keeps
every position's score and hidden state, so the whole cache grid costs one product with the
cache per window size over them (the thetas share it, the lambdas are a mix of two numbers).
"Both" is the best dynamic setting with the cache grid searched again on its run.

Letters: n tokens scored, H hidden.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..core import backend
from .adapt import (
    CacheSettings,
    DynamicSettings,
    DynamicWeights,
    NeuralCache,
    mix,
    read_stream,
)
from .evaluate import perplexity

CACHE_SIZES = (500, 1000, 2000)
CACHE_THETAS = (0.3, 0.6, 1.0, 2.0)
CACHE_LAMBDAS = (0.05, 0.1, 0.15, 0.2)
DYNAMIC_LRS = (0.0001, 0.0003, 0.001)
DYNAMIC_DECAYS = (0.0001, 0.0003, 0.001)
TUNE_TOKENS = 200_000  # tokens of the held-out text used, at most


@dataclass(frozen=True)
class TuneResult:
    tokens: int  # tokens scored
    static: float  # perplexity without adaptation
    cache: CacheSettings
    cache_ppl: float
    dynamic: DynamicSettings | None  # None without gradient statistics
    dynamic_ppl: float | None
    both_cache: CacheSettings | None  # the cache searched again on top of the best dynamic run
    both_ppl: float | None

    def settings(self) -> dict:
        """What `tune --write` stores in the model file."""
        out = {"cache": self.cache.to_dict()}
        if self.dynamic is not None:
            out["dynamic"] = self.dynamic.to_dict()
            out["both"] = self.both_cache.to_dict()
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
            "both_perplexity": self.both_ppl,
        }


def _run(params, cfg, ids, weights=None):
    """Every position's -log p_model (n,) and top hidden state (n, H), and the targets (n,)."""
    nll, tops, targets = [], [], []
    for c in read_stream(params, cfg, ids, weights):
        nll.append(backend.to_numpy(c.token_nll))
        tops.append(c.top.copy())
        targets.append(c.targets)
    xp = backend.xp
    return np.concatenate(nll), xp.concatenate(tops), xp.concatenate(targets)


def _search_cache(nll, tops, targets, dtype, tick) -> tuple:
    """(best CacheSettings, its perplexity) over the grid, for one run's scores."""
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
    return best[1], perplexity(best[0])


def tune(params, cfg, ids, stats: dict | None, on_progress: Callable | None = None) -> TuneResult:
    """Search the grid on ids (a held-out text, at most TUNE_TOKENS of it); without gradient
    statistics only the cache. on_progress(done, total, what) after each step of the search."""
    ids = np.asarray(ids)[: TUNE_TOKENS + 1]
    dtype = params["embed"].dtype
    grid = [(lr, d) for lr in DYNAMIC_LRS for d in DYNAMIC_DECAYS] if stats is not None else []
    total = 1 + len(CACHE_SIZES) + len(grid) + (len(CACHE_SIZES) if grid else 0)
    done = [0]

    def tick(what=""):
        done[0] += 1
        if on_progress is not None:
            on_progress(done[0], total, what)

    nll, tops, targets = _run(params, cfg, ids)
    tick("static")
    static = perplexity(float(nll.mean()))
    cache, cache_ppl = _search_cache(nll, tops, targets, dtype, lambda: tick("cache"))
    dynamic = dynamic_ppl = both_cache = both_ppl = None
    best_run = None
    for lr, decay in grid:
        settings = DynamicSettings(lr=lr, decay=decay)
        run = _run(params, cfg, ids, DynamicWeights(params, cfg, stats, settings))
        ppl = perplexity(float(run[0].mean()))
        if dynamic_ppl is None or ppl < dynamic_ppl:
            dynamic, dynamic_ppl, best_run = settings, ppl, run
        tick("dynamic")
    if best_run is not None:
        both_cache, both_ppl = _search_cache(*best_run, dtype, lambda: tick("both"))
    return TuneResult(
        len(nll), static, cache, cache_ppl, dynamic, dynamic_ppl, both_cache, both_ppl
    )
