"""Regenerate tests/fixtures/golden.npz: run only when a change to the numbers is intended.

    python tests/make_golden.py          # every entry afresh
    python tests/make_golden.py --add    # only entries the fixture lacks; the others kept as stored

The fixture pins, for a tiny float64 model of each cell and of the class softmax, the loss, every
gradient (the initial state's too) and the losses of a short training run with dropout, and for
SGD, Adagrad and lazy Adam the losses and final weights of a short training run, so that speed
work on the core cannot silently change what it computes. `test_golden.py` recomputes the same
quantities with `compute()` and compares: the keys must be the same, and the values.
"""

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from rnngen.core import model as M
from rnngen.training.train import TrainConfig, train

FIXTURE = Path(__file__).parent / "fixtures" / "golden.npz"
CONFIGS = {
    "rnn": M.ModelConfig(13, embed=5, hidden=7, layers=2, cell="rnn", dropout=0.0),
    "lstm": M.ModelConfig(13, embed=5, hidden=7, layers=2, cell="lstm", dropout=0.2),
    "gru": M.ModelConfig(13, embed=6, hidden=6, cell="gru", tie_weights=True, dropout=0.0),
    "class": M.ModelConfig(13, embed=5, hidden=7, cell="rnn", dropout=0.1, softmax="class",
                           class_bounds=(0, 2, 5, 9, 13)),
}  # fmt: skip
# Every setting the numbers depend on is spelled out, so changing a default does not move them.
TRAIN = TrainConfig(
    epochs=3,
    batch_size=3,
    seq_len=6,
    optimizer="adam",
    lr=0.01,
    lr_decay=4.0,
    patience=3,
    clip=5.0,
    val_frac=0.2,
    seed=7,
    dtype="float64",
    val_streams=8,
    state_reset=0.0,
    val_starts=0,
    unigram_bias=False,
)


# Training runs with the other optimisers: name -> (model config, training settings).
OPTIMIZER_RUNS = {
    "sgd": ("rnn", replace(TRAIN, optimizer="sgd", lr=0.5)),
    "adagrad": ("lstm", replace(TRAIN, optimizer="adagrad", lr=0.05)),
    "lazy_adam": ("class", replace(TRAIN, lazy_adam=True)),
}


def inputs() -> dict:
    """The fixed inputs, drawn from their own seed (stored in the fixture too)."""
    rng = np.random.default_rng(2024)
    return {
        "ids": rng.integers(0, 13, size=(5, 4)),
        "targets": rng.integers(0, 13, size=(5, 4)),
        "state0": rng.normal(scale=0.5, size=(2, 2, 4, 7)),  # (L, K, N, H), sliced per cell
        "corpus": rng.integers(0, 13, size=400),
    }


def compute(data: dict) -> dict:
    out = {}
    for name, cfg in CONFIGS.items():
        params = M.init_params(cfg, np.random.default_rng(11), np.float64)
        state0 = data["state0"][: cfg.layers, : cfg.n_states, :, : cfg.hidden]
        # Gradients without dropout (deterministic), training with the config's dropout.
        exact = M.ModelConfig(**{**cfg.to_dict(), "dropout": 0.0})
        result = M.loss_and_grads(params, exact, data["ids"], data["targets"], state0)
        history = train(data["corpus"], cfg, TRAIN).history
        out[f"{name}/loss"] = np.array(result.loss)
        out[f"{name}/dstate0"] = result.dstate0
        out[f"{name}/state"] = result.state
        out[f"{name}/train_losses"] = np.array([e["train_loss"] for e in history["per_epoch"]])
        out[f"{name}/val_losses"] = np.array([e["val_loss"] for e in history["per_epoch"]])
        # named as in a model file (out.W, out.b), however the model holds them
        out.update({f"{name}/param.{k}": v for k, v in M.split_output(params).items()})
        out.update({f"{name}/grad.{k}": v for k, v in M.split_output(result.grads).items()})
    for name, (model, settings) in OPTIMIZER_RUNS.items():
        result = train(data["corpus"], CONFIGS[model], settings)
        per_epoch = result.history["per_epoch"]
        out[f"{name}/train_losses"] = np.array([e["train_loss"] for e in per_epoch])
        out[f"{name}/val_losses"] = np.array([e["val_loss"] for e in per_epoch])
        out.update({f"{name}/final.{k}": v for k, v in M.split_output(result.state.params).items()})
    return out


if __name__ == "__main__":
    data = inputs()
    fresh = compute(data)
    if sys.argv[1:] == ["--add"]:
        with np.load(FIXTURE, allow_pickle=False) as f:
            stored = {k: f[k] for k in f.files}
        fresh = {**fresh, **stored}  # what is stored stays as it is
        data = {k: stored[k] for k in data}
    FIXTURE.parent.mkdir(exist_ok=True)
    np.savez(FIXTURE, **{**fresh, **data})
    print(f"wrote {FIXTURE}")
