"""The class-based output layer of Mikolov's RNNLM: a softmax over word classes, then a softmax over
the words of the target's class.

    p(w | h) = p(class(w) | h) * p(w | class(w), h)

Words are grouped into about sqrt(V) classes of roughly equal total sqrt-frequency; since the
vocabulary is sorted by frequency, each class is a contiguous range of ids,
`bounds[c]:bounds[c+1]`. Frequent
words sit in small classes, rare words in large ones, so a position costs about C + |class| instead
of V columns. Probabilities stay exactly normalised, so perplexities are exact.

Letters: M positions (T*N), H hidden, V vocabulary, C classes. Each class's word softmax reuses the
fused full-softmax pair from `layers.py` on that class's columns and positions.
"""

import math
from typing import NamedTuple

import numpy as np

from . import backend
from .layers import softmax_output_backward, softmax_output_forward


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


def word_classes(bounds) -> np.ndarray:
    """(V,) the class of every id."""
    sizes = np.diff(np.asarray(bounds))
    return np.repeat(np.arange(len(sizes)), sizes)


class ClassSoftmaxCache(NamedTuple):
    class_cache: object  # the class softmax's cache
    groups: list  # per class present: (class, positions, word softmax cache)
    M: int
    H: int
    V: int


def class_softmax_forward(h, Wc, bc, W, b, targets, bounds):
    """h (M, H), Wc (H, C), bc (C,), W (H, V), b (V,), targets (M,), bounds (C+1,) ->
    summed negative log-likelihood (float), cache."""
    xp = backend.xp
    classes = xp.asarray(word_classes(bounds))[targets]  # (M,)
    nll, class_cache = softmax_output_forward(h, Wc, bc, classes)
    order = xp.argsort(classes, kind="stable")
    sorted_classes = backend.to_numpy(classes[order])
    present, starts = np.unique(sorted_classes, return_index=True)
    ends = np.append(starts[1:], len(sorted_classes))
    groups = []
    for c, start, end in zip(present.tolist(), starts.tolist(), ends.tolist(), strict=True):
        lo, hi = bounds[c], bounds[c + 1]
        positions = order[start:end]
        word_nll, cache = softmax_output_forward(
            h[positions], W[:, lo:hi], b[lo:hi], targets[positions] - lo
        )
        nll += word_nll
        groups.append((c, positions, cache))
    return nll, ClassSoftmaxCache(class_cache, groups, h.shape[0], h.shape[1], W.shape[1])


def class_softmax_backward(cache, bounds, scale=1.0):
    """Gradients of scale * (summed NLL) -> dh (M, H), dWc (H, C), dbc (C,), dW (H, V), db (V,).
    Only the columns of classes that occurred get non-zero dW and db."""
    xp = backend.xp
    dh, dWc, dbc = softmax_output_backward(cache.class_cache, scale)
    dW = xp.zeros((cache.H, cache.V), dtype=dh.dtype)
    db = xp.zeros(cache.V, dtype=dh.dtype)
    for c, positions, word_cache in cache.groups:
        lo, hi = bounds[c], bounds[c + 1]
        dh_c, dW[:, lo:hi], db[lo:hi] = softmax_output_backward(word_cache, scale)
        dh[positions] += dh_c  # each position belongs to exactly one class
    return dh, dWc, dbc, dW, db


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
