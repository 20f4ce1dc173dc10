"""Optimisers and gradient clipping over parameter dicts.

`params`, `grads` and the optimiser state are dicts with the same keys; every update is in place,
so the arrays the model holds are the ones that change. The learning rate is a plain attribute
(`opt.lr`) so the training loop can decay it.
"""

import math

from . import backend

OPTIMIZERS = ("adam", "sgd", "adagrad")

# Learning rates that train each cell well without tuning (a tanh RNN diverges at the rates an LSTM
# likes under SGD). Measured on the bundled corpus and on War and Peace; see the README.
DEFAULT_LR = {
    ("adam", "rnn"): 2e-3,
    ("adam", "lstm"): 3e-3,
    ("adam", "gru"): 3e-3,
    ("sgd", "rnn"): 0.2,
    ("sgd", "lstm"): 1.0,
    ("sgd", "gru"): 1.0,
    ("adagrad", "rnn"): 0.05,
    ("adagrad", "lstm"): 0.1,
    ("adagrad", "gru"): 0.1,
}


def clip_grad_norm(grads: dict, max_norm: float) -> float:
    """Scale all gradients together so their global L2 norm is at most max_norm; return the norm
    before clipping. max_norm <= 0 turns clipping off."""
    norm = math.sqrt(sum(float((g * g).sum()) for g in grads.values()))
    if max_norm > 0 and norm > max_norm:
        scale = max_norm / (norm + 1e-6)
        for g in grads.values():
            g *= scale
    return norm


class SGD:
    """Plain stochastic gradient descent: p -= lr * g."""

    def __init__(self, params: dict, lr: float):
        self.lr = lr

    def update(self, params: dict, grads: dict) -> None:
        for name, p in params.items():
            p -= self.lr * grads[name]


class Adagrad:
    """Adagrad (Duchi et al., 2011): per-entry steps shrink with the summed squared gradients."""

    def __init__(self, params: dict, lr: float, eps=1e-10):
        self.lr, self.eps = lr, eps
        self.sum_sq = {k: backend.xp.zeros_like(p) for k, p in params.items()}

    def update(self, params: dict, grads: dict) -> None:
        xp = backend.xp
        for name, p in params.items():
            g, s = grads[name], self.sum_sq[name]
            s += g * g
            p -= self.lr * g / (xp.sqrt(s) + self.eps)


class Adam:
    """Adam (Kingma and Ba, 2015) with bias correction; moments kept per parameter name."""

    def __init__(self, params: dict, lr: float, beta1=0.9, beta2=0.999, eps=1e-8):
        xp = backend.xp
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.m = {k: xp.zeros_like(p) for k, p in params.items()}
        self.v = {k: xp.zeros_like(p) for k, p in params.items()}
        self.t = 0

    def update(self, params: dict, grads: dict) -> None:
        xp = backend.xp
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        step = self.lr * math.sqrt(1 - b2**self.t) / (1 - b1**self.t)
        for name, p in params.items():
            g, m, v = grads[name], self.m[name], self.v[name]
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * (g * g)
            p -= step * m / (xp.sqrt(v) + self.eps)


def make_optimizer(name: str, params: dict, lr: float):
    if name == "adam":
        return Adam(params, lr)
    if name == "sgd":
        return SGD(params, lr)
    if name == "adagrad":
        return Adagrad(params, lr)
    raise ValueError(f"unknown optimizer {name!r}")
