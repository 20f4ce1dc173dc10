"""Optimisers and gradient clipping over parameter dicts.

`params`, `grads` and the optimiser state are dicts with the same keys; every update is in place,
so the arrays the model holds are the ones that change. The learning rate is a plain attribute
(`opt.lr`) so the training loop can decay it. `state()` and `load_state()` give and take the
optimiser's scalars and arrays, for checkpoints.

A gradient may be a `layers.RowSparse` (the embedding's, zero outside the rows of one batch's
tokens). SGD and Adagrad then update only those rows, which is exactly the dense update (a zero
gradient changes nothing). Adam gives exactly its dense update too, without the dense gradient in
memory, or with `lazy=True` the "lazy" variant (PyTorch's SparseAdam): the moments of rows absent
from the batch are not decayed and those rows do not move.
"""

import math

import numpy

from . import backend
from .layers import RowSparse

OPTIMIZERS = ("adam", "sgd", "adagrad")

# Learning rates that train each cell without tuning. Adam's were chosen on the bundled corpus,
# and so were Adagrad's: 4 epochs of the default model, best validation perplexity, for the tanh
# RNN at 0.003, 0.006, 0.0125, 0.025, 0.05: 214, 140, 110, 126, 139; for the GRU at 0.025 and
# 0.1: 83 and 91; for the LSTM 90 at both. SGD's follow Zaremba et al. (2014) for gated cells and
# are lower for the tanh RNN, whose gradients are less tame.
DEFAULT_LR = {
    ("adam", "rnn"): 2e-3,
    ("adam", "lstm"): 3e-3,
    ("adam", "gru"): 3e-3,
    ("sgd", "rnn"): 0.2,
    ("sgd", "lstm"): 1.0,
    ("sgd", "gru"): 1.0,
    ("adagrad", "rnn"): 0.0125,
    ("adagrad", "lstm"): 0.1,
    ("adagrad", "gru"): 0.025,
}


def clip_grad_norm(grads: dict, max_norm: float) -> float:
    """Scale all gradients together so their global L2 norm is at most max_norm; return the norm
    before clipping. max_norm <= 0 turns clipping off."""
    xp = backend.xp
    arrays = [g.values if isinstance(g, RowSparse) else g for g in grads.values()]
    norm = math.sqrt(sum(float(xp.vdot(a, a)) for a in arrays))  # one pass, no temporary
    if max_norm > 0 and norm > max_norm:
        scale = max_norm / (norm + 1e-6)
        for a in arrays:
            a *= scale
    return norm


class SGD:
    """Plain stochastic gradient descent: p -= lr * g."""

    def __init__(self, params: dict, lr: float):
        self.lr = lr

    def update(self, params: dict, grads: dict) -> None:
        for name, p in params.items():
            g = grads[name]
            if isinstance(g, RowSparse):
                values = g.values
                values *= self.lr
                p[g.rows] -= values
                continue
            g *= self.lr  # in place: the gradient is not used again
            p -= g

    def state(self):
        return {"lr": self.lr}, {}

    def load_state(self, scalars: dict, arrays: dict) -> None:
        self.lr = scalars["lr"]


class Adagrad:
    """Adagrad (Duchi et al., 2011): per-entry steps shrink with the summed squared gradients."""

    def __init__(self, params: dict, lr: float, eps=1e-10):
        self.lr, self.eps = lr, eps
        self.sum_sq = {k: backend.xp.zeros_like(p) for k, p in params.items()}

    def update(self, params: dict, grads: dict) -> None:
        xp = backend.xp
        for name, p in params.items():
            g, s = grads[name], self.sum_sq[name]
            if isinstance(g, RowSparse):
                rows, g = g.rows, g.values
                s_rows = s[rows] + g * g
                s[rows] = s_rows
                p[rows] -= self.lr * g / (xp.sqrt(s_rows) + self.eps)
                continue
            s += g * g
            p -= self.lr * g / (xp.sqrt(s) + self.eps)

    def state(self):
        return {"lr": self.lr}, {f"sum_sq.{k}": v for k, v in self.sum_sq.items()}

    def load_state(self, scalars: dict, arrays: dict) -> None:
        self.lr = scalars["lr"]
        for k, v in self.sum_sq.items():
            v[...] = arrays[f"sum_sq.{k}"]


class Adam:
    """Adam (Kingma and Ba, 2015) with bias correction; moments kept per parameter name.

    The update is memory-bound (a dozen elementwise passes over every parameter), so on the CPU
    it runs over cache-sized chunks, spread over the cores: each chunk of p, g, m and v is read
    from memory once and all the arithmetic happens in cache, which more than halves its time for
    large embedding and output matrices. Results are the same for any chunking or thread count.
    A RowSparse gradient is expanded chunk by chunk in cache, so the dense update needs no dense
    gradient in memory; with lazy=True only its rows are updated instead.
    """

    def __init__(self, params: dict, lr: float, beta1=0.9, beta2=0.999, eps=1e-8, lazy=False):
        xp = backend.xp
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.lazy = lazy  # RowSparse gradients: update only their rows (else exactly dense)
        self.m = {k: xp.zeros_like(p) for k, p in params.items()}
        self.v = {k: xp.zeros_like(p) for k, p in params.items()}
        self.t = 0
        self._scratch = {}  # (dtype, thread slot) -> a reusable chunk-sized buffer
        self.workers = None  # threads for the chunks (None: one per core)

    def update(self, params: dict, grads: dict) -> None:
        xp = backend.xp
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        # p -= lr * m_hat / (sqrt(v_hat) + eps), m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t):
        # Kingma and Ba's Algorithm 1 (and PyTorch's), folded into two scalars.
        step = self.lr / (1 - b1**self.t)
        root_scale = 1 / math.sqrt(1 - b2**self.t)
        for name, p in params.items():
            g = grads[name]
            if isinstance(g, RowSparse) and self.lazy:
                self._update_rows(p, g, self.m[name], self.v[name], step, root_scale)
                continue
            sparse = _FlatRows(g) if isinstance(g, RowSparse) else None
            flat = [a.reshape(-1) for a in (p, self.m[name], self.v[name])]
            flat_g = None if sparse else g.reshape(-1)
            size = flat[0].size
            chunk = backend.CHUNK if xp is numpy else size  # one chunk on a GPU

            def work(i, slot, flat=flat, flat_g=flat_g, sparse=sparse, chunk=chunk, size=size):
                lo = i * chunk
                pc, mc, vc = (a[lo : lo + chunk] for a in flat)
                t = self._buffer(pc.dtype, slot, min(chunk, size))[: pc.size]
                if sparse is None:
                    gc = flat_g[lo : lo + chunk]
                else:  # the dense gradient's chunk, zero outside the rows present
                    gc = self._buffer(pc.dtype, -1 - slot, min(chunk, size))[: pc.size]
                    sparse.fill(gc, lo)
                mc *= b1  # m = b1 m + (1 - b1) g
                xp.multiply(gc, 1 - b1, out=t)
                mc += t
                vc *= b2  # v = b2 v + (1 - b2) g^2
                xp.multiply(gc, gc, out=t)
                t *= 1 - b2
                vc += t
                xp.sqrt(vc, out=t)  # p -= step m / (sqrt(v) root_scale + eps)
                t *= root_scale
                t += self.eps
                xp.divide(mc, t, out=t)
                t *= step
                pc -= t

            backend.run_chunked(work, -(-size // chunk), self.workers)

    def _update_rows(self, p, g, m, v, step, root_scale) -> None:
        """The lazy update of a RowSparse gradient's rows: the dense formulas on those rows only."""
        xp = backend.xp
        b1, b2 = self.beta1, self.beta2
        rows, g = g.rows, g.values  # (R,), (R, E)
        m_rows = m[rows]
        m_rows *= b1
        m_rows += (1 - b1) * g
        v_rows = v[rows]
        v_rows *= b2
        v_rows += (1 - b2) * (g * g)
        m[rows], v[rows] = m_rows, v_rows
        denom = xp.sqrt(v_rows)
        denom *= root_scale
        denom += self.eps
        xp.divide(m_rows, denom, out=denom)  # the dense update's order of operations
        denom *= step
        p[rows] -= denom

    def state(self):
        arrays = {f"m.{k}": v for k, v in self.m.items()}
        arrays.update({f"v.{k}": v for k, v in self.v.items()})
        return {"lr": self.lr, "t": self.t}, arrays

    def load_state(self, scalars: dict, arrays: dict) -> None:
        self.lr, self.t = scalars["lr"], scalars["t"]
        for k in self.m:
            self.m[k][...] = arrays[f"m.{k}"]
            self.v[k][...] = arrays[f"v.{k}"]

    def _buffer(self, dtype, slot, n):
        buf = self._scratch.get((dtype, slot))
        if buf is None or buf.size < n:
            buf = self._scratch[(dtype, slot)] = backend.xp.empty(n, dtype)
        return buf


class _FlatRows:
    """A RowSparse gradient seen as its flattened dense form, for filling chunks of it."""

    def __init__(self, g: RowSparse):
        xp = backend.xp
        width = g.values.shape[1]
        # flat positions of the present entries, increasing because the rows are
        self.index = (g.rows[:, None] * width + xp.arange(width)).reshape(-1)
        self.values = g.values.reshape(-1)

    def fill(self, out, lo: int) -> None:
        """out[:] = the dense gradient's flat entries lo .. lo + len(out)."""
        xp = backend.xp
        bounds = xp.asarray([lo, lo + out.size], dtype=self.index.dtype)  # CuPy wants an array
        a, b = (int(i) for i in xp.searchsorted(self.index, bounds))
        out[...] = 0
        out[self.index[a:b] - lo] = self.values[a:b]


def make_optimizer(name: str, params: dict, lr: float, lazy: bool = False):
    """lazy: Adam updates only the rows of RowSparse gradients (SGD and Adagrad always do, which
    for them is exactly the dense update)."""
    if name == "adam":
        return Adam(params, lr, lazy=lazy)
    if name == "sgd":
        return SGD(params, lr)
    if name == "adagrad":
        return Adagrad(params, lr)
    raise ValueError(f"unknown optimizer {name!r}")
