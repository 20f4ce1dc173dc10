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

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..core import backend
from ..core.layers import RowSparse, Workspace
from ..core.model import init_state, join_output, loss_and_grads, step, token_scores
from ..errors import ConfigError
from .sampling import SamplerSettings, sample_token

# Gradient statistics: streams side by side and tokens read (at most) from the training text.
STATS_BATCH = 16
STATS_TOKENS = 100_000
EVAL_CHUNK = 128  # positions per forward pass without dynamic evaluation (as evaluate's seq_len)


def _positive_finite(name: str, value, low=0.0, low_open=False, high=None, high_open=False):
    bad = not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value)
    if not bad:
        bad = value < low or (low_open and value == low)
        if high is not None:
            bad = bad or value > high or (high_open and value == high)
    if bad:
        lo = "(" if low_open else "["
        hi = "" if high is None else f", {high}{')' if high_open else ']'}"
        span = f"in {lo}{low:g}{hi}" if high is not None else f"at least {low:g}"
        if low_open and high is None:
            span = f"above {low:g}"
        raise ConfigError(f"{name} must be a finite number {span}, got {value}")


@dataclass(frozen=True)
class CacheSettings:
    size: int = 2000  # W, positions remembered
    theta: float = 1.0  # sharpness of the match between hidden states
    lam: float = 0.1  # weight of the cache in the mixture

    def __post_init__(self):
        if not isinstance(self.size, int) or isinstance(self.size, bool) or self.size < 1:
            raise ConfigError(f"--cache-size must be a whole number of at least 1, got {self.size}")
        _positive_finite("--cache-theta", self.theta)
        _positive_finite("--cache-lambda", self.lam, high=1.0, high_open=True)

    def to_dict(self) -> dict:
        return {"size": self.size, "theta": self.theta, "lambda": self.lam}

    @classmethod
    def from_dict(cls, data: dict) -> "CacheSettings":
        return cls(int(data["size"]), float(data["theta"]), float(data["lambda"]))


@dataclass(frozen=True)
class DynamicSettings:
    lr: float = 0.0001  # step size, in units of each weight's gradient RMS on training data
    decay: float = 0.0003  # pull back toward the trained weights per segment
    length: int = 50  # n, tokens per segment (one step after each)

    def __post_init__(self):
        _positive_finite("--dynamic-lr", self.lr)
        _positive_finite("--dynamic-decay", self.decay, high=1.0)
        if not isinstance(self.length, int) or isinstance(self.length, bool) or self.length < 1:
            raise ConfigError(
                f"--dynamic-len must be a whole number of at least 1, got {self.length}"
            )

    def to_dict(self) -> dict:
        return {"lr": self.lr, "decay": self.decay, "length": self.length}

    @classmethod
    def from_dict(cls, data: dict) -> "DynamicSettings":
        return cls(float(data["lr"]), float(data["decay"]), int(data["length"]))


# --- gradient statistics ------------------------------------------------------------------------


def gradient_stats(
    params, cfg, ids, length: int = DynamicSettings.length, batch: int = STATS_BATCH
) -> dict:
    """Each weight's mean squared gradient of the mean loss of segments of `length` tokens,
    `batch` streams side by side, over at most STATS_TOKENS tokens of ids (training text), no
    dropout: name -> float32 array shaped like the parameter."""
    from ..text.batching import iter_batches, make_streams

    xp = backend.xp
    ids = np.asarray(ids)[: STATS_TOKENS + 1]
    batch = max(1, min(batch, (len(ids) - 1) // max(length, 1)))
    if len(ids) < 2:
        raise ConfigError("gradient statistics need a text of at least two tokens")
    streams = make_streams(ids, batch)
    h = init_state(cfg, batch, params["embed"].dtype)
    sums = {k: xp.zeros(v.shape, dtype=xp.float64) for k, v in params.items()}
    steps = 0
    workspace = Workspace()
    for inputs, targets in iter_batches(streams, length):
        result = loss_and_grads(params, cfg, xp.asarray(inputs), xp.asarray(targets), h, None,
                                False, workspace)  # fmt: skip
        h = result.state
        for k, g in result.grads.items():
            sums[k] += xp.square(g, dtype=xp.float64)
        steps += 1
    return {k: backend.to_numpy(s / max(steps, 1)).astype(np.float32) for k, s in sums.items()}


# --- the neural cache ---------------------------------------------------------------------------


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


# --- dynamic evaluation ---------------------------------------------------------------------------


class DynamicWeights:
    """A copy of the trained weights that takes RMS-normalised steps and decays back.

    The step reads and writes every weight once per segment, so it runs chunk by chunk over the
    cores (backend.run_chunked, as optim.Adam): each chunk's arithmetic happens in cache, with the
    same operations in the same order as on whole arrays. The embedding (untied weights) takes
    its gradient as a layers.RowSparse of the segment's tokens; its other rows only decay, and
    the decay is a geometric relaxation (after k steps untouched, theta - theta_0 has shrunk by
    (1 - pull)^k), so it is applied to a row when the row is next read: before a segment's
    forward pass for the rows it uses, and for all rows when `params` is read from outside."""

    def __init__(self, params, cfg, stats: dict, settings: DynamicSettings):
        xp = backend.xp
        self.cfg = cfg
        missing = set(params) - set(stats)
        if missing:
            raise ConfigError(f"the gradient statistics lack {', '.join(sorted(missing))}")
        self.trained = params
        self.settings = settings
        rms = {k: xp.sqrt(xp.asarray(stats[k], dtype=v.dtype)) for k, v in params.items()}
        total = sum(float(r.sum(dtype=xp.float64)) for r in rms.values())
        mean = total / max(sum(r.size for r in rms.values()), 1)
        lr, decay = settings.lr, settings.decay
        self.step_size, self.pull = {}, {}
        for k, r in rms.items():
            # The normaliser has a floor, the weight matrix's own RMS gradient: a weight whose
            # gradient was tiny on the training sample (a rare word's row or column) would
            # otherwise take a huge step on its first gradient here.
            floor = math.sqrt(float(xp.mean(stats[k], dtype=xp.float64))) or 1.0
            self.step_size[k] = lr / (r + r.dtype.type(floor))
            if decay > 0 and mean > 0:
                self.pull[k] = xp.minimum(r * r.dtype.type(decay / mean), r.dtype.type(1.0))
            else:
                self.pull[k] = xp.zeros_like(r)
        self.sparse = not cfg.tie_weights  # the embedding's gradient is row-sparse
        # rows not read wait for their decay (without decay they simply stay as they are)
        self.lazy = self.sparse and bool(xp.any(self.pull["embed"] > 0))
        if self.lazy:  # 1 - pull, each row's factor per step of decay
            self.keep = xp.subtract(self.pull["embed"].dtype.type(1.0), self.pull["embed"])
        self._scratch = {}  # (dtype, slot) -> a reusable buffer
        self.workers = None  # threads for the chunks (None: one per core)
        self.workspace = Workspace()
        self.params = {k: v.copy() for k, v in params.items()}

    @property
    def params(self) -> dict:
        """The adapted weights (every embedding row brought up to date)."""
        if self.lazy:
            self._catch_up(backend.xp.arange(len(self._params["embed"])))
        return self._params

    @params.setter
    def params(self, value: dict) -> None:
        self._params = join_output(value)
        self.steps = 0  # steps taken
        # the step count at which each embedding row was last brought up to date
        self._since = backend.xp.zeros(len(self._params["embed"]), dtype=backend.xp.int64)

    def read(self, inputs, targets, state):
        """Score a segment (T, 1) with the current weights, then step on it: the segment's
        model.LossAndGrads (token_nll and top from before the step)."""
        if self.lazy:
            self._catch_up(backend.xp.unique(inputs))
        result = loss_and_grads(
            self._params, self.cfg, inputs, targets, state, None, self.sparse, self.workspace
        )
        self.update(result.grads)
        return result

    def update(self, grads: dict):
        """theta += pull (theta_0 - theta) - step_size g, in place (the gradients are scratch).
        With lr 0 the weights stay exactly the trained ones. A RowSparse gradient's rows must be
        up to date (read() sees to it); the other rows' decay waits until they are read."""
        xp = backend.xp
        for k, theta in self._params.items():
            g = grads[k]
            if not isinstance(g, RowSparse):
                self._update_dense(k, theta, g)
                continue
            rows = g.rows
            R, E = g.values.shape
            t_rows = xp.take(theta, rows, axis=0)
            diff = self._buffer(theta.dtype, "rows", R * E)[: R * E].reshape(R, E)
            self._step(t_rows, xp.take(self.trained[k], rows, axis=0),
                       self.pull[k][rows], self.step_size[k][rows], g.values, diff)  # fmt: skip
            theta[rows] = t_rows
            self._since[rows] = self.steps + 1
        self.steps += 1

    @staticmethod
    def _step(theta, trained, pull, step_size, g, diff) -> None:
        """The update in place on arrays of one shape (a chunk, or gathered rows), diff scratch:
        the dense pass and the rows both come here, so every weight gets the same operations."""
        xp = backend.xp
        xp.subtract(trained, theta, out=diff)
        diff *= pull
        theta += diff
        g *= step_size
        theta -= g

    def _update_dense(self, k, theta, g) -> None:
        xp = backend.xp
        flat = [a.reshape(-1) for a in (theta, self.trained[k], self.pull[k], self.step_size[k])]
        flat_g = g.reshape(-1)
        size = flat[0].size
        chunk = backend.CHUNK if xp is np else size  # one chunk on a GPU
        if not theta.flags.c_contiguous:  # reshape would copy, and the update would be lost
            raise ValueError("dynamic evaluation updates the weights in place: need contiguous")

        def work(i, slot):
            lo = i * chunk
            tc, t0, pc, sc = (a[lo : lo + chunk] for a in flat)
            diff = self._buffer(tc.dtype, slot, min(chunk, size))[: tc.size]
            self._step(tc, t0, pc, sc, flat_g[lo : lo + chunk], diff)

        backend.run_chunked(work, -(-size // chunk), self.workers)

    def _catch_up(self, rows) -> None:
        """Apply the decay the embedding rows `rows` have been spared since they were last up to
        date: theta = theta_0 + (theta - theta_0) (1 - pull)^k after k steps untouched."""
        xp = backend.xp
        k = self.steps - self._since[rows]
        stale = k > 0
        if not bool(stale.any()):
            return
        rows, k = rows[stale], k[stale]
        theta, trained = self._params["embed"], self.trained["embed"]
        t_rows, t0 = xp.take(theta, rows, axis=0), xp.take(trained, rows, axis=0)
        factor = self.keep[rows] ** k[:, None].astype(self.keep.dtype)
        t_rows -= t0
        t_rows *= factor
        t_rows += t0
        theta[rows] = t_rows
        self._since[rows] = self.steps

    def _buffer(self, dtype, slot, n):
        buf = self._scratch.get((dtype, slot))
        if buf is None or buf.size < n:
            buf = self._scratch[(dtype, slot)] = backend.xp.empty(n, dtype)
        return buf

    def distance(self) -> float:
        """Root-mean-square distance of the weights from the trained ones."""
        xp = backend.xp
        params = self.params
        sq = sum(float(xp.square(params[k] - v).sum()) for k, v in self.trained.items())
        return math.sqrt(sq / sum(v.size for v in self.trained.values()))


# --- scoring a stream ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Adaptation:
    """What to adapt with: a cache, dynamic evaluation (with its statistics), or both."""

    cache: CacheSettings | None = None
    dynamic: DynamicSettings | None = None
    stats: dict | None = None  # name -> mean squared gradient, needed with dynamic

    def __post_init__(self):
        if self.dynamic is not None and self.stats is None:
            raise ConfigError(
                "--dynamic needs gradient statistics, and this model file has none (it predates "
                "them); give --dynamic-stats TRAINING_TEXT to compute them"
            )


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
