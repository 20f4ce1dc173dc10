"""A PyTorch reference for rnngen: the same network, data order, initialisation, optimiser and
schedule.

It exists to answer one question: does rnngen's NumPy implementation learn as well as a standard
framework does when everything else is held equal? So it mirrors `rnngen.train.train` step by step:

- the network: embedding (V, E) -> dropout -> L stacked nn.RNN(tanh) / nn.LSTM / nn.GRU layers of H
  units (dropout between layers, as nn.RNN(dropout=p) does) -> dropout -> linear (H, V), optionally
  with the output weight tied to the embedding (Zaremba et al. 2014 dropout placement);
- the initial weights: copied from `rnngen.model.init_params(cfg, default_rng(seed))`, so both start
  from the same point. rnngen has one bias per layer where PyTorch has two (bias_ih and bias_hh);
  the redundant recurrent bias is held at zero by a gradient mask (all of bias_hh for rnn and lstm,
  its reset and update blocks for gru, whose new-gate block is rnngen's `bhn`). Without the mask
  PyTorch would learn the same bias twice, which Adam would move at twice the rate;
- the data: `rnngen.batching.make_streams` and `iter_batches`, the hidden state carried (detached)
  from batch to batch and reset to zeros at the start of each epoch;
- the loss: mean cross-entropy over the T*N tokens of a batch; global-norm clipping with
  `clip_grad_norm_`; torch.optim.Adam / SGD / Adagrad at rnngen's learning rate; after an epoch
  whose validation loss does not improve the learning rate is divided by `lr_decay`, and after
  `patience` of them training stops; the parameters with the best validation loss are kept;
- validation: `val_streams` parallel streams in `seq_len` chunks, exactly as `rnngen.train.train`
  scores it; test: one stream over the whole text (`evaluate_torch(..., n_streams=1)`).

`check_same_forward()` proves the mapping: in float64 with dropout off it runs the same batches
through rnngen and PyTorch for every cell (and tied weights) and compares the losses, the final
states and every gradient. `check_same_training()` then runs a few optimiser steps of both and
compares the losses step by step. Run this file directly to run both checks.

Dependencies: numpy, torch (CPU; `pip install torch==2.13.0`), and rnngen from this repository.
"""

import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rnngen.core.layers import Workspace  # noqa: E402
from rnngen.core.model import (  # noqa: E402
    ModelConfig,
    init_params,
    init_state,
    join_output,
    loss_and_grads,
    split_output,
)
from rnngen.core.optim import clip_and_update, make_optimizer  # noqa: E402
from rnngen.text.batching import iter_batches, make_streams, n_batches  # noqa: E402
from rnngen.training.train import TrainConfig  # noqa: E402

TORCH_CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
GATES = {"rnn": 1, "lstm": 4, "gru": 3}


class TorchLM(nn.Module):
    """embedding -> dropout -> stacked recurrent layers (dropout between) -> dropout -> linear."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        V, E, H, L = cfg.vocab_size, cfg.embed, cfg.hidden, cfg.layers
        self.embed = nn.Embedding(V, E)
        self.drop = nn.Dropout(cfg.dropout)
        kwargs = {"nonlinearity": "tanh"} if cfg.cell == "rnn" else {}
        self.rnn = TORCH_CELLS[cfg.cell](
            E, H, num_layers=L, dropout=cfg.dropout if L > 1 else 0.0, **kwargs
        )
        self.out = nn.Linear(H, V)
        if cfg.tie_weights:
            self.out.weight = self.embed.weight
        # rnngen has a single bias per layer: keep PyTorch's redundant recurrent bias at zero.
        for layer in range(L):
            bias_hh = getattr(self.rnn, f"bias_hh_l{layer}")
            mask = torch.zeros_like(bias_hh)
            if cfg.cell == "gru":
                mask[2 * H :] = 1  # the new gate's recurrent bias: rnngen's bhn
            bias_hh.register_hook(lambda grad, mask=mask: grad * mask)

    def forward(self, inputs, state):
        """inputs (T, N) long; state: (L, N, H) tensor, or an (h, c) pair for lstm ->
        logits (T*N, V), the final state."""
        x = self.drop(self.embed(inputs))
        out, state = self.rnn(x, state)
        out = self.drop(out)
        return self.out(out.reshape(-1, self.cfg.hidden)), state

    def zero_state(self, batch: int):
        L, H = self.cfg.layers, self.cfg.hidden
        dtype = self.embed.weight.dtype
        h = torch.zeros(L, batch, H, dtype=dtype)
        return (h, torch.zeros_like(h)) if self.cfg.cell == "lstm" else h


def _t(array, dtype):
    return torch.from_numpy(np.ascontiguousarray(np.asarray(array, dtype=dtype)))


@torch.no_grad()
def load_rnngen_params(model: TorchLM, params: dict) -> None:
    """Copy rnngen's parameter dict into the PyTorch modules (in the model's dtype)."""
    cfg = model.cfg
    dtype = np.float64 if model.embed.weight.dtype == torch.float64 else np.float32
    H = cfg.hidden
    params = split_output(params)  # out.W and out.b, as PyTorch keeps them
    model.embed.weight.copy_(_t(params["embed"], dtype))
    for layer in range(cfg.layers):
        p = f"{cfg.cell}{layer}."
        getattr(model.rnn, f"weight_ih_l{layer}").copy_(_t(params[p + "Wx"].T, dtype))
        getattr(model.rnn, f"weight_hh_l{layer}").copy_(_t(params[p + "Wh"].T, dtype))
        getattr(model.rnn, f"bias_ih_l{layer}").copy_(_t(params[p + "b"], dtype))
        bias_hh = np.zeros(GATES[cfg.cell] * H, dtype=dtype)
        if cfg.cell == "gru":
            bias_hh[2 * H :] = params[p + "bhn"]
        getattr(model.rnn, f"bias_hh_l{layer}").copy_(_t(bias_hh, dtype))
    if not cfg.tie_weights:
        model.out.weight.copy_(_t(params["out.W"].T, dtype))
    model.out.bias.copy_(_t(params["out.b"], dtype))


@torch.no_grad()
def to_rnngen_params(model: TorchLM) -> dict:
    """The PyTorch parameters in rnngen's layout (for scoring with rnngen.evaluate): out.Wb."""
    cfg = model.cfg
    H = cfg.hidden

    def a(t):
        return t.detach().cpu().numpy().copy()

    params = {"embed": a(model.embed.weight)}
    for layer in range(cfg.layers):
        p = f"{cfg.cell}{layer}."
        bias_ih = a(getattr(model.rnn, f"bias_ih_l{layer}"))
        bias_hh = a(getattr(model.rnn, f"bias_hh_l{layer}"))
        params[p + "Wx"] = a(getattr(model.rnn, f"weight_ih_l{layer}")).T.copy()
        params[p + "Wh"] = a(getattr(model.rnn, f"weight_hh_l{layer}")).T.copy()
        if cfg.cell == "gru":
            params[p + "b"] = bias_ih + np.concatenate(
                [bias_hh[: 2 * H], np.zeros_like(bias_hh[:H])]
            )
            params[p + "bhn"] = bias_hh[2 * H :].copy()
        else:
            params[p + "b"] = bias_ih + bias_hh
    if not cfg.tie_weights:
        params["out.W"] = a(model.out.weight).T.copy()
    params["out.b"] = a(model.out.bias)
    return join_output(params)


def _grads_in_rnngen_layout(model: TorchLM) -> dict:
    """The .grad of every PyTorch parameter, mapped to rnngen's names and layout."""
    cfg = model.cfg
    H = cfg.hidden

    def g(t):
        return t.grad.detach().numpy()

    grads = {"embed": g(model.embed.weight)}
    for layer in range(cfg.layers):
        p = f"{cfg.cell}{layer}."
        grads[p + "Wx"] = g(getattr(model.rnn, f"weight_ih_l{layer}")).T
        grads[p + "Wh"] = g(getattr(model.rnn, f"weight_hh_l{layer}")).T
        grads[p + "b"] = g(getattr(model.rnn, f"bias_ih_l{layer}"))
        if cfg.cell == "gru":
            grads[p + "bhn"] = g(getattr(model.rnn, f"bias_hh_l{layer}"))[2 * H :]
    if not cfg.tie_weights:
        grads["out.W"] = g(model.out.weight).T
    grads["out.b"] = g(model.out.bias)
    return join_output(grads)


def detach_state(state):
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


def state_as_rnngen(state) -> np.ndarray:
    """PyTorch state -> rnngen's (L, K, N, H) array."""
    if isinstance(state, tuple):
        return np.stack([state[0].detach().numpy(), state[1].detach().numpy()], axis=1)
    return state.detach().numpy()[:, None]


@torch.no_grad()
def evaluate_torch(model: TorchLM, ids: np.ndarray, n_streams: int = 1, seq_len: int = 128):
    """Mean cross-entropy (nats per token) of ids, as `rnngen.evaluate.evaluate` scores it:
    n_streams contiguous streams, seq_len chunks, state carried; each stream's first token is
    context only."""
    was_training = model.training
    model.eval()
    streams = make_streams(ids, n_streams)
    state = model.zero_state(n_streams)
    nll = 0.0
    for inputs, targets in iter_batches(streams, seq_len):
        logits, state = model(torch.from_numpy(inputs.astype(np.int64)), state)
        nll += float(
            nn.functional.cross_entropy(
                logits, torch.from_numpy(targets.astype(np.int64)).reshape(-1), reduction="sum"
            )
        )
    model.train(was_training)
    return nll / ((len(streams) - 1) * n_streams)


def make_torch_optimizer(name: str, model: TorchLM, lr: float):
    """The PyTorch counterparts of rnngen.optim's optimisers, with the same hyperparameters."""
    params = list(model.parameters())  # a tied weight appears once
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999), eps=1e-8)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, eps=1e-10)
    raise ValueError(f"unknown optimizer {name!r}")


@dataclass
class TorchResult:
    model: TorchLM  # holding the best parameters
    history: dict = field(default_factory=dict)


def train_torch(
    train_ids: np.ndarray,
    val_ids: np.ndarray,
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    on_epoch=None,
    on_progress=None,
    progress_every: int = 500,
) -> TorchResult:
    """Train the PyTorch model exactly as `rnngen.train.train(train_ids, model_cfg, cfg, val_ids)`
    trains rnngen's, and return it holding the parameters with the best validation loss.

    on_epoch(dict) is called after each epoch; on_progress(epoch, step, steps, mean_loss, elapsed)
    every `progress_every` steps."""
    if cfg.dtype != "float32":
        raise ValueError("the reference trains in float32 only")
    torch.manual_seed(cfg.seed)  # dropout masks (they cannot match rnngen's draws anyway)
    model = TorchLM(model_cfg)
    load_rnngen_params(model, init_params(model_cfg, np.random.default_rng(cfg.seed), np.float32))
    model.train()
    lr = cfg.learning_rate(model_cfg.cell)
    optimizer = make_torch_optimizer(cfg.optimizer, model, lr)

    train_ids, val_ids = np.asarray(train_ids), np.asarray(val_ids)
    streams = make_streams(train_ids, cfg.batch_size)
    steps_per_epoch = n_batches(streams, cfg.seq_len)
    val_streams = min(cfg.val_streams, max(1, len(val_ids) // 2))
    history = {"lr": lr, "epochs": 0, "per_epoch": []}
    best_loss, best_state, bad_epochs = math.inf, None, 0
    start = time.perf_counter()

    for epoch in range(1, cfg.epochs + 1):
        state = model.zero_state(cfg.batch_size)
        loss_sum, loss_tokens = 0.0, 0
        for step, (inputs, targets) in enumerate(iter_batches(streams, cfg.seq_len), 1):
            x = torch.from_numpy(inputs.astype(np.int64))
            y = torch.from_numpy(targets.astype(np.int64)).reshape(-1)
            logits, state = model(x, state)
            loss = nn.functional.cross_entropy(logits, y)  # mean over the T*N tokens
            optimizer.zero_grad(set_to_none=False)
            loss.backward()
            if cfg.clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
            optimizer.step()
            state = detach_state(state)
            value = loss.item()
            if not math.isfinite(value):
                raise RuntimeError(f"PyTorch loss became {value} in epoch {epoch}, step {step}")
            loss_sum += value * inputs.size
            loss_tokens += inputs.size
            if on_progress and (step % progress_every == 0 or step == steps_per_epoch):
                on_progress(
                    epoch,
                    step,
                    steps_per_epoch,
                    loss_sum / loss_tokens,
                    time.perf_counter() - start,
                )

        train_loss = loss_sum / loss_tokens
        val_loss = (
            evaluate_torch(model, val_ids, val_streams, cfg.seq_len) if len(val_ids) else None
        )
        score = val_loss if val_loss is not None else train_loss
        is_best = score < best_loss
        if is_best:
            best_loss, bad_epochs = score, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            history["best_epoch"] = epoch
        else:
            bad_epochs += 1
            lr /= cfg.lr_decay
            for group in optimizer.param_groups:
                group["lr"] = lr
        stopping = cfg.patience > 0 and bad_epochs >= cfg.patience
        elapsed = time.perf_counter() - start
        record = {
            "epoch": epoch,
            "train_loss": train_loss,
            "val_loss": val_loss,
            "lr": lr,
            "is_best": is_best,
            "elapsed": elapsed,
        }
        history["per_epoch"].append(record)
        history["epochs"] = epoch
        history["seconds"] = elapsed
        if on_epoch:
            on_epoch(record)
        if stopping:
            break

    model.load_state_dict(best_state)
    return TorchResult(model, history)


# --- equivalence checks ------------------------------------------------------------------------


def _rel(a, b) -> float:
    """max |a - b| / max(max |b|, tiny): a relative difference on the scale of the reference."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


CHECK_CASES = (
    ModelConfig(vocab_size=50, embed=12, hidden=16, layers=2, cell="rnn", dropout=0.0),
    ModelConfig(vocab_size=50, embed=12, hidden=16, layers=2, cell="lstm", dropout=0.0),
    ModelConfig(vocab_size=50, embed=12, hidden=16, layers=2, cell="gru", dropout=0.0),
    ModelConfig(
        vocab_size=50, embed=16, hidden=16, layers=1, cell="lstm", tie_weights=True, dropout=0.0
    ),
    ModelConfig(
        vocab_size=50, embed=16, hidden=16, layers=1, cell="gru", tie_weights=True, dropout=0.0
    ),
)


def check_same_forward(tol: float = 1e-6, seed: int = 0, verbose: bool = True) -> dict:
    """rnngen and the PyTorch reference compute the same function and the same gradients.

    For each case in CHECK_CASES, in float64 with dropout off: identical initial weights, two
    consecutive batches with the state carried (so the second starts from a non-zero state). The
    losses and final states must agree to `tol` relative; every gradient is compared too (after
    the second batch). Returns {case: {"loss": rel, "state": rel, "grad": rel}}; raises
    AssertionError on a mismatch."""
    rng = np.random.default_rng(seed)
    T, N = 7, 3
    report = {}
    for cfg in CHECK_CASES:
        params = split_output(init_params(cfg, np.random.default_rng(seed), np.float64))
        # non-zero biases, so the bias mapping (GRU's bhn especially) is exercised
        for name in params:
            if name.endswith(".b") or name.endswith(".bhn") or name == "out.b":
                params[name] = rng.uniform(-0.5, 0.5, size=params[name].shape)
        params = join_output(params)
        model = TorchLM(cfg).double()
        load_rnngen_params(model, params)
        model.eval()
        ids = rng.integers(0, cfg.vocab_size, size=2 * T * N + N).astype(np.int32)
        streams = make_streams(ids, N)
        state_np = init_state(cfg, N, np.float64)
        state_t = model.zero_state(N)
        worst = {"loss": 0.0, "state": 0.0, "grad": 0.0}
        for inputs, targets in list(iter_batches(streams, T))[:2]:
            res = loss_and_grads(params, cfg, inputs, targets, state_np, None)
            model.zero_grad()
            logits, state_t = model(torch.from_numpy(inputs.astype(np.int64)), state_t)
            loss = nn.functional.cross_entropy(
                logits, torch.from_numpy(targets.astype(np.int64)).reshape(-1)
            )
            loss.backward()
            state_t = detach_state(state_t)
            worst["loss"] = max(worst["loss"], abs(res.loss - loss.item()) / abs(loss.item()))
            worst["state"] = max(worst["state"], _rel(res.state, state_as_rnngen(state_t)))
            torch_grads = _grads_in_rnngen_layout(model)
            assert set(torch_grads) == set(res.grads), (sorted(torch_grads), sorted(res.grads))
            worst["grad"] = max(
                worst["grad"], max(_rel(res.grads[k], torch_grads[k]) for k in res.grads)
            )
            state_np = res.state
        name = f"{cfg.cell} {cfg.layers}x{cfg.hidden}" + (" tied" if cfg.tie_weights else "")
        report[name] = worst
        if verbose:
            print(
                f"check_same_forward {name:14s} loss rel diff {worst['loss']:.2e}  "
                f"state {worst['state']:.2e}  grads {worst['grad']:.2e}",
                file=sys.stderr,
            )
        for key, value in worst.items():
            assert value <= tol, f"{name}: {key} differs by {value:.3e} relative (> {tol})"
    return report


def check_same_training(
    steps: int = 20, tol: float = 1e-5, seed: int = 0, verbose: bool = True
) -> dict:
    """A few optimiser steps of rnngen and of the reference, float64, dropout off, a small clip
    so clipping is active: the per-step losses must agree to `tol` relative.

    rnngen's side steps as `rnngen.train.train` does: the embedding gradient row-sparse, the
    output layer's arrays in a reused Workspace, Adam exactly dense."""
    rng = np.random.default_rng(seed)
    T, N = 6, 4
    report = {}
    for optimizer_name in ("adam", "sgd", "adagrad"):
        for cfg in CHECK_CASES[:3]:
            lr = {"adam": 3e-3, "sgd": 0.5, "adagrad": 0.1}[optimizer_name]
            params = init_params(cfg, np.random.default_rng(seed), np.float64)
            model = TorchLM(cfg).double()
            load_rnngen_params(model, params)
            model.eval()  # dropout is 0 anyway
            opt_np = make_optimizer(optimizer_name, params, lr)
            opt_t = make_torch_optimizer(optimizer_name, model, lr)
            workspace = Workspace()
            ids = rng.integers(0, cfg.vocab_size, size=steps * T * N + N).astype(np.int32)
            streams = make_streams(ids, N)
            state_np, state_t = init_state(cfg, N, np.float64), model.zero_state(N)
            worst = 0.0
            for inputs, targets in iter_batches(streams, T):
                res = loss_and_grads(params, cfg, inputs, targets, state_np, None, True, workspace)
                clip_and_update(opt_np, params, res.grads, 1.0)
                state_np = res.state
                opt_t.zero_grad()
                logits, state_t = model(torch.from_numpy(inputs.astype(np.int64)), state_t)
                loss = nn.functional.cross_entropy(
                    logits, torch.from_numpy(targets.astype(np.int64)).reshape(-1)
                )
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt_t.step()
                state_t = detach_state(state_t)
                worst = max(worst, abs(res.loss - loss.item()) / abs(loss.item()))
            final = to_rnngen_params(model)
            param_diff = max(_rel(params[k], final[k]) for k in params)
            name = f"{optimizer_name} {cfg.cell}"
            report[name] = {"loss": worst, "params": param_diff}
            if verbose:
                print(
                    f"check_same_training {name:12s} {steps} steps: loss rel diff {worst:.2e}  "
                    f"final params {param_diff:.2e}",
                    file=sys.stderr,
                )
            assert worst <= tol, f"{name}: losses differ by {worst:.3e} relative (> {tol})"
    return report


if __name__ == "__main__":
    torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
    check_same_forward()
    check_same_training()
    print("rnngen and the PyTorch reference agree", file=sys.stderr)
