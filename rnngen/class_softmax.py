"""The class-based output layer of Mikolov's RNNLM: a softmax over word classes, then a softmax over
the words of the target's class.

    p(w | h) = p(class(w) | h) * p(w | class(w), h)

Words are grouped into about sqrt(V) classes of roughly equal total sqrt-frequency; since the
vocabulary is sorted by frequency, each class is a contiguous range of ids,
`bounds[c]:bounds[c+1]`. Frequent
words sit in small classes, rare words in large ones, so a position costs about C + |class| instead
of V columns. Probabilities stay exactly normalised, so perplexities are exact.

Letters: M positions (T*N), H hidden, V vocabulary, C classes. The class softmax is the fused
full-softmax pair of `layers.py` with C columns; the word softmaxes follow the same plan (exp in
place, normalisation folded into the backward products) one class at a time, over the positions
sorted by class.
"""

import functools
import math
from typing import NamedTuple

import numpy as np

from . import backend
from .layers import empty, softmax_output_backward, softmax_output_forward


def make_class_bounds(counts, n_classes: int | None = None) -> tuple:
    """Class boundaries (C+1 ids, from 0 to V) that cut the ids, in order, into C classes of about
    equal total sqrt(count); n_classes defaults to round(sqrt(V)).

    Binning by sqrt(count) rather than count (as later RNNLM versions do) keeps the most frequent
    words from taking whole classes each. Each class gets at least one word; a word heavier than
    its share closes its class, and the remaining mass is shared among the remaining classes."""
    weights = np.sqrt(np.maximum(np.asarray(counts, dtype=np.float64), 1.0))
    V = len(weights)
    C = max(1, min(V, n_classes or round(math.sqrt(V))))
    bounds = [0]
    remaining = weights.sum()
    start = 0
    for c in range(C - 1):
        target = remaining / (C - c)
        end, mass = start, 0.0
        while end < V - (C - 1 - c) and (end == start or mass + weights[end] / 2 <= target):
            mass += weights[end]
            end += 1
        bounds.append(end)
        remaining -= mass
        start = end
    bounds.append(V)
    return tuple(int(b) for b in bounds)


@functools.lru_cache(maxsize=8)
def word_classes(bounds: tuple) -> np.ndarray:
    """(V,) the class of every id (read-only: cached, as every step and every sampled token
    asks for it)."""
    sizes = np.diff(np.asarray(bounds))
    classes = np.repeat(np.arange(len(sizes)), sizes)
    classes.flags.writeable = False
    return classes


class ClassSoftmaxCache(NamedTuple):
    class_cache: object  # the class softmax's cache
    order: object  # (M,) the positions sorted by their target's class
    hs: object  # (M, H) h in that order
    spans: list  # per class present, in class order: (class, first row, end row) in hs
    E: list  # per class present: (rows, class size) exp(word logits - row max)
    s: object  # (M,) row sums of the E, in hs's order
    local: object  # (M,) target ids within their class, in hs's order
    W: object  # (H, V)


def class_softmax_forward(h, Wc, bc, W, b, targets, bounds):
    """h (M, H), Wc (H, C), bc (C,), W (H, V), b (V,), targets (M,), bounds (C+1,) ->
    summed negative log-likelihood (float), cache.

    The positions are sorted by class once, so each class's words are one product over a
    contiguous block of rows; the softmax and its loss are then done in place on that block."""
    xp = backend.xp
    M = h.shape[0]
    classes = xp.asarray(word_classes(bounds))[targets]  # (M,)
    nll, class_cache = softmax_output_forward(h, Wc, bc, classes)
    order = xp.argsort(classes, kind="stable")
    sorted_classes = classes[order]
    hs = h[order]
    local = targets[order] - xp.asarray(bounds[:-1])[sorted_classes]  # id within its class
    present, starts = np.unique(backend.to_numpy(sorted_classes), return_index=True)
    ends = np.append(starts[1:], M)
    spans = list(zip(present.tolist(), starts.tolist(), ends.tolist(), strict=True))
    s = xp.empty(M, dtype=h.dtype)
    picked = xp.empty(M, dtype=h.dtype)  # the targets' shifted logits
    blocks = []
    for c, start, end in spans:
        lo, hi = bounds[c], bounds[c + 1]
        E = hs[start:end] @ W[:, lo:hi]  # (rows, class size) logits, exponentiated in place
        E += b[lo:hi]
        E -= E.max(axis=1, keepdims=True)
        picked[start:end] = E[xp.arange(end - start), local[start:end]]
        xp.exp(E, out=E)
        E.sum(axis=1, out=s[start:end])
        blocks.append(E)
    nll += float(xp.log(s.astype(xp.float64)).sum() - picked.astype(xp.float64).sum())
    return nll, ClassSoftmaxCache(class_cache, order, hs, spans, blocks, s, local, W)


def class_softmax_backward(cache, bounds, scale=1.0, workspace=None):
    """Gradients of scale * (summed NLL) -> dh (M, H), dWc (H, C), dbc (C,), dW (H, V), db (V,).

    The columns of classes that did not occur get zero dW and db. dW and db come out of one
    product per class through a column of ones, as in layers.softmax_output_backward; the
    forward's E blocks are used as scratch, so this runs once per forward."""
    xp = backend.xp
    dh, dWc, dbc = softmax_output_backward(cache.class_cache, scale)
    hs, s, local, W = cache.hs, cache.s, cache.local, cache.W
    M, H = hs.shape
    V = W.shape[1]
    inv = (scale / s).astype(hs.dtype)  # (M,)
    hs_ones = xp.empty((M, H + 1), dtype=hs.dtype)  # [hs, 1] / rowsum
    xp.multiply(hs, inv[:, None], out=hs_ones[:, :H])
    hs_ones[:, H] = inv
    dW_b = empty(workspace, "out.dW_b", (H + 1, V), hs.dtype)  # rows :H are dW, row H is db
    dhs = xp.empty_like(hs)  # (M, H) in hs's order
    done = 0  # columns before this are written
    for (c, start, end), E in zip(cache.spans, cache.E, strict=True):
        lo, hi = bounds[c], bounds[c + 1]
        dW_b[:, done:lo] = 0  # classes no position had
        E[xp.arange(end - start), local[start:end]] -= s[start:end]  # E / s: softmax - one_hot
        if xp is np:  # BLAS writes straight into the (strided) column block
            np.matmul(*_two_rows_at_least(hs_ones, start, end, E), out=dW_b[:, lo:hi])
            np.matmul(E, W[:, lo:hi].T, out=dhs[start:end])
        else:
            dW_b[:, lo:hi] = hs_ones[start:end].T @ E
            dhs[start:end] = E @ W[:, lo:hi].T
        done = hi
    dW_b[:, done:] = 0
    dhs *= inv[:, None]
    dh[cache.order] += dhs  # order is a permutation: each row gets its one class's part
    return dh, dWc, dbc, dW_b[:H], dW_b[H]


def _two_rows_at_least(hs_ones, start, end, E):
    """The factors of hs_ones[start:end].T @ E. NumPy does a one-row product (an outer product)
    about ten times slower than a two-row one, and rare-word classes often have one position, so
    such a product gets a second row: any other row of hs_ones against a row of zeros, which adds
    exactly nothing."""
    if end - start > 1 or len(hs_ones) < 2:
        return hs_ones[start:end].T, E
    other = start + 1 if start + 1 < len(hs_ones) else start - 1
    padded = np.zeros((2, E.shape[1]), dtype=E.dtype)
    padded[0] = E[0]
    return hs_ones[[start, other]].T, padded


def class_log_probs(h, Wc, bc, W, b, bounds):
    """(M, V) log p(w | h) for every word: the full distribution, for sampling and for tests."""
    xp = backend.xp
    cls = xp.asarray(word_classes(bounds))
    class_logits = h @ Wc + bc
    class_logp = class_logits - _logsumexp(class_logits)
    logits = h @ W + b
    within = xp.empty_like(logits)
    for c in range(len(bounds) - 1):
        lo, hi = bounds[c], bounds[c + 1]
        within[:, lo:hi] = logits[:, lo:hi] - _logsumexp(logits[:, lo:hi])
    return class_logp[:, cls] + within


def _logsumexp(x):
    xp = backend.xp
    top = x.max(axis=1, keepdims=True)
    return top + xp.log(xp.exp(x - top).sum(axis=1, keepdims=True))
