"""The language model: embedding -> stacked recurrent layers -> affine output -> softmax.

    x_t = E[w_t]                                  embedding row of the current word
    h_t = cell(x_t, state_{t-1})                  per layer; the layer below's h_t is its x_t
    p(w_{t+1}) = softmax(h_t W + b_out)           over the whole vocabulary

Dropout (Zaremba et al., 2014) applies to the non-recurrent connections only: the embedding output,
between layers, and before the output layer. With tied weights the output matrix W is E^T.

Letters: T time steps, N batch, E embedding, H hidden, V vocabulary, L layers, K state vectors per
layer (1 for rnn and gru, 2 for lstm). Parameters live in a dict keyed by name so optimisers,
clipping, saving and gradient checks are generic loops; gradients come back in a dict with the same
keys. The state is an (L, K, N, H) array the caller carries from one batch to the next (truncated
backpropagation through time).
"""

import math
from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np

from . import backend
from .cells import CELLS, STATES, cell_param_shapes, sequence_backward, sequence_forward
from .class_softmax import (
    class_log_probs,
    class_position_nll,
    class_softmax_backward,
    class_softmax_forward,
)
from .errors import ConfigError
from .layers import (
    dropout_backward,
    dropout_forward,
    embedding_backward,
    embedding_forward,
    joined_output,
    position_nll,
    softmax_output_backward,
    softmax_output_forward,
)

SOFTMAXES = ("full", "class")


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int  # V, from the vocabulary
    embed: int = 128  # E, size of a word vector
    hidden: int = 256  # H, size of the memory state of each layer
    layers: int = 1  # L, stacked recurrent layers
    cell: str = "rnn"  # "rnn" (tanh), "lstm" or "gru"
    dropout: float = 0.3  # drop probability on non-recurrent connections, training only; a book
    # is small, and without it a model overfits within a few epochs
    tie_weights: bool = False  # output matrix = embedding matrix transposed (needs E == H)
    softmax: str = "full"  # "full", or "class": class-factorised (see class_softmax.py)
    class_bounds: tuple = ()  # softmax "class": C+1 ids, class c = ids bounds[c]:bounds[c+1]

    def __post_init__(self):
        if self.cell not in CELLS:
            raise ConfigError(f"unknown cell {self.cell!r}; use one of: {', '.join(CELLS)}")
        for name in ("vocab_size", "embed", "hidden", "layers"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a whole number of at least 1, got {value!r}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"--dropout must be in [0, 1), got {self.dropout}")
        if self.softmax not in SOFTMAXES:
            raise ConfigError(f"unknown softmax {self.softmax!r}; use one of: full, class")
        bounds = tuple(int(b) for b in self.class_bounds)
        object.__setattr__(self, "class_bounds", bounds)  # JSON gives a list
        if self.softmax == "class" and not (
            len(bounds) >= 2
            and bounds[0] == 0
            and bounds[-1] == self.vocab_size
            and all(a < b for a, b in zip(bounds, bounds[1:]))  # noqa: B905
        ):
            raise ConfigError("class softmax needs increasing class bounds from 0 to vocab_size")
        if self.softmax == "full" and bounds:
            raise ConfigError("class bounds are only for --softmax class")
        if self.tie_weights and self.embed != self.hidden:
            raise ConfigError(
                "--tie-weights needs --embed equal to --hidden "
                f"(now {self.embed} and {self.hidden})"
            )

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def n_states(self) -> int:
        return STATES[self.cell]

    @property
    def n_classes(self) -> int:
        return len(self.class_bounds) - 1


def layer_prefix(cfg: ModelConfig, layer: int) -> str:
    return f"{cfg.cell}{layer}."


def param_shapes(cfg: ModelConfig) -> dict:
    """Name -> shape of every parameter, in a fixed order."""
    V, E, H = cfg.vocab_size, cfg.embed, cfg.hidden
    shapes = {"embed": (V, E)}
    for layer in range(cfg.layers):
        n_in = E if layer == 0 else H
        for name, shape in cell_param_shapes(cfg.cell, n_in, H).items():
            shapes[layer_prefix(cfg, layer) + name] = shape
    if cfg.softmax == "class":
        shapes["cls.W"] = (H, cfg.n_classes)
        shapes["cls.b"] = (cfg.n_classes,)
    if not cfg.tie_weights:
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
    return join_output(params)


def join_output(params: dict) -> dict:
    """Make out.W (H, V) and out.b (V,) the rows of one (H+1, V) array, values unchanged, so the
    full softmax gets the bias out of its product (layers.joined_output); returns params. Updates
    in place keep them joined; arrays bound afresh (a loaded model) are joined again by this."""
    if "out.W" not in params:  # tied weights: W is the embedding's transpose
        return params
    W, b = params["out.W"], params["out.b"]
    if joined_output(W, b) is None:
        H = W.shape[0]
        Wb = backend.xp.empty((H + 1, W.shape[1]), dtype=W.dtype)
        Wb[:H], Wb[H] = W, b
        params["out.W"], params["out.b"] = Wb[:H], Wb[H]
    return params


def init_state(cfg: ModelConfig, batch: int, dtype=np.float32):
    """The zero state, (L, K, N, H)."""
    return backend.xp.zeros((cfg.layers, cfg.n_states, batch, cfg.hidden), dtype=dtype)


def _layer_params(params, cfg, layer):
    prefix = layer_prefix(cfg, layer)
    return {k[len(prefix) :]: v for k, v in params.items() if k.startswith(prefix)}


def output_matrix(params):
    """W (H, V) of the output layer: its own, or the embedding's transpose when tied."""
    return params["out.W"] if "out.W" in params else params["embed"].T


class Forward(NamedTuple):
    top: object  # (T*N, H) the last layer's outputs, after dropout
    state: object  # (L, K, N, H) the state after the last step, to carry into the next batch
    caches: tuple


def _forward(params, cfg, inputs, state0, rng) -> Forward:
    """inputs (T, N) ids, state0 (L, K, N, H); rng None means no dropout (evaluation)."""
    T, N = inputs.shape
    x, embed_cache = embedding_forward(inputs, params["embed"])  # (T, N, E)
    x, mask = dropout_forward(x, cfg.dropout, rng)
    masks, cell_caches, states = [mask], [], []
    for layer in range(cfg.layers):
        x, state, cache = sequence_forward(
            cfg.cell, x, state0[layer], _layer_params(params, cfg, layer)
        )
        x, mask = dropout_forward(x, cfg.dropout, rng)
        cell_caches.append(cache)
        states.append(state)
        masks.append(mask)
    top = x.reshape(T * N, cfg.hidden)
    return Forward(top, backend.xp.stack(states), (embed_cache, cell_caches, masks))


def _output_forward(params, cfg, top, targets, workspace=None, grad_scale=None):
    """Output layer and loss at every position: top (M, H), targets (M,) -> summed NLL, cache.
    grad_scale: the factor on the NLL that _output_backward will be asked for (training); the
    class softmax makes its word-level gradients in the forward pass."""
    W, b = output_matrix(params), params["out.b"]
    if cfg.softmax == "class":
        return class_softmax_forward(
            top, params["cls.W"], params["cls.b"], W, b, targets, cfg.class_bounds,
            grad_scale, workspace,
        )  # fmt: skip
    return softmax_output_forward(top, W, b, targets, workspace)


def _position_nll(cfg, cache):
    """(M,) float64 NLL of each position's target, from the output forward pass's cache."""
    if cfg.softmax == "class":
        return class_position_nll(cache)
    return position_nll(cache.s, cache.picked)


def _output_backward(cfg, cache, scale, grads, workspace=None):
    """Fills grads' output-layer entries; returns dtop (M, H) and the output matrix's gradient."""
    if cfg.softmax == "class":  # the forward pass was given scale as grad_scale
        dtop, grads["cls.W"], grads["cls.b"], dW, grads["out.b"] = class_softmax_backward(
            cache, scale
        )
    else:
        dtop, dW, grads["out.b"] = softmax_output_backward(cache, scale, workspace)
    return dtop, dW


class LossAndGrads(NamedTuple):
    loss: float  # mean cross-entropy per token, in nats
    grads: dict  # same keys as params
    dstate0: object  # (L, K, N, H) gradient w.r.t. the initial state
    state: object  # (L, K, N, H) the final state
    token_nll: object  # (T, N) float64 NLL of each target, before any update (adaptation uses it)
    top: object  # (T*N, H) the last layer's outputs (the neural cache's keys)


def loss_and_grads(
    params,
    cfg: ModelConfig,
    inputs,
    targets,
    state0,
    rng=None,
    sparse_embedding=False,
    workspace=None,
) -> LossAndGrads:
    """Forward and backward through time over one batch.

    inputs, targets (T, N) int ids (targets are inputs shifted by one step); state0 (L, K, N, H);
    rng draws the dropout masks (None: no dropout). With sparse_embedding (and untied weights)
    grads["embed"] is a layers.RowSparse of the batch's tokens' rows instead of a (V, E) array.
    With a layers.Workspace the largest arrays, the output layer's gradients among them, are
    reused from call to call: use the gradients before the next call.
    """
    T, N = inputs.shape
    fwd = _forward(params, cfg, inputs, state0, rng)
    embed_cache, cell_caches, masks = fwd.caches
    scale = 1.0 / (T * N)  # the loss is the mean over positions
    nll, out_cache = _output_forward(
        params, cfg, fwd.top, targets.reshape(T * N), workspace, grad_scale=scale
    )
    grads = {}
    dx, dW_out = _output_backward(cfg, out_cache, scale, grads, workspace)
    dx = dx.reshape(T, N, cfg.hidden)
    dstate0 = backend.xp.empty_like(state0)
    for layer in range(cfg.layers - 1, -1, -1):
        dx = dropout_backward(dx, masks[layer + 1])
        dx, dstate0[layer], layer_grads = sequence_backward(cfg.cell, dx, cell_caches[layer])
        prefix = layer_prefix(cfg, layer)
        grads.update({prefix + k: v for k, v in layer_grads.items()})
    dx = dropout_backward(dx, masks[0])
    grads["embed"] = embedding_backward(dx, embed_cache, sparse_embedding and not cfg.tie_weights)
    if cfg.tie_weights:
        grads["embed"] += dW_out.T
    else:
        grads["out.W"] = dW_out
    token_nll = _position_nll(cfg, out_cache).reshape(T, N)
    return LossAndGrads(nll / (T * N), grads, dstate0, fwd.state, token_nll, fwd.top)


def sequence_nll(params, cfg: ModelConfig, inputs, targets, state0, workspace=None):
    """Summed negative log-likelihood of targets (T, N) and the final state; forward only. With a
    layers.Workspace the (positions x vocabulary) logits are reused from call to call."""
    T, N = inputs.shape
    fwd = _forward(params, cfg, inputs, state0, None)
    nll = _output_forward(params, cfg, fwd.top, targets.reshape(T * N), workspace)[0]
    return nll, fwd.state


class TokenScores(NamedTuple):
    token_nll: object  # (T, N) float64 NLL of each target
    top: object  # (T*N, H) the last layer's outputs
    state: object  # (L, K, N, H) the final state


def token_scores(params, cfg: ModelConfig, inputs, targets, state0, workspace=None) -> TokenScores:
    """The NLL of each target (T, N), forward only: the same passes as sequence_nll, whose sum
    it splits by position (adaptive scoring needs each token's score and the hidden states)."""
    T, N = inputs.shape
    fwd = _forward(params, cfg, inputs, state0, None)
    cache = _output_forward(params, cfg, fwd.top, targets.reshape(T * N), workspace)[1]
    return TokenScores(_position_nll(cfg, cache).reshape(T, N), fwd.top, fwd.state)


def step(params, cfg: ModelConfig, ids, state):
    """Advance the state by one token for generation: ids (N,), state (L, K, N, H) ->
    logits (N, V) (log-probabilities for the class softmax: softmax gives the same p), new state."""
    fwd = _forward(params, cfg, ids[None], state, None)  # a sequence of one step
    W, b = output_matrix(params), params["out.b"]
    if cfg.softmax == "class":
        logits = class_log_probs(fwd.top, params["cls.W"], params["cls.b"], W, b, cfg.class_bounds)
    else:
        logits = fwd.top @ W + b
    return logits, fwd.state


def count_params(params) -> int:
    return int(sum(p.size for p in params.values()))
