"""Adapting to the text being read: a neural cache and dynamic evaluation, for scoring a stream of
tokens and for generating. Neither changes the trained model: both work on what has been read.

Neural cache (Grave, Joulin and Usunier, 2017), over the last W positions i before t whose next
word y_i is already known:
    p(w) = (1 - lam) p_model(w) + lam p_cache(w)
    p_cache(w) = sum_{i: y_i = w} exp(theta h_t.h_i) / sum_i exp(theta h_t.h_i)
h is the top layer's output. Both parts sum to one, so the mixture does; scoring needs p_model only
at the target, so the class softmax works unchanged. The first token has an empty cache and is
scored by the model alone.

Dynamic evaluation (Krause et al., 2018, "RMS-normalised with a global prior"): the text is read
in segments of n tokens; each is scored first, then the weights take one step on that segment's
mean loss, with the training pass itself (model.loss_and_grads):
    theta <- theta - lr g / (sqrt(MS) + eps) + decay r (theta_0 - theta)
    r = min(sqrt(MS) / mean sqrt(MS), 1 / decay)
MS is each weight's mean squared gradient on training data (gradient_stats, stored in the model
file), eps the RMS gradient of the weight's whole matrix (a floor for weights rarely moved in
training), theta_0 the trained weights: weights that move more in training are pulled back faster.
The adapted weights are a copy; the trained ones are never written.

Letters: T positions of a chunk, P positions held in the cache, H hidden, V vocabulary, W window.
"""

from collections.abc import Callable, Iterator
from typing import NamedTuple

import numpy as np

from ..core import backend
from ..core.layers import Workspace
from ..core.model import init_state, step, token_scores
from .cache import NeuralCache, mix
from .dynamic import DynamicWeights
from .sampling import SamplerSettings, sample_token
from .settings import Adaptation, CacheSettings, DynamicSettings

__all__ = ["Adaptation", "CacheSettings", "DynamicSettings", "DynamicWeights", "NeuralCache", "mix"]

EVAL_CHUNK = 128  # positions per forward pass without dynamic evaluation (as evaluate's seq_len)


class Chunk(NamedTuple):
    start: int  # the chunk predicts ids[start + 1 : end + 1]
    end: int
    token_nll: object  # (end - start,) float64 -log p_model of each target (adapted, if dynamic)
    top: object  # (end - start, H) the last layer's outputs (the cache's keys)
    targets: object  # (end - start,) the targets
    state: object  # (L, K, 1, H) the state after the chunk


def read_stream(params, cfg, ids, dynamic: "DynamicWeights | None" = None) -> Iterator[Chunk]:
    """The model's scores of ids[1:] (one stream, the state carried), chunk by chunk: EVAL_CHUNK
    positions at a time, or with dynamic weights a segment at a time, each scored before the
    weights step on it."""
    xp = backend.xp
    ids = np.asarray(ids)
    n = len(ids) - 1
    chunk = dynamic.settings.length if dynamic is not None else EVAL_CHUNK
    h = init_state(cfg, 1, params["embed"].dtype)
    workspace = Workspace()
    for start in range(0, max(n, 0), chunk):
        end = min(start + chunk, n)
        x = xp.asarray(ids[start:end, None])
        y = xp.asarray(ids[start + 1 : end + 1, None])
        if dynamic is not None:
            scores = dynamic.read(x, y, h)
        else:
            scores = token_scores(params, cfg, x, y, h, workspace)
        h = scores.state
        yield Chunk(start, end, scores.token_nll[:, 0], scores.top, y[:, 0], h)


def adapted_token_nll(
    params, cfg, ids, adaptation: Adaptation, on_progress: Callable | None = None
) -> np.ndarray:
    """-log p of ids[1:], each token predicted from all before it (one stream) by the model
    adapted to the tokens before it only: (n-1,) float64. Nothing is adapted with an empty
    Adaptation (the static per-token scores). on_progress(done, total) after each chunk."""
    n = max(len(ids) - 1, 0)
    out = np.empty(n)
    cache = None
    if adaptation.cache is not None:
        cache = NeuralCache(adaptation.cache, cfg.hidden, params["embed"].dtype)
    weights = None
    if adaptation.dynamic is not None:
        weights = DynamicWeights(params, cfg, adaptation.stats, adaptation.dynamic)
    for c in read_stream(params, cfg, ids, weights):
        nll = c.token_nll
        if cache is not None:
            nll = mix(nll, cache.target_log_probs(c.top, c.targets)[0], adaptation.cache.lam)
        out[c.start : c.end] = backend.to_numpy(nll)
        if on_progress is not None:
            on_progress(c.end, n)
    return out


# --- generating ---------------------------------------------------------------------------------


def generate_adapted(
    params, cfg, prompt, length, rng, adaptation: Adaptation,
    settings: SamplerSettings | None = None,
) -> Iterator[int]:  # fmt: skip
    """Yield `length` new ids continuing the prompt ids, with the model adapted to the prompt
    (dynamic evaluation, before generating) and a cache of the prompt and what is generated."""
    xp = backend.xp
    settings = settings or SamplerSettings()
    dtype = params["embed"].dtype
    cache = None if adaptation.cache is None else NeuralCache(adaptation.cache, cfg.hidden, dtype)
    h = init_state(cfg, 1, dtype)
    prompt = list(prompt)
    weights = None
    if adaptation.dynamic is not None and len(prompt) > 1:
        weights = DynamicWeights(params, cfg, adaptation.stats, adaptation.dynamic)
    for c in read_stream(params, cfg, prompt, weights):  # the state after the prompt too
        h = c.state
        if cache is not None:
            cache.add_chunk(c.top, c.targets)
    current_params = params if weights is None else weights.params
    current = prompt[-1]
    history = list(prompt)
    for _ in range(length):
        logits, h = step(current_params, cfg, xp.asarray([current]), h)
        logits = logits[0]
        top = h[-1, 0, 0]  # (H,) the last layer's output at this position
        z = logits.astype(xp.float64)
        z -= z.max()
        logp = z - xp.log(xp.exp(z).sum())  # log-probabilities (the repeat penalty acts on them)
        p_cache = None if cache is None else cache.probs(top, len(logp))
        if p_cache is not None:
            lam = adaptation.cache.lam
            with np.errstate(divide="ignore"):
                logp = xp.log((1 - lam) * xp.exp(logp) + lam * p_cache)
        current = sample_token(backend.to_numpy(logp), settings, history, rng)
        history.append(current)
        if cache is not None:
            cache.add(top, current)
        yield current
