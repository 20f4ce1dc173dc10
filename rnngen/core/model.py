"""The language model: embedding -> stacked recurrent layers -> affine output -> softmax.

    x_t = E[w_t]                                  embedding row of the current word
    h_t = cell(x_t, state_{t-1})                  per layer; the layer below's h_t is its x_t
    p(w_{t+1}) = softmax(h_t W + b_out)           over the whole vocabulary (--softmax full), or
                                                  class then word within it (class_softmax.py)

Dropout (Zaremba et al., 2014) applies to the non-recurrent connections only: the embedding output,
between layers, and before the output layer. With tied weights the output matrix W is E^T.

Letters: T time steps, N batch, E embedding, H hidden, V vocabulary, L layers, K state vectors per
layer (1 for rnn and gru, 2 for lstm). Parameters live in a dict keyed by name so optimisers,
clipping, saving and gradient checks are generic loops; gradients come back in a dict with the same
keys. The state is an (L, K, N, H) array the caller carries from one batch to the next (truncated
backpropagation through time).

The output layer's weights W (H, V) and bias b (V,) are one parameter, `out.Wb` (H+1, V), W's rows
then b: [h 1] @ Wb gives the logits with the bias out of the product, and its gradient comes out
of one product too. Files hold them as `out.W` and `out.b` (the file layout); split_output and
join_output convert, and are the only places that know both. With tied weights W is E^T and b is
`out.b` on its own.
"""

import math
from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np

from ..errors import ConfigError
from . import backend
from .cells import CELLS, STATES, cell_param_shapes, sequence_backward, sequence_forward
from .class_softmax import (
    class_log_probs,
    class_position_nll,
    class_softmax_backward,
    class_softmax_forward,
)
from .layers import (
    dropout_backward,
    dropout_forward,
    embedding_backward,
    embedding_forward,
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
            raise ConfigError(f"must be one of {', '.join(CELLS)}, got {self.cell!r}", "model.cell")
        for name in ("vocab_size", "hidden", "embed", "layers"):  # hidden first: embed follows it
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(
                    f"must be a whole number of at least 1, got {value!r}", f"model.{name}"
                )
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"must be in [0, 1), got {self.dropout}", "model.dropout")
        if self.softmax not in SOFTMAXES:
            raise ConfigError(f"must be full or class, got {self.softmax!r}", "model.softmax")
        bounds = tuple(int(b) for b in self.class_bounds)
        object.__setattr__(self, "class_bounds", bounds)  # JSON gives a list
        if self.softmax == "class" and not (
            len(bounds) >= 2
            and bounds[0] == 0
            and bounds[-1] == self.vocab_size
            and all(a < b for a, b in zip(bounds, bounds[1:]))  # noqa: B905
        ):
            raise ConfigError(
                "{0} class needs increasing class bounds from 0 to V", "model.softmax"
            )
        if self.softmax == "full" and bounds:
            raise ConfigError("class bounds are only for {0} class", "model.softmax")
        if self.tie_weights and self.embed != self.hidden:
            raise ConfigError(
                f"{{0}} needs {{1}} equal to {{2}} (now {self.embed} and {self.hidden})",
                "model.tie_weights",
                "model.embed",
                "model.hidden",
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
    if cfg.tie_weights:
        shapes["out.b"] = (V,)
    else:
        shapes["out.Wb"] = (H + 1, V)  # W (H, V), then the bias b as row H
    return shapes


def file_shapes(cfg: ModelConfig) -> dict:
    """param_shapes in the file layout: out.W (H, V) and out.b (V,) instead of out.Wb."""
    V, H = cfg.vocab_size, cfg.hidden
    shapes = {}
    for name, shape in param_shapes(cfg).items():
        if name == "out.Wb":
            shapes.update({"out.W": (H, V), "out.b": (V,)})
        else:
            shapes[name] = shape
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
        elif name == "out.Wb":  # W drawn, the bias row zero
            values = np.concatenate([rng.uniform(-bound, bound, size=(shape[0] - 1, shape[1])),
                                     np.zeros((1, shape[1]))])  # fmt: skip
        else:
            values = rng.uniform(-bound, bound, size=shape)
        params[name] = backend.xp.asarray(values, dtype=dtype)
    return params


def _output_stem(name: str, suffix: str) -> str | None:
    """`out.` for out.<suffix>, `m.out.` for m.out.<suffix> (an optimiser's state), else None."""
    if name == "out." + suffix or name.endswith(".out." + suffix):
        return name[: -len(suffix)]
    return None


def split_output(arrays: dict) -> dict:
    """The file layout of a dict of parameters (or of arrays keyed like them, as an optimiser's
    state is: m.out.Wb ...): each out.Wb becomes out.W (its first H rows) and out.b (its last
    row), views of it. Other entries, and a dict already in the file layout, pass unchanged."""
    out = {}
    for name, array in arrays.items():
        stem = _output_stem(name, "Wb")
        if stem is None:
            out[name] = array
        else:
            out[stem + "W"], out[stem + "b"] = array[:-1], array[-1]
    return out


def join_output(arrays: dict) -> dict:
    """The inverse of split_output: each out.W (H, V) with its out.b (V,) becomes one new
    contiguous out.Wb (H+1, V), values unchanged; a lone out.b (tied weights) stays, and a dict
    already joined passes unchanged."""
    out = {}
    for name, array in arrays.items():
        stem = _output_stem(name, "W")
        if stem is not None and stem + "b" in arrays:
            b = arrays[stem + "b"]
            Wb = backend.xp.empty((array.shape[0] + 1, array.shape[1]), dtype=array.dtype)
            Wb[:-1], Wb[-1] = array, b
            out[stem + "Wb"] = Wb
        elif (stem := _output_stem(name, "b")) is not None and stem + "W" in arrays:
            continue  # joined into out.Wb with its W above
        else:
            out[name] = array
    return out


def init_state(cfg: ModelConfig, batch: int, dtype=np.float32):
    """The zero state, (L, K, N, H)."""
    return backend.xp.zeros((cfg.layers, cfg.n_states, batch, cfg.hidden), dtype=dtype)


def _layer_params(params, cfg, layer):
    prefix = layer_prefix(cfg, layer)
    return {k[len(prefix) :]: v for k, v in params.items() if k.startswith(prefix)}


def output_weights(params):
    """The output layer as the layers.py functions take it: (Wb (H+1, V), None) when W and b are
    one parameter, or (W, b) with W the embedding's transpose when tied."""
    if "out.Wb" in params:
        return params["out.Wb"], None
    if "out.W" in params:
        raise ValueError("the parameters are in the file layout (out.W, out.b); join_output first")
    return params["embed"].T, params["out.b"]


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
    W, b = output_weights(params)
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
    """Fills grads' output-layer entries; returns dtop (M, H) and, when tied, the gradient of the
    output matrix (H, V) to add to the embedding's (else None)."""
    if cfg.softmax == "class":  # the forward pass was given scale as grad_scale
        dtop, grads["cls.W"], grads["cls.b"], dWb = class_softmax_backward(cache, scale)
    else:
        dtop, dWb = softmax_output_backward(cache, scale, workspace)
    if not cfg.tie_weights:
        grads["out.Wb"] = dWb  # (H+1, V): dW, then db as the last row
        return dtop, None
    grads["out.b"] = dWb[-1]
    return dtop, dWb[:-1]


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


def sequence_top(params, cfg: ModelConfig, inputs, state0):
    """Forward only, without the output layer: inputs (T, N) ids, state0 (L, K, N, H) ->
    the last layer's outputs (T*N, H) and the final state (for generation: the start text in
    one pass, then one token at a time)."""
    fwd = _forward(params, cfg, inputs, state0, None)
    return fwd.top, fwd.state


def step(params, cfg: ModelConfig, ids, state):
    """Advance the state by one token for generation: ids (N,), state (L, K, N, H) ->
    logits (N, V) (log-probabilities for the class softmax: softmax gives the same p), new state."""
    fwd = _forward(params, cfg, ids[None], state, None)  # a sequence of one step
    W, b = output_weights(params)
    if b is None:  # W is [W; b]
        W, b = W[:-1], W[-1]
    if cfg.softmax == "class":
        logits = class_log_probs(fwd.top, params["cls.W"], params["cls.b"], W, b, cfg.class_bounds)
    else:
        logits = fwd.top @ W + b
    return logits, fwd.state


def count_params(params) -> int:
    return int(sum(p.size for p in params.values()))


# Arrays a batch keeps per position and layer, in units of H, through a forward and a backward
# pass (the cell's gates and states, their gradients, the dropout masks): a count that errs high.
_PER_POSITION = {"rnn": 4, "gru": 9, "lstm": 12}


def memory_parts(cfg: ModelConfig, batch: int, seq_len: int, itemsize=4, slots=2, training=True):
    """Estimated bytes (weights' part, a batch's part) of training on N=batch streams of T=seq_len
    steps: weights, their gradients and `slots` optimiser arrays each (Adam 2, Adagrad 1, SGD 0),
    and the activations of the N x T positions (embedding, each layer, the output scores and
    their gradient). Without training: the weights and one step of N positions."""
    weights = sum(math.prod(shape) for shape in param_shapes(cfg).values())
    if cfg.softmax == "class":
        bounds = cfg.class_bounds
        scores = cfg.n_classes + max(b - a for a, b in zip(bounds, bounds[1:]))  # noqa: B905
    else:
        scores = cfg.vocab_size
    per_position = cfg.embed + cfg.layers * cfg.hidden * _PER_POSITION[cfg.cell] + 2 * scores
    if not training:
        return itemsize * weights, itemsize * batch * per_position
    return itemsize * weights * (2 + slots), itemsize * batch * seq_len * per_position


def memory_bytes(cfg: ModelConfig, batch: int, seq_len: int, itemsize=4, slots=2, training=True):
    """Estimated bytes that training (or, without, running) the model needs: see memory_parts."""
    return sum(memory_parts(cfg, batch, seq_len, itemsize, slots, training))


def _size(nbytes: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if nbytes < 1024 or unit == "TiB":
            return f"{nbytes:.0f} {unit}" if unit == "bytes" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024


def check_memory(cfg: ModelConfig, batch: int, seq_len: int, itemsize=4, slots=2, training=True):
    """Refuse, before allocating anything, a model that needs more memory than the device has
    free (backend.available_memory; nothing is refused where that is unknown). When training, the
    error names the sizes to make smaller: the model's, or the batch's if the activations weigh
    most."""
    available = backend.available_memory()
    parts = memory_parts(cfg, batch, seq_len, itemsize, slots, training)
    needed = sum(parts)
    if available is None or needed <= available:
        return
    what = f"about {_size(needed)} of memory, and {_size(available)} is free"
    if not training:
        raise ConfigError(f"running this model needs {what}; use a machine with more memory")
    fields = ("model.hidden", "model.embed") if parts[0] >= parts[1] else (
        "train.batch_size", "train.seq_len")  # fmt: skip
    raise ConfigError(
        f"training this model needs {what} ({_size(parts[0])} for the weights, their gradients "
        f"and optimiser state, {_size(parts[1])} for a batch); make {{0}} or {{1}} smaller",
        *fields,
    )
