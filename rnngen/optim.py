"""Optimisers and gradient clipping over parameter dicts.

`params`, `grads` and the optimiser state are dicts with the same keys; every update is in place,
so the arrays the model holds are the ones that change.
"""

import math

from . import backend

OPTIMIZERS = ("adam", "sgd")


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
    raise ValueError(f"unknown optimizer {name!r}")
