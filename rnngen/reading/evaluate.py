"""Scoring: cross-entropy, bits per token and perplexity; the multi-stream evaluation training
validates with; and the batched kernel that scores many short sequences (lines) independently,
each from a zero state (the reader's line scoring, reader.py).

`evaluate` runs the model forward over N parallel streams, T steps at a time with the state
carried (training's validation; `rnngen eval` reads one stream through the reader). Sequence
scoring sorts the sequences by length and runs batches of N similar ones side by side, several
steps per forward pass, so many short lines cost a few forwards per batch, not one per line.
"""

import math
from dataclasses import dataclass

import numpy as np

from ..core import backend
from ..core.layers import Workspace
from ..core.model import init_state, sequence_nll, token_scores
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
# (N, V) logits of one step stay around 8 MB in float32; a batch's steps go through the model
# SCORE_STEPS_LOGITS / (N V) at a time.
SCORE_LOGITS = 2**21
SCORE_STEPS_LOGITS = 2**23


def sequence_scores(params, cfg, sequences, batch: int | None = None, keep_top=False) -> list:
    """-log p of each target of each sequence, each run from the zero state: a list of
    ((T_i,) float64 NumPy array, (T_i, H) last-layer outputs or None) per sequence, in order.

    sequences: (inputs, targets) pairs of int id arrays (T_i,), targets[t] the token predicted
    after inputs[t]. Sequences are sorted by length and scored `batch` at a time, padded to the
    longest of the batch, several steps per forward pass (the state carried); padded positions
    come after a sequence's own, so they change none of its scores, and are dropped.
    """
    xp = backend.xp
    dtype = params["embed"].dtype
    lengths = np.array([len(inputs) for inputs, _ in sequences], dtype=np.int64)
    out = [(np.zeros(0), None)] * len(sequences)
    order = np.argsort(lengths, kind="stable")
    order = order[lengths[order] > 0]
    batch = batch or max(1, min(256, SCORE_LOGITS // cfg.vocab_size))
    workspace = Workspace()
    for first in range(0, len(order), batch):
        idx = order[first : first + batch]
        N, T = len(idx), int(lengths[idx].max())
        inputs = np.zeros((T, N), dtype=np.int32)
        targets = np.zeros((T, N), dtype=np.int32)
        for col, i in enumerate(idx):
            inputs[: lengths[i], col], targets[: lengths[i], col] = sequences[i]
        steps = max(1, SCORE_STEPS_LOGITS // (N * cfg.vocab_size))
        h = init_state(cfg, N, dtype)
        nll, tops = [], []
        for t in range(0, T, steps):
            x, y = xp.asarray(inputs[t : t + steps]), xp.asarray(targets[t : t + steps])
            scores = token_scores(params, cfg, x, y, h, workspace)
            h = scores.state
            nll.append(backend.to_numpy(scores.token_nll))  # (steps, N)
            if keep_top:
                tops.append(scores.top.reshape(len(x), N, -1))
        nll = np.concatenate(nll)  # (T, N)
        top = xp.concatenate(tops) if keep_top else None  # (T, N, H)
        for col, i in enumerate(idx):
            n = int(lengths[i])
            out[i] = (nll[:n, col], None if top is None else top[:n, col])
    return out


def score_sequences(params, cfg, sequences, batch: int | None = None) -> np.ndarray:
    """Summed -log p (nats) of each sequence, from sequence_scores: (len(sequences),) float64;
    an empty sequence scores 0."""
    scored = sequence_scores(params, cfg, sequences, batch)
    return np.array([float(nll.sum()) for nll, _ in scored])
