"""Scoring a token stream: cross-entropy, bits per token and perplexity; and scoring many short
sequences (lines) independently, each from a zero state.

Evaluation runs the model forward over N parallel streams (one by default, the exact definition:
every token is predicted from all the tokens before it), T steps at a time with the state carried.
Sequence scoring sorts the sequences by length and runs batches of N similar ones side by side,
one step at a time, so many short lines cost one forward per batch, not one per line.
"""

import math
from dataclasses import dataclass

import numpy as np

from ..core import backend
from ..core.layers import Workspace
from ..core.model import init_state, sequence_nll, step
from ..text.batching import iter_batches, make_streams


def perplexity(loss: float) -> float:
    """exp(cross-entropy in nats), capped: a diverged model reports a huge number, not an error."""
    return math.exp(min(loss, 700.0))


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
        return perplexity(self.cross_entropy)


def evaluate(
    params, cfg, ids: np.ndarray, n_streams: int = 1, seq_len: int = 128, on_progress=None
) -> EvalResult:
    """Score ids (n_tokens,) under the model; each stream's first token is context only.
    on_progress(done, total), if given, hears the tokens scored so far after each batch."""
    xp = backend.xp
    dtype = params["embed"].dtype
    streams = make_streams(ids, n_streams)
    h = init_state(cfg, n_streams, dtype)
    workspace = Workspace()  # the (positions x vocabulary) logits, allocated once
    nll = 0.0
    total, done = (len(streams) - 1) * n_streams, 0
    for inputs, targets in iter_batches(streams, seq_len):
        x, y = xp.asarray(inputs), xp.asarray(targets)
        batch_nll, h = sequence_nll(params, cfg, x, y, h, workspace)
        nll += batch_nll
        done += targets.size
        if on_progress is not None:
            on_progress(done, total)
    return EvalResult(tokens=total, nll=nll)


def unigram_eval(train_ids: np.ndarray, ids: np.ndarray, vocab_size: int) -> EvalResult:
    """A baseline: each token scored by its add-one-smoothed frequency in the training ids.
    Scores ids[1:], the same tokens a one-stream `evaluate` predicts."""
    counts = np.bincount(train_ids, minlength=vocab_size).astype(np.float64) + 1.0
    logp = np.log(counts / counts.sum())
    targets = ids[1:]
    return EvalResult(tokens=len(targets), nll=float(-logp[targets].sum()))


# Sequences scored side by side: enough to keep the matrix products busy, few enough that the
# (N, V) logits of one step stay around 8 MB in float32.
SCORE_LOGITS = 2**21


def score_sequences(params, cfg, sequences, batch: int | None = None) -> np.ndarray:
    """Summed negative log-likelihood (nats) of each sequence, each run from the zero state.

    sequences: a list of (inputs, targets) pairs of int id arrays (T_i,), targets[t] the token
    predicted after inputs[t]. Returns (len(sequences),) float64; an empty sequence scores 0.
    Sequences are sorted by length and scored `batch` at a time, padded to the longest of the
    batch; padded positions are computed but not counted.
    """
    xp = backend.xp
    dtype = params["embed"].dtype
    lengths = np.array([len(inputs) for inputs, _ in sequences], dtype=np.int64)
    nll = np.zeros(len(sequences))
    order = np.argsort(lengths, kind="stable")
    order = order[lengths[order] > 0]
    batch = batch or max(1, min(256, SCORE_LOGITS // cfg.vocab_size))
    for first in range(0, len(order), batch):
        idx = order[first : first + batch]
        N, T = len(idx), int(lengths[idx].max())
        inputs = np.zeros((T, N), dtype=np.int32)
        targets = np.zeros((T, N), dtype=np.int32)
        counted = np.zeros((T, N), dtype=bool)
        for col, i in enumerate(idx):
            seq_inputs, seq_targets = sequences[i]
            inputs[: lengths[i], col] = seq_inputs
            targets[: lengths[i], col] = seq_targets
            counted[: lengths[i], col] = True
        h = init_state(cfg, N, dtype)
        total = xp.zeros(N, dtype=xp.float64)
        rows = xp.arange(N)
        for t in range(T):
            logits, h = step(params, cfg, xp.asarray(inputs[t]), h)  # (N, V)
            top = logits.max(axis=1, keepdims=True)
            lse = top[:, 0] + xp.log(xp.exp(logits - top).sum(axis=1, dtype=xp.float64))
            token_nll = lse - logits[rows, xp.asarray(targets[t])]
            total += xp.where(xp.asarray(counted[t]), token_nll, 0.0)
        nll[idx] = backend.to_numpy(total)
    return nll
