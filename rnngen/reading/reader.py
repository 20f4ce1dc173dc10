"""The reader: one object that reads a token stream with a model and says how likely each token
was, or what comes next. It owns the weights (the trained ones, or a copy adapting as it reads:
dynamic evaluation, dynamic.py), the optional neural cache (cache.py) and the recurrent state.
`eval`, `score`, `sample` and `tune` all go through it, static or adapted.

The stream: the first token read is context only; prediction i is token i+1 after tokens 0..i.
Dynamic evaluation cuts the predictions into segments of n from the first (0..n-1, n..2n-1, ...);
each segment is scored with the weights of before it, and when its last target is known the
weights take their step on it (DynamicWeights.read runs the segment again from the state at its
start, so a segment read in pieces, or one token at a time while generating, steps exactly as one
read whole). The cache holds the positions whose next token is known. So reading a text, and
generating it token by token, give every token the same probability.

Letters: T positions of a chunk, H hidden, V vocabulary, L layers, K state vectors per layer.
"""

from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

import numpy as np

from ..core import backend
from ..core.class_softmax import ClassDistribution, word_classes
from ..core.layers import Workspace
from ..core.model import init_state, output_weights, sequence_top, token_scores
from ..core.numerics import logsumexp
from .cache import NeuralCache, mix
from .dynamic import DynamicWeights
from .evaluate import sequence_scores
from .sampling import SamplerSettings, sample_factored, sample_token
from .settings import Adaptation

EVAL_CHUNK = 128  # predictions per forward pass without dynamic evaluation (as evaluate's seq_len)


class Chunk(NamedTuple):
    start: int  # predictions start..end-1 of the stream
    end: int
    model_nll: object  # (T,) float64 -log p_model of each target (adapted weights, if dynamic)
    top: object  # (T, H) the last layer's outputs (the cache's keys)
    targets: object  # (T,) the targets
    nll: np.ndarray  # (T,) float64 -log p of each target, the cache mixed in: what eval sums


class TokenRecord(NamedTuple):
    """One generated token: its id and its log-probability under the model as adapted (weights
    and cache) at that point, before the sampler chain (penalty, truncation, temperature)."""

    id: int
    logprob: float


class Reader:
    """Reads tokens with a model (params in the computing layout: out.Wb joined) adapted as
    `adaptation` says (None: the trained model alone). See the module's docstring."""

    def __init__(self, params, cfg, adaptation: Adaptation | None = None, weights=None):
        """weights: a DynamicWeights of these params to read with instead of one made from the
        adaptation's settings (a variant under test or benchmark)."""
        self.adaptation = adaptation = adaptation or Adaptation()
        self.cfg, self.trained = cfg, params
        dtype = params["embed"].dtype
        self.weights = weights
        if weights is None and adaptation.dynamic is not None:
            self.weights = DynamicWeights(params, cfg, adaptation.stats, adaptation.dynamic)
        self.cache = None
        if adaptation.cache is not None:
            self.cache = NeuralCache(adaptation.cache, cfg.hidden, dtype)
        self.ids = []  # the tokens read
        self.state = init_state(cfg, 1, dtype)  # (L, K, 1, H) after the inputs ids[:-1]
        self._segment_state = self.state  # the state where the current dynamic segment began
        self._peek = None  # (top (1, H), state) of the last token read, forwarded ahead
        self.workspace = Workspace()

    @property
    def params(self) -> dict:
        """The weights as they are now (adapted so far, with dynamic evaluation)."""
        return self.trained if self.weights is None else self.weights.params

    @property
    def dropped_steps(self) -> int:
        """Dynamic evaluation's steps undone by its divergence guard (0 without one)."""
        return int(getattr(self.weights, "dropped", 0))

    @property
    def predicted(self) -> int:
        """Predictions made so far: the tokens read less the first."""
        return max(len(self.ids) - 1, 0)

    # --- reading a stream -----------------------------------------------------------------------

    def read(self, ids, on_progress: Callable | None = None) -> np.ndarray:
        """Read tokens; -log p of each one predicted (float64; the first token ever read is
        context, not predicted). on_progress(done, total) after each chunk."""
        out = [c.nll for c in self.chunks(ids, on_progress)]
        return np.concatenate(out) if out else np.zeros(0)

    def chunks(self, ids, on_progress=None, scores: bool = True) -> Iterator[Chunk]:
        """Read tokens a chunk at a time: EVAL_CHUNK predictions, or with dynamic evaluation up
        to the end of a segment. scores False (static, no cache): only the state moves on and
        no chunk is yielded (a start text to generate from)."""
        self._peek = None
        first = self.predicted
        self.ids.extend(int(i) for i in np.asarray(ids).reshape(-1))
        total = self.predicted
        size = EVAL_CHUNK if self.weights is None else self.weights.settings.length
        if not scores and self.weights is None and self.cache is None:
            size = max(total - first, 1)  # one forward pass, no output layer
        p = first
        while p < total:
            end = min((p // size + 1) * size, total)
            chunk = self._read_chunk(p, end, size, scores or self.cache is not None)
            p = end
            if on_progress is not None:
                on_progress(p - first, total - first)
            if chunk is not None:
                yield chunk

    def _read_chunk(self, p: int, end: int, size: int, scores: bool, cache: bool = True):
        """Predictions p..end-1 (within one segment); scores False: only the state, the weights
        and (cache True) the cache move on."""
        xp = backend.xp
        ids = self.ids
        if self.weights is not None and end % size == 0:  # a segment is complete: step on it
            s = end - size
            x = xp.asarray(np.asarray(ids[s:end], dtype=np.int32)[:, None])  # (n, 1)
            y = xp.asarray(np.asarray(ids[s + 1 : end + 1], dtype=np.int32)[:, None])
            result = self.weights.read(x, y, self._segment_state)
            self.state = self._segment_state = result.state
            model_nll, top = result.token_nll[p - s :, 0], result.top[p - s :]
            targets = y[p - s :, 0]
            if not scores and not (cache and self.cache is not None):
                return None
        else:  # static, or the start of a segment whose targets are not all known yet
            x = xp.asarray(np.asarray(ids[p:end], dtype=np.int32)[:, None])
            if not scores:
                self.state = sequence_top(self.params, self.cfg, x, self.state)[1]
                return None
            y = xp.asarray(np.asarray(ids[p + 1 : end + 1], dtype=np.int32)[:, None])
            if self.weights is not None:  # the divergence guard judges the last step here too
                result = self.weights.score(x, y, self.state)
            else:
                result = token_scores(self.params, self.cfg, x, y, self.state, self.workspace)
            self.state = result.state
            model_nll, top, targets = result.token_nll[:, 0], result.top, y[:, 0]
        nll = model_nll
        if cache and self.cache is not None:
            logp = self.cache.target_log_probs(top, targets)[0]
            nll = mix(model_nll, logp, self.cache.settings.lam)
        return Chunk(p, end, model_nll, top, targets, backend.to_numpy(nll))

    # --- what comes next --------------------------------------------------------------------------

    def _forward_last(self):
        """The last token read, forwarded: its top (1, H) and the state after it (kept until
        the next token is pushed, or dropped when more is read)."""
        if not self.ids:
            raise ValueError("the reader has read nothing: read a start token first")
        if self._peek is None:
            x = backend.xp.asarray([[self.ids[-1]]], dtype=np.int32)  # (1, 1)
            self._peek = sequence_top(self.params, self.cfg, x, self.state)
        return self._peek

    def _distribution(self):
        """The next token's distribution: a (V,) float64 NumPy vector of log-probabilities, or
        for the class softmax without a cache its factored form (a ClassDistribution), which the
        sampler reads a class at a time."""
        top = self._forward_last()[0]
        W, b = output_weights(self.params)
        if b is None:  # W is [W; b]
            W, b = W[:-1], W[-1]
        if self.cfg.softmax == "class":
            dist = ClassDistribution(top[0], self.params["cls.W"], self.params["cls.b"], W, b,
                                     self.cfg.class_bounds)  # fmt: skip
            if self.cache is None:
                return dist
            logp = dist.full()
        else:
            z = backend.to_numpy(top @ W + b)[0]  # (V,) logits, the model's dtype
            logp = z.astype(np.float64) - float(logsumexp(z))  # exps in that dtype: faster
        if self.cache is not None:
            p_cache = self.cache.probs(top[0], self.cfg.vocab_size)
            if p_cache is not None:
                lam = self.cache.settings.lam
                with np.errstate(divide="ignore"):  # a token neither part can give: -inf
                    logp = np.log((1 - lam) * np.exp(logp) + lam * backend.to_numpy(p_cache))
        return logp

    def next_log_probs(self) -> np.ndarray:
        """(V,) float64 log p of every token coming next, after what has been read."""
        dist = self._distribution()
        return dist.full() if isinstance(dist, ClassDistribution) else dist

    def push(self, token: int) -> None:
        """Read one more token (generation): the cache learns the last position's next token,
        and a segment it completes makes the dynamic weights step."""
        top, state = self._forward_last()
        self.ids.append(int(token))
        self.state, self._peek = state, None
        if self.cache is not None:
            self.cache.add(top[0], int(token))
        if self.weights is not None:
            n = self.weights.settings.length
            if self.predicted % n == 0:  # the segment's last target: step on the segment
                self._read_chunk(self.predicted - 1, self.predicted, n, False, cache=False)

    def sample(self, rng, settings: SamplerSettings | None = None, history=None) -> TokenRecord:
        """Draw the next token through the sampler chain and push it. history: the ids the
        repeat penalty looks back on (default: all read)."""
        settings = settings or SamplerSettings()
        history = self.ids if history is None else history
        dist = self._distribution()
        if isinstance(dist, ClassDistribution):
            token = sample_factored(dist, settings, history, rng)
            c = int(word_classes(dist.bounds)[token])
            logprob = float(dist.words(c)[token - dist.bounds[c]])
        else:
            token = sample_token(dist, settings, history, rng)
            logprob = float(dist[token])
        self.push(token)
        return TokenRecord(token, logprob)

    def generate(self, length: int, rng, settings=None) -> Iterator[TokenRecord]:
        """Yield `length` tokens drawn one after another, each pushed before the next."""
        for _ in range(length):
            yield self.sample(rng, settings)

    # --- lines ------------------------------------------------------------------------------------

    def lines(self, sequences: Iterable) -> list:
        """-log p of each target of each line (inputs, targets), each line from the zero state,
        with the weights as they are now; the stream read so far is left as it was. Lines run
        side by side in batches of similar length; with a cache, each line's positions join it
        after the line is scored, in the order given (so later lines see earlier ones)."""
        sequences = list(sequences)
        scored = sequence_scores(self.params, self.cfg, sequences, keep_top=self.cache is not None)
        out = []
        for (_, targets), (nll, top) in zip(sequences, scored, strict=True):
            if self.cache is not None and len(targets):
                xp = backend.xp
                logp = self.cache.target_log_probs(top, xp.asarray(targets))[0]
                nll = backend.to_numpy(mix(xp.asarray(nll), logp, self.cache.settings.lam))
            out.append(nll)
        return out
