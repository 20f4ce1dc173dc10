"""The non-recurrent layers, as pairs of pure functions: `*_forward(...) -> (out, cache)` and
`*_backward(dout, cache)`. The recurrent cells are in `cells.py`.

Letters in shapes: T time steps, N batch (parallel streams), E embedding, H hidden, V vocabulary,
M = T*N rows when all time steps go through a layer at once. Every layer takes its dtype from its
inputs: float32 for training, float64 for the gradient checks.
"""

from typing import NamedTuple

from . import backend

# --- embedding: a one-hot row times a weight matrix, done as a row lookup --------------------


class EmbeddingCache(NamedTuple):
    ids: object  # (T, N) int
    vocab_size: int


def embedding_forward(ids, W):
    """ids (T, N) ints, W (V, E) -> out (T, N, E), cache."""
    return W[ids], EmbeddingCache(ids, W.shape[0])


def embedding_backward(dout, cache):
    """dout (T, N, E) -> dW (V, E): each row of dout added to the row of its token."""
    xp = backend.xp
    E = dout.shape[-1]
    dW = xp.zeros((cache.vocab_size, E), dtype=dout.dtype)
    xp.add.at(dW, cache.ids.reshape(-1), dout.reshape(-1, E))
    return dW


# --- dropout (inverted: scaled at training time, the identity at evaluation) ----------------


def dropout_forward(x, p: float, rng):
    """Zero each entry with probability p and scale the rest by 1/(1-p); rng None or p 0: identity.

    The mask is drawn with NumPy from the caller's generator (so a seed fixes it) and then moved to
    the array module of x."""
    if rng is None or p <= 0:
        return x, None
    keep = rng.random(x.shape) >= p
    mask = backend.xp.asarray(keep, dtype=x.dtype) / x.dtype.type(1 - p)
    return x * mask, mask


def dropout_backward(dout, mask):
    return dout if mask is None else dout * mask


# --- output layer and loss ---------------------------------------------------------------------


class AffineCache(NamedTuple):
    x: object  # (M, H)
    W: object  # (H, V)


def affine_forward(x, W, b):
    """x (M, H) (M = T*N, all time steps at once), W (H, V), b (V,) -> out (M, V), cache."""
    return x @ W + b, AffineCache(x, W)


def affine_backward(dout, cache):
    """dout (M, V) -> dx (M, H), dW (H, V), db (V,)."""
    return dout @ cache.W.T, cache.x.T @ dout, dout.sum(axis=0)


def log_softmax(logits):
    """Row-wise log-softmax of (M, V) logits, stable: the row max is subtracted first."""
    xp = backend.xp
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))


def softmax_cross_entropy(logits, targets):
    """Mean cross-entropy of (M, V) logits against (M,) target ids -> loss, dlogits (M, V)."""
    xp = backend.xp
    M = logits.shape[0]
    logp = log_softmax(logits)
    rows = xp.arange(M)
    loss = -logp[rows, targets].sum() / M
    dlogits = xp.exp(logp)  # softmax probabilities
    dlogits[rows, targets] -= 1
    dlogits /= M
    return float(loss), dlogits


def cross_entropy_sum(logits, targets):
    """Summed negative log-likelihood of (M,) targets under (M, V) logits (no gradient)."""
    xp = backend.xp
    logp = log_softmax(logits)
    return float(-logp[xp.arange(logits.shape[0]), targets].sum())
