"""Plain, unfused references the fast code is tested against (a helper for the tests, not a test
module): a stable log-softmax and cross-entropy over full logits, and gradient clipping as a pass
of its own over the gradients."""

import numpy as np

from rnngen.core.layers import RowSparse
from rnngen.core.optim import clip_scale, grad_norm


def log_softmax(logits):
    """Row-wise log-softmax of (M, V) logits, stable: the row max is subtracted first."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax_cross_entropy(logits, targets):
    """Mean cross-entropy of (M, V) logits against (M,) target ids -> loss, dlogits (M, V)."""
    M = logits.shape[0]
    logp = log_softmax(logits)
    rows = np.arange(M)
    loss = -logp[rows, targets].sum() / M
    dlogits = np.exp(logp)  # softmax probabilities
    dlogits[rows, targets] -= 1
    dlogits /= M
    return float(loss), dlogits


def clip_grad_norm(grads: dict, max_norm: float) -> float:
    """Scale all gradients in place so their global norm is at most max_norm; return the norm
    before clipping (what optim.clip_and_update folds into the optimiser's pass)."""
    norm = grad_norm(grads)
    scale = clip_scale(norm, max_norm)
    if scale != 1.0:
        for g in grads.values():
            a = g.values if isinstance(g, RowSparse) else g
            a *= scale
    return norm
