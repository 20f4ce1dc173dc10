"""The non-recurrent layers, as pairs of pure functions: `*_forward(...) -> (out, cache)` and
`*_backward(dout, cache)`. The recurrent cells are in `cells.py`.

Letters in shapes: T time steps, N batch (parallel streams), E embedding, H hidden, V vocabulary,
M = T*N rows when all time steps go through a layer at once. Every layer takes its dtype from its
inputs: the training dtype (float32 by default, float64 on request), float64 in the gradient
checks.
"""

from typing import NamedTuple

import numpy

from . import backend

# --- embedding: a one-hot row times a weight matrix, done as a row lookup --------------------


class EmbeddingCache(NamedTuple):
    ids: object  # (T, N) int
    vocab_size: int


def embedding_forward(ids, W):
    """ids (T, N) ints, W (V, E) -> out (T, N, E), cache."""
    return W[ids], EmbeddingCache(ids, W.shape[0])


class RowSparse(NamedTuple):
    """A gradient that is zero outside some rows: the embedding's, whose rows are the tokens of
    one batch (a few hundred of tens of thousands). Optimisers update only these rows."""

    rows: object  # (R,) distinct row ids, increasing
    values: object  # (R, E) the gradient's rows
    shape: tuple  # (V, E) of the dense gradient

    def dense(self):
        out = backend.xp.zeros(self.shape, dtype=self.values.dtype)
        out[self.rows] = self.values
        return out


def embedding_backward(dout, cache, sparse: bool = False):
    """dout (T, N, E) -> dW (V, E): each row of dout added to the row of its token; with sparse,
    a RowSparse holding only the rows of the tokens that occur.

    Rows are summed per token by sorting the ids and one segmented sum (add.reduceat), which is
    much faster than the unbuffered scatter of add.at for large batches."""
    xp = backend.xp
    E = dout.shape[-1]
    ids = cache.ids.reshape(-1)
    rows = dout.reshape(-1, E)
    shape = (cache.vocab_size, E)
    if xp is not numpy:  # a GPU library: its atomic scatter-add is the fast way there
        if sparse:
            present, where = xp.unique(ids, return_inverse=True)
            summed = xp.zeros((len(present), E), dtype=dout.dtype)
            xp.add.at(summed, where.reshape(-1), rows)
            return RowSparse(present, summed, shape)
        dW = xp.zeros(shape, dtype=dout.dtype)
        xp.add.at(dW, ids, rows)
        return dW
    order = xp.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    starts = xp.flatnonzero(xp.concatenate([xp.ones(1, bool), sorted_ids[1:] != sorted_ids[:-1]]))
    summed = xp.add.reduceat(rows[order], starts, axis=0)  # (R, E)
    if sparse:
        return RowSparse(sorted_ids[starts], summed, shape)
    dW = xp.zeros(shape, dtype=dout.dtype)
    dW[sorted_ids[starts]] = summed
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


# --- scratch arrays reused from step to step --------------------------------------------------


class Workspace:
    """Large arrays a training loop needs afresh every step (the output layer's (M, V) logits and
    (H+1, V) gradient), allocated once and reused. Fresh memory of that size costs page faults on
    first touch (about 8 ms per 68 MB here, a few percent of a step). An array taken under a name
    is valid until that name is taken again, so gradients built in one must be used (clipped,
    applied) before the next step; without a workspace every call allocates, as pure functions."""

    def __init__(self):
        self._arrays = {}

    def take(self, name: str, shape: tuple, dtype):
        array = self._arrays.get(name)
        if array is None or array.shape != shape or array.dtype != dtype:
            array = self._arrays[name] = backend.xp.empty(shape, dtype=dtype)
        return array


def empty(workspace, name: str, shape: tuple, dtype):
    """An uninitialised array: the workspace's under `name`, or a new one without a workspace."""
    if workspace is None:
        return backend.xp.empty(shape, dtype=dtype)
    return workspace.take(name, shape, dtype)


# --- output layer and loss, fused -----------------------------------------------------------
#
# The output layer over all M = T*N positions is the bulk of the work: an (M, H) @ (H, V) product
# and an (M, V) softmax. The pair below fuses the affine layer, the softmax and the cross-entropy so
# the (M, V) array goes through memory as few times as possible. After the product, one pass over
# blocks of rows does everything else while a block is in cache (row max, shift, the targets'
# logits, exp in place, row sum), spread over the CPU cores. The probabilities are never
# normalised explicitly: 1/rowsum is folded into the (M, H)-sized side of the backward products.
# The bias rides on the products through a column of ones: [h 1] @ [W; b] gives the logits when the
# caller keeps W and b as the rows of one array Wb (as the model does), and [h 1]^T @ dlogits gives
# dW and db in one product either way.

# Rows per block: 16 rows of a 10,000-word vocabulary are 640 KB and stay in cache (fewer rows,
# more calls, were slower even for a 33,278-word one). A narrow softmax (the class softmax's C
# columns) gets blocks of at least BLOCK_ENTRIES, so that handing them to the threads does not
# cost more than the work in them.
ROWS_PER_BLOCK = 16
BLOCK_ENTRIES = 160_000


class SoftmaxOutputCache(NamedTuple):
    h: object  # (M, H)
    W: object  # (H, V)
    expz: object  # (M, V) exp(logits - row max); the backward pass overwrites it
    s: object  # (M,) row sums of expz
    targets: object  # (M,)
    spent: list  # [False] until the backward pass has used expz as scratch (then [True])
    picked: object  # (M,) the targets' logits minus their row's max


def position_nll(s, picked):
    """(M,) float64 negative log-likelihood at each position from a softmax's row sums s of
    exp(logits - row max) and the targets' shifted logits: log s - picked."""
    xp = backend.xp
    return xp.log(s.astype(xp.float64)) - picked.astype(xp.float64)


def softmax_output_forward(h, W, b, targets, workspace=None):
    """Affine output layer, softmax and cross-entropy over all positions at once.

    h (M, H), W (H, V), b (V,), targets (M,) ids -> summed negative log-likelihood (a float), cache.
    Or W the (H+1, V) array [W; b] (W's rows, then the bias) and b None: the bias then comes out of
    the product, [h 1] @ [W; b], instead of a pass of its own over the (M, V) logits.
    """
    xp = backend.xp
    M, H = h.shape
    Wb = W if b is None else None
    if Wb is not None:
        W = Wb[:H]
    expz = empty(workspace, "out.logits", (M, W.shape[1]), h.dtype)
    if Wb is not None:
        h_with_one = empty(workspace, "out.h_with_one", (M, H + 1), h.dtype)  # [h 1]
        h_with_one[:, :H] = h
        h_with_one[:, H] = 1
        xp.matmul(h_with_one, Wb, out=expz)  # (M, V) logits, then exponentiated in place
    else:
        xp.matmul(h, W, out=expz)
    s = xp.empty(M, dtype=expz.dtype)
    picked = xp.empty(M, dtype=expz.dtype)  # the targets' shifted logits
    rows = max(ROWS_PER_BLOCK, BLOCK_ENTRIES // expz.shape[1]) if xp is numpy else M  # GPU: 1

    def block(i, slot):
        lo, hi = i * rows, min((i + 1) * rows, M)
        logits = expz[lo:hi]
        if Wb is None:
            logits += b
        logits -= logits.max(axis=1, keepdims=True)  # exp never overflows
        picked[lo:hi] = logits[xp.arange(hi - lo), targets[lo:hi]]
        xp.exp(logits, out=logits)
        logits.sum(axis=1, out=s[lo:hi])

    backend.run_chunked(block, -(-M // rows))
    nll = float(xp.log(s.astype(xp.float64)).sum() - picked.astype(xp.float64).sum())
    return nll, SoftmaxOutputCache(h, W, expz, s, targets, [False], picked)


def softmax_output_backward(cache, scale=1.0, workspace=None):
    """Gradients of scale * (summed NLL) -> dh (M, H), dWb (H+1, V): dW, then db as the last row
    (the layout the forward pass takes W and b in when b is None).

    Uses the cache's expz as scratch, so it runs once per forward pass: a second call on the same
    cache is a ValueError (it would compute from overwritten values)."""
    xp = backend.xp
    h, W, expz, s, targets, spent, _ = cache
    if spent[0]:
        raise ValueError(
            "softmax_output_backward ran on this cache already (it overwrites the cached "
            "exponentials); run the forward pass again"
        )
    spent[0] = True
    M, H = h.shape
    expz[xp.arange(M), targets] -= s  # expz / s is now softmax - one_hot
    inv = (scale / s).astype(h.dtype)  # (M,)
    h_with_one_by_s = xp.empty((M, H + 1), dtype=h.dtype)  # [h 1] / s: dW and db in one product
    xp.multiply(h, inv[:, None], out=h_with_one_by_s[:, :H])
    h_with_one_by_s[:, H] = inv
    dW_b = empty(workspace, "out.dW_b", (H + 1, expz.shape[1]), h.dtype)
    xp.matmul(h_with_one_by_s.T, expz, out=dW_b)  # (H + 1, V)
    dh = expz @ W.T
    dh *= inv[:, None]
    return dh, dW_b
