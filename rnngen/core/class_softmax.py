"""The class-based output layer of Mikolov's RNNLM: a softmax over word classes, then a softmax over
the words of the target's class.

    p(w | h) = p(class(w) | h) * p(w | class(w), h)

Words are grouped into about sqrt(V) classes of roughly equal total sqrt-frequency; since the
vocabulary is sorted by frequency, each class is a contiguous range of ids,
`bounds[c]:bounds[c+1]`. Frequent
words sit in small classes, rare words in large ones, so a position costs about C + |class| instead
of V columns. Probabilities stay exactly normalised, so perplexities are exact.

Letters: M positions (T*N), H hidden, V vocabulary, C classes. The class softmax is the fused
full-softmax pair of `layers.py` with C columns. The word softmaxes go one class at a time over
the positions sorted by class: one product for the class's block of logits, the softmax in place,
and in training the block's gradients straight away, while the block and the class's columns of
W are in cache.
"""

import functools
import math
from typing import NamedTuple

import numpy as np

from . import backend
from .layers import empty, position_nll, softmax_output_backward, softmax_output_forward
from .numerics import logsumexp


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
    scale: float  # the factor on the summed NLL that the gradients below are for
    dhs: object  # (M, H) the word softmaxes' part of dh, in that order
    dW_b: object  # (H+1, V) dW, then db as the last row
    s: object  # (M,) the word softmaxes' row sums, in that order
    picked: object  # (M,) the targets' shifted word logits, in that order


def class_position_nll(cache: ClassSoftmaxCache):
    """(M,) float64 negative log-likelihood at each position, in the positions' own order: the
    class's part plus the word-within-class part."""
    nll = position_nll(cache.class_cache.s, cache.class_cache.picked)
    nll[cache.order] += position_nll(cache.s, cache.picked)
    return nll


def class_softmax_forward(h, Wc, bc, W, b, targets, bounds, grad_scale=None, workspace=None):
    """h (M, H), Wc (H, C), bc (C,), W (H, V), b (V,), targets (M,), bounds (C+1,) ->
    summed negative log-likelihood (float), cache. As for layers.softmax_output_forward, W may be
    the (H+1, V) array [W; b] with b None, and the bias then comes out of the products.

    The positions are sorted by class once, so each class's words are one product over a
    contiguous block of rows; the softmax and its loss are then done in place on that block.
    With grad_scale (training) the word softmaxes' gradients of grad_scale * NLL are made in the
    same pass, while each class's block and its columns of W are in cache, and kept in the cache
    for class_softmax_backward: this reads W once instead of twice, and keeps no blocks."""
    xp = backend.xp
    M, H = h.shape
    V = W.shape[1]
    Wb = W if b is None else None  # [W; b], so the bias comes out of the product
    if Wb is not None:
        W = Wb[:H]
    classes = xp.asarray(word_classes(bounds))[targets]  # (M,)
    nll, class_cache = softmax_output_forward(h, Wc, bc, classes)
    order = xp.argsort(classes, kind="stable")
    sorted_classes = classes[order]
    h_by_class = empty(workspace, "out.h_by_class", (M, H + 1), h.dtype)  # [h 1], class order
    h_by_class[:, :H] = h[order]
    h_by_class[:, H] = 1
    local = targets[order] - xp.asarray(bounds[:-1])[sorted_classes]  # id within its class
    present, starts = np.unique(backend.to_numpy(sorted_classes), return_index=True)
    ends = np.append(starts[1:], M)
    widest = int(np.diff(np.asarray(bounds)).max())
    scratch = empty(workspace, "out.class_block", (M * widest,), h.dtype)
    s = xp.empty(M, dtype=h.dtype)  # row sums of exp(word logits - row max)
    picked = xp.empty(M, dtype=h.dtype)  # the targets' shifted logits
    training = grad_scale is not None
    if training:
        dW_b = empty(workspace, "out.dW_b", (H + 1, V), h.dtype)  # rows :H are dW, row H is db
        dhs = xp.empty((M, H), dtype=h.dtype)
    done = 0  # columns of dW_b before this are written
    for c, start, end in zip(present.tolist(), starts.tolist(), ends.tolist(), strict=True):
        lo, hi = bounds[c], bounds[c + 1]
        rows = xp.arange(end - start)
        expz = scratch[: (end - start) * (hi - lo)].reshape(end - start, hi - lo)
        if Wb is not None:
            # the logits, exponentiated in place below
            xp.matmul(h_by_class[start:end], Wb[:, lo:hi], out=expz)
        else:
            xp.matmul(h_by_class[start:end, :H], W[:, lo:hi], out=expz)
            expz += b[lo:hi]
        expz -= expz.max(axis=1, keepdims=True)
        picked[start:end] = expz[rows, local[start:end]]
        xp.exp(expz, out=expz)
        expz.sum(axis=1, out=s[start:end])
        if not training:
            continue
        expz *= (grad_scale / s[start:end])[:, None]  # scale * (softmax - one_hot)
        expz[rows, local[start:end]] -= grad_scale
        dW_b[:, done:lo] = 0  # classes no position had
        if xp is np:  # BLAS writes straight into the (strided) column block
            np.matmul(*_two_rows_at_least(h_by_class, start, end, expz), out=dW_b[:, lo:hi])
        else:
            dW_b[:, lo:hi] = h_by_class[start:end].T @ expz
        xp.matmul(expz, W[:, lo:hi].T, out=dhs[start:end])
        done = hi
    nll += float(xp.log(s.astype(xp.float64)).sum() - picked.astype(xp.float64).sum())
    if not training:
        return nll, ClassSoftmaxCache(class_cache, order, None, None, None, s, picked)
    dW_b[:, done:] = 0
    return nll, ClassSoftmaxCache(class_cache, order, grad_scale, dhs, dW_b, s, picked)


def class_softmax_backward(cache, scale):
    """Gradients of scale * (summed NLL) -> dh (M, H), dWc (H, C), dbc (C,), dWb (H+1, V): dW,
    then db as the last row.

    The columns of classes that did not occur get zero dW and db. The word softmaxes' part was
    made by the forward pass, which must have been given this scale as grad_scale; this adds the
    class softmax's."""
    if cache.scale != scale:
        raise ValueError(
            f"class_softmax_backward for scale {scale} needs a forward pass given that grad_scale"
            f" (it was given {cache.scale})"
        )
    dh, dWbc = softmax_output_backward(cache.class_cache, cache.scale)
    dh[cache.order] += cache.dhs  # order is a permutation: each row gets its one class's part
    return dh, dWbc[:-1], dWbc[-1], cache.dW_b


def _two_rows_at_least(h_by_class, start, end, expz):
    """The factors of h_by_class[start:end].T @ expz. NumPy does a one-row product (an outer
    product) about ten times slower than a two-row one, and rare-word classes often have one
    position, so such a product gets a second row: any other row of h_by_class against a row of
    zeros, which adds exactly nothing."""
    if end - start > 1 or len(h_by_class) < 2:
        return h_by_class[start:end].T, expz
    other = start + 1 if start + 1 < len(h_by_class) else start - 1
    padded = np.zeros((2, expz.shape[1]), dtype=expz.dtype)
    padded[0] = expz[0]
    return h_by_class[[start, other]].T, padded


def class_log_probs(h, Wc, bc, W, b, bounds):
    """(M, V) log p(w | h) for every word: the full distribution, for sampling and for tests."""
    xp = backend.xp
    cls = xp.asarray(word_classes(bounds))
    class_logits = h @ Wc + bc
    class_logp = class_logits - logsumexp(class_logits, axis=1, keepdims=True)
    logits = h @ W + b
    within = xp.empty_like(logits)
    for c in range(len(bounds) - 1):
        lo, hi = bounds[c], bounds[c + 1]
        within[:, lo:hi] = logits[:, lo:hi] - logsumexp(logits[:, lo:hi], axis=1, keepdims=True)
    return class_logp[:, cls] + within


class ClassDistribution:
    """log p(w | h) = log p(c | h) + log p(w | c, h) at one position h (H,), in float64, the word
    level made one class at a time when asked for: sampling (sampling.sample_factored) mostly
    needs one class, not all V words."""

    def __init__(self, h, Wc, bc, W, b, bounds):
        a = backend.to_numpy(h @ Wc + bc).astype(np.float64)  # (C,)
        self.class_logp = a - float(logsumexp(a))
        self.bounds = bounds
        self._h, self._W, self._b = h, W, b
        self._words = {}  # class -> its words' log p, once made

    def words(self, c: int) -> np.ndarray:
        """(|c|,) log p(w | h) of the ids bounds[c]:bounds[c+1] (read-only: kept for reuse)."""
        if c not in self._words:
            lo, hi = self.bounds[c], self.bounds[c + 1]
            z = backend.to_numpy(self._h @ self._W[:, lo:hi] + self._b[lo:hi]).astype(np.float64)
            out = self.class_logp[c] + (z - float(logsumexp(z)))
            out.flags.writeable = False
            self._words[c] = out
        return self._words[c]

    def full(self) -> np.ndarray:
        """(V,) log p(w | h) of every word, in one product."""
        z = backend.to_numpy(self._h @ self._W + self._b).astype(np.float64)  # (V,)
        starts, sizes = np.asarray(self.bounds[:-1]), np.diff(np.asarray(self.bounds))
        top = np.maximum.reduceat(z, starts)  # (C,) each class's largest logit
        lse = top + np.log(np.add.reduceat(np.exp(z - np.repeat(top, sizes)), starts))
        return z + np.repeat(self.class_logp - lse, sizes)
