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

# Learning rates that train each cell without tuning, for the loss rnngen minimises: the MEAN
# cross-entropy over the T*N positions of a batch (README: "The loss and its learning rates").
# Adam's were chosen on the bundled corpus, and so were Adagrad's: 4 epochs of the default model,
# best validation perplexity, for the tanh RNN at 0.003, 0.006, 0.0125, 0.025, 0.05: 214, 140,
# 110, 126, 139; for the GRU at 0.025 and 0.1: 83 and 91; for the LSTM 90 at both. SGD's for
# gated cells are Zaremba et al.'s (2014) lr 1 on their loss summed over T steps, which is lr
# T = 35 on the mean loss; PyTorch's word_language_model example, on the same mean loss as
# rnngen, uses 20, and so does rnngen. The tanh RNN diverges at 20 (its gradients are less tame).
# The GRU's Adam rate was raised from 0.003 to 0.005 on 5-minute `--time` runs on War and Peace
# (tied 1x256, test perplexity at 0.003, 0.005, 0.008: 100.7, 99.0, 99.8;
# benchmarks/results/recipes.md). At that budget Adam also beat SGD at lr 20 for the GRU (100.7
# against 106.7) and for the 2x200 LSTM (112.2 against 116.2, untied).
DEFAULT_LR = {
    ("adam", "rnn"): 2e-3,
    ("adam", "lstm"): 3e-3,
    ("adam", "gru"): 5e-3,
    ("sgd", "rnn"): 5.0,
    ("sgd", "lstm"): 20.0,
    ("sgd", "gru"): 20.0,
    ("adagrad", "rnn"): 0.0125,
    ("adagrad", "lstm"): 0.1,
    ("adagrad", "gru"): 0.025,
}

# Global gradient-norm clip per optimiser, on the same mean loss. SGD's step is lr times the
# gradient, so its clip bounds the step: 0.25 as in PyTorch's example (Zaremba's 5 on the summed
# loss is 5/35 = 0.14 here). Adam and Adagrad divide by the gradient's own scale; their clip only
# tames rare spikes.
DEFAULT_CLIP = {"adam": 1.0, "sgd": 0.25, "adagrad": 1.0}


def grad_norm(grads: dict) -> float:
    """The global L2 norm of all gradients together (a RowSparse counts its rows)."""
    xp = backend.xp
    arrays = [g.values if isinstance(g, RowSparse) else g for g in grads.values()]
    return math.sqrt(sum(float(xp.vdot(a, a)) for a in arrays))  # one pass, no temporary


def clip_scale(norm: float, max_norm: float) -> float:
    """The factor that brings a gradient of this norm down to max_norm (1 if it is within it, or
    if max_norm <= 0, which turns clipping off)."""
    return max_norm / (norm + 1e-6) if max_norm > 0 and norm > max_norm else 1.0


def clip_and_update(optimizer, params: dict, grads: dict, max_norm: float) -> float:
    """A training step's update: clip the gradients to a global norm of max_norm and apply them,
    the clipping folded into the optimiser's pass over the parameters instead of a pass of its
    own over the gradients (tests/reference.py's clip_grad_norm is the separate pass, for
    comparison). Returns the norm before clipping."""
    norm = grad_norm(grads)
    optimizer.update(params, grads, clip_scale(norm, max_norm))
    return norm


def _scale_rows(grads: dict, scale: float) -> None:
    """Scale the (small) rows of every RowSparse gradient in place."""
    if scale != 1.0:
        for g in grads.values():
            if isinstance(g, RowSparse):
                values = g.values
                values *= scale


class SGD:
    """Plain stochastic gradient descent: p -= lr * g."""

    def __init__(self, params: dict, lr: float):
        self.lr = lr

    def update(self, params: dict, grads: dict, scale: float = 1.0) -> None:
        """One step on the gradient scale * grads (scale: the clipping factor). Consumes grads."""
        rate = self.lr * scale
        for name, p in params.items():
            g = grads[name]
            if isinstance(g, RowSparse):
                values = g.values
                values *= rate
                p[g.rows] -= values
                continue
            g *= rate  # in place: the gradient is not used again
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

    def update(self, params: dict, grads: dict, scale: float = 1.0) -> None:
        """One step on the gradient scale * grads (scale: the clipping factor). Consumes grads."""
        xp = backend.xp
        _scale_rows(grads, scale)
        for name, p in params.items():
            g, s = grads[name], self.sum_sq[name]
            if isinstance(g, RowSparse):
                rows, g = g.rows, g.values
                s_rows = s[rows] + g * g
                s[rows] = s_rows
                p[rows] -= self.lr * g / (xp.sqrt(s_rows) + self.eps)
                continue
            if scale != 1.0:
                g *= scale
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
    it runs over chunks spread over the cores: each chunk of p, g, m and v is read
    from memory once and all the arithmetic happens in cache, which more than halves its time for
    large embedding and output matrices. The clipping factor is applied in the same pass. Results
    are the same for any chunking or thread count.

    A RowSparse gradient (the embedding's) gets exactly the dense update without a dense gradient:
    every row's moments decay and every row moves by its momentum, in a pass that reads no
    gradient, and the rows present are then updated from their saved values with the full
    formulas, the same operations the dense pass would apply. With lazy=True only the rows present
    are updated instead.
    """

    def __init__(self, params: dict, lr: float, beta1=0.9, beta2=0.999, eps=1e-8, lazy=False):
        xp = backend.xp
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.lazy = lazy  # RowSparse gradients: update only their rows (else exactly dense)
        self.m = {k: xp.zeros_like(p) for k, p in params.items()}
        self.v = {k: xp.zeros_like(p) for k, p in params.items()}
        self.t = 0
        self._scratch = {}  # (dtype, thread slot or name) -> a reusable buffer
        self.workers = None  # threads for the chunks (None: one per core)

    def update(self, params: dict, grads: dict, scale: float = 1.0) -> None:
        """One step on the gradient scale * grads (scale: the clipping factor). RowSparse
        gradients are scaled in place; dense ones are left as they are."""
        self.t += 1
        # p -= lr * m_hat / (sqrt(v_hat) + eps), m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t)
        # (Kingma and Ba's Algorithm 1, and PyTorch's), which is p -= step * m / (sqrt(v) + eps_t)
        # with the bias corrections folded into two scalars: one pass fewer per entry.
        root = math.sqrt(1 - self.beta2**self.t)
        step = self.lr * root / (1 - self.beta1**self.t)
        eps_t = self.eps * root
        _scale_rows(grads, scale)
        xp = backend.xp
        for name, p in params.items():
            g, m, v = grads[name], self.m[name], self.v[name]
            if not isinstance(g, RowSparse):
                self._update_dense(p, g, m, v, step, eps_t, scale)
                continue
            rows, (R, E) = g.rows, g.values.shape
            # (R, E) copies of the present rows, and scratch, in buffers kept from step to step
            # (fresh ones would cost page faults every step)
            p_rows, m_rows, v_rows, t = (self._buffer(p.dtype, key, R * E)[: R * E].reshape(R, E)
                                         for key in ("p", "m", "v", "t"))  # fmt: skip
            for a, out in ((p, p_rows), (m, m_rows), (v, v_rows)):
                xp.take(a, rows, axis=0, out=out)
            if not self.lazy:  # every row's moments decay and every row moves by its momentum
                self._update_dense(p, None, m, v, step, eps_t, 1.0)
            self._step(p_rows, m_rows, v_rows, g.values, t, step, eps_t)  # the rows, redone
            p[rows], m[rows], v[rows] = p_rows, m_rows, v_rows

    def _step(self, p, m, v, g, t, step, eps_t) -> None:
        """Adam's formulas in place on arrays of one shape (a chunk, or the gathered rows), with t
        a scratch array of that shape; g None is a zero gradient. The dense pass and the rows
        redone both come here, so every entry gets the same operations either way."""
        xp = backend.xp
        m *= self.beta1  # m = b1 m + (1 - b1) g
        v *= self.beta2  # v = b2 v + (1 - b2) g^2
        if g is not None:
            xp.multiply(g, 1 - self.beta1, out=t)
            m += t
            xp.multiply(g, g, out=t)
            t *= 1 - self.beta2
            v += t
        xp.sqrt(v, out=t)  # p -= step m / (sqrt(v) + eps_t)
        t += eps_t
        xp.divide(m, t, out=t)
        t *= step
        p -= t

    def _update_dense(self, p, g, m, v, step, eps_t, scale) -> None:
        """The update of whole arrays chunk by chunk, spread over the cores; g None: a zero
        gradient."""
        xp = backend.xp
        if not p.flags.c_contiguous:  # reshape would copy, and the update would be lost
            raise ValueError("Adam updates parameters in place and needs them contiguous")
        flat = [a.reshape(-1) for a in (p, m, v)]
        flat_g = None if g is None else g.reshape(-1)
        size = flat[0].size
        chunk = backend.CHUNK if xp is numpy else size  # one chunk on a GPU

        def work(i, slot):
            lo = i * chunk
            pc, mc, vc = (a[lo : lo + chunk] for a in flat)
            t = self._buffer(pc.dtype, slot, min(chunk, size))[: pc.size]
            gc = None if flat_g is None else flat_g[lo : lo + chunk]
            if gc is not None and scale != 1.0:  # clipping, as scaling in memory first would
                gc = xp.multiply(gc, scale, out=self._buffer(pc.dtype, -1 - slot, t.size)[: t.size])
            self._step(pc, mc, vc, gc, t, step, eps_t)

        backend.run_chunked(work, -(-size // chunk), self.workers)

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
