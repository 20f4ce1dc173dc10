"""Layers as pairs of pure functions: `*_forward(...) -> (out, cache)`, `*_backward(d, cache)`.

Letters in shapes: T time steps, N batch (parallel streams), E embedding, H hidden, V vocabulary.
Sequences are time-major, (T, N, ...), so each step of the recurrence reads and writes a
contiguous (N, H) block. Every layer takes its dtype from its inputs: float32 for training,
float64 for the gradient checks. Only the recurrence loops over time in Python; the input
projection for all steps and every weight gradient are single matrix products.
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


# --- the tanh RNN cell: h_t = tanh(x_t Wx + h_{t-1} Wh + b) ------------------------------------


class RNNStepCache(NamedTuple):
    x: object  # (N, E)
    h_prev: object  # (N, H)
    h: object  # (N, H)
    Wx: object
    Wh: object


def rnn_step_forward(x, h_prev, Wx, Wh, b):
    """One step. x (N, E), h_prev (N, H), Wx (E, H), Wh (H, H), b (H,) -> h (N, H), cache."""
    xp = backend.xp
    h = xp.tanh(x @ Wx + h_prev @ Wh + b)
    return h, RNNStepCache(x, h_prev, h, Wx, Wh)


def rnn_step_backward(dh, cache):
    """dh (N, H) -> dx (N, E), dh_prev (N, H), dWx (E, H), dWh (H, H), db (H,)."""
    da = dh * (1 - cache.h**2)  # tanh' from the output
    return (da @ cache.Wx.T, da @ cache.Wh.T, cache.x.T @ da, cache.h_prev.T @ da, da.sum(axis=0))


class RNNCache(NamedTuple):
    x: object  # (T, N, E)
    h0: object  # (N, H)
    h: object  # (T, N, H), every step's output
    Wx: object
    Wh: object


def rnn_forward(x, h0, Wx, Wh, b):
    """A whole sequence. x (T, N, E), h0 (N, H) -> h (T, N, H), cache.

    The input projection of all T steps is one (T*N, E) @ (E, H) product; the loop only adds the
    recurrent term, writing into preallocated buffers.
    """
    xp = backend.xp
    T, N, E = x.shape
    H = Wh.shape[0]
    h = (x.reshape(T * N, E) @ Wx).reshape(T, N, H)  # starts as the input projection
    h += b
    h_prev = h0
    recurrent = xp.empty((N, H), dtype=h.dtype)
    for t in range(T):
        xp.matmul(h_prev, Wh, out=recurrent)
        h[t] += recurrent
        xp.tanh(h[t], out=h[t])
        h_prev = h[t]
    return h, RNNCache(x, h0, h, Wx, Wh)


def rnn_backward(dh, cache):
    """dh (T, N, H), the loss gradient w.r.t. every step's output ->
    dx (T, N, E), dh0 (N, H), dWx (E, H), dWh (H, H), db (H,)."""
    xp = backend.xp
    x, h0, h, Wx, Wh = cache
    T, N, E = x.shape
    H = Wh.shape[0]
    da = xp.empty_like(h)  # (T, N, H) gradient w.r.t. the pre-activation of each step
    carry = xp.zeros((N, H), dtype=h.dtype)  # gradient flowing back from step t+1 into h_t
    for t in range(T - 1, -1, -1):
        xp.add(dh[t], carry, out=da[t])
        da[t] *= 1 - h[t] ** 2
        xp.matmul(da[t], Wh.T, out=carry)
    h_prev = xp.concatenate([h0[None], h[:-1]])  # (T, N, H), the state each step started from
    da_flat = da.reshape(T * N, H)
    dWx = x.reshape(T * N, E).T @ da_flat
    dWh = h_prev.reshape(T * N, H).T @ da_flat
    db = da_flat.sum(axis=0)
    dx = (da_flat @ Wx.T).reshape(T, N, E)
    return dx, carry, dWx, dWh, db


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
