"""The language model: embedding -> stacked tanh RNN layers -> affine output -> softmax.

    x_t = E[w_t]                                  embedding row of the current word
    h_t = tanh(x_t Wx + h_{t-1} Wh + b)           per layer, the layer below's h_t as its x_t
    p(w_{t+1}) = softmax(h_t W + b_out)           over the whole vocabulary

Letters: T time steps, N batch, E embedding, H hidden, V vocabulary, L layers. Parameters live in a
dict keyed by name so optimisers, clipping, saving and gradient checks are generic loops; gradients
come back in a dict with the same keys. The hidden state is an (L, N, H) array that the caller
carries from one batch to the next (truncated backpropagation through time).
"""

import math
from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np

from . import backend
from .errors import ConfigError
from .layers import (
    affine_backward,
    affine_forward,
    cross_entropy_sum,
    embedding_backward,
    embedding_forward,
    rnn_backward,
    rnn_forward,
    rnn_step_forward,
    softmax_cross_entropy,
)

CELLS = ("rnn",)


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int  # V, from the vocabulary
    embed: int = 128  # E, size of a word vector
    hidden: int = 256  # H, size of the memory state of each layer
    layers: int = 1  # L, stacked recurrent layers
    cell: str = "rnn"  # recurrent cell type

    def __post_init__(self):
        if self.cell not in CELLS:
            raise ConfigError(f"unknown cell {self.cell!r}; use one of: {', '.join(CELLS)}")
        for name in ("vocab_size", "embed", "hidden", "layers"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")

    def to_dict(self) -> dict:
        return asdict(self)


def param_shapes(cfg: ModelConfig) -> dict:
    """Name -> shape of every parameter, in a fixed order."""
    V, E, H = cfg.vocab_size, cfg.embed, cfg.hidden
    shapes = {"embed": (V, E)}
    for layer in range(cfg.layers):
        shapes[f"rnn{layer}.Wx"] = (E if layer == 0 else H, H)
        shapes[f"rnn{layer}.Wh"] = (H, H)
        shapes[f"rnn{layer}.b"] = (H,)
    shapes["out.W"] = (H, V)
    shapes["out.b"] = (V,)
    return shapes


def init_params(cfg: ModelConfig, rng: np.random.Generator, dtype=np.float32) -> dict:
    """Embedding uniform in +-0.1, weight matrices uniform in +-1/sqrt(H), biases zero.

    Drawn in float64 in a fixed order and then cast, so a seed gives the same model in any dtype.
    """
    bound = 1.0 / math.sqrt(cfg.hidden)
    params = {}
    for name, shape in param_shapes(cfg).items():
        if name == "embed":
            values = rng.uniform(-0.1, 0.1, size=shape)
        elif len(shape) == 1:
            values = np.zeros(shape)
        else:
            values = rng.uniform(-bound, bound, size=shape)
        params[name] = backend.xp.asarray(values, dtype=dtype)
    return params


def init_state(cfg: ModelConfig, batch: int, dtype=np.float32):
    """The zero hidden state, (L, N, H)."""
    return backend.xp.zeros((cfg.layers, batch, cfg.hidden), dtype=dtype)


class Forward(NamedTuple):
    top: object  # (T, N, H) the last layer's outputs
    h_last: object  # (L, N, H) the state after the last step, to carry into the next batch
    caches: tuple


def _forward(params, cfg, inputs, h0) -> Forward:
    x, embed_cache = embedding_forward(inputs, params["embed"])  # (T, N, E)
    rnn_caches = []
    for layer in range(cfg.layers):
        p = f"rnn{layer}."
        x, cache = rnn_forward(x, h0[layer], params[p + "Wx"], params[p + "Wh"], params[p + "b"])
        rnn_caches.append(cache)
    h_last = backend.xp.stack([c.h[-1] for c in rnn_caches])
    return Forward(x, h_last, (embed_cache, tuple(rnn_caches)))


class LossAndGrads(NamedTuple):
    loss: float  # mean cross-entropy per token, in nats
    grads: dict  # same keys as params
    dh0: object  # (L, N, H) gradient w.r.t. the initial state
    h_last: object  # (L, N, H)


def loss_and_grads(params, cfg: ModelConfig, inputs, targets, h0) -> LossAndGrads:
    """Forward and backward through time over one batch.

    inputs, targets (T, N) int ids (targets are inputs shifted by one step); h0 (L, N, H).
    """
    T, N = inputs.shape
    H = cfg.hidden
    fwd = _forward(params, cfg, inputs, h0)
    embed_cache, rnn_caches = fwd.caches
    logits, out_cache = affine_forward(fwd.top.reshape(T * N, H), params["out.W"], params["out.b"])
    loss, dlogits = softmax_cross_entropy(logits, targets.reshape(T * N))

    grads = {}
    dx, grads["out.W"], grads["out.b"] = affine_backward(dlogits, out_cache)
    dx = dx.reshape(T, N, H)
    dh0 = backend.xp.empty_like(h0)
    for layer in range(cfg.layers - 1, -1, -1):
        p = f"rnn{layer}."
        dx, dh0[layer], grads[p + "Wx"], grads[p + "Wh"], grads[p + "b"] = rnn_backward(
            dx, rnn_caches[layer]
        )
    grads["embed"] = embedding_backward(dx, embed_cache)
    return LossAndGrads(loss, grads, dh0, fwd.h_last)


def sequence_nll(params, cfg: ModelConfig, inputs, targets, h0):
    """Summed negative log-likelihood of targets (T, N) and the final state; forward only."""
    T, N = inputs.shape
    fwd = _forward(params, cfg, inputs, h0)
    logits, _ = affine_forward(fwd.top.reshape(T * N, cfg.hidden), params["out.W"], params["out.b"])
    return cross_entropy_sum(logits, targets.reshape(T * N)), fwd.h_last


def step(params, cfg: ModelConfig, ids, h):
    """Advance the state by one token for generation: ids (N,), h (L, N, H) -> logits (N, V), h."""
    x = params["embed"][ids]  # (N, E)
    new_h = backend.xp.empty_like(h)
    for layer in range(cfg.layers):
        p = f"rnn{layer}."
        x, _ = rnn_step_forward(x, h[layer], params[p + "Wx"], params[p + "Wh"], params[p + "b"])
        new_h[layer] = x
    return x @ params["out.W"] + params["out.b"], new_h


def count_params(params) -> int:
    return int(sum(p.size for p in params.values()))
