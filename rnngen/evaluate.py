"""Scoring a token stream: cross-entropy, bits per token and perplexity.

Evaluation runs the model forward over N parallel streams (one by default, the exact definition:
every token is predicted from all the tokens before it), T steps at a time with the state carried.
"""

import math
from dataclasses import dataclass

import numpy as np

from . import backend
from .batching import iter_batches, make_streams
from .model import init_state, sequence_nll


@dataclass(frozen=True)
class EvalResult:
    tokens: int  # tokens predicted
    nll: float  # summed negative log-likelihood, nats

    @property
    def cross_entropy(self) -> float:
        """Nats per token."""
        return self.nll / self.tokens

    @property
    def bits_per_token(self) -> float:
        return self.cross_entropy / math.log(2)

    @property
    def perplexity(self) -> float:
        return math.exp(min(self.cross_entropy, 700.0))


def evaluate(params, cfg, ids: np.ndarray, n_streams: int = 1, seq_len: int = 128) -> EvalResult:
    """Score ids (n_tokens,) under the model; each stream's first token is context only."""
    xp = backend.xp
    dtype = params["embed"].dtype
    streams = make_streams(ids, n_streams)
    h = init_state(cfg, n_streams, dtype)
    nll = 0.0
    for inputs, targets in iter_batches(streams, seq_len):
        batch_nll, h = sequence_nll(params, cfg, xp.asarray(inputs), xp.asarray(targets), h)
        nll += batch_nll
    return EvalResult(tokens=(len(streams) - 1) * n_streams, nll=nll)


def unigram_eval(train_ids: np.ndarray, ids: np.ndarray, vocab_size: int) -> EvalResult:
    """A baseline: each token scored by its add-one-smoothed frequency in the training ids.
    Scores ids[1:], the same tokens a one-stream `evaluate` predicts."""
    counts = np.bincount(train_ids, minlength=vocab_size).astype(np.float64) + 1.0
    logp = np.log(counts / counts.sum())
    targets = ids[1:]
    return EvalResult(tokens=len(targets), nll=float(-logp[targets].sum()))
