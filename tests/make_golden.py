"""Regenerate tests/fixtures/golden.npz: run only when a change to the numbers is intended.

    python tests/make_golden.py

The fixture pins a tiny float64 model's loss, every gradient, and the losses of a short training
run, so that speed work on the core cannot silently change what it computes. `test_golden.py`
recomputes the same quantities with `compute()` and compares.
"""

from pathlib import Path

import numpy as np

from rnngen import model as M
from rnngen.train import TrainConfig, train

FIXTURE = Path(__file__).parent / "fixtures" / "golden.npz"
CONFIG = M.ModelConfig(vocab_size=13, embed=5, hidden=7, layers=2)
TRAIN = TrainConfig(
    epochs=3, batch_size=3, seq_len=6, lr=0.01, val_frac=0.2, seed=7, dtype="float64"
)


def inputs() -> dict:
    """The fixed inputs, drawn from their own seed (stored in the fixture too)."""
    rng = np.random.default_rng(2024)
    return {
        "ids": rng.integers(0, CONFIG.vocab_size, size=(5, 4)),
        "targets": rng.integers(0, CONFIG.vocab_size, size=(5, 4)),
        "h0": rng.normal(scale=0.5, size=(CONFIG.layers, 4, CONFIG.hidden)),
        "corpus": rng.integers(0, CONFIG.vocab_size, size=400),
    }


def compute(data: dict) -> dict:
    params = M.init_params(CONFIG, np.random.default_rng(11), np.float64)
    result = M.loss_and_grads(params, CONFIG, data["ids"], data["targets"], data["h0"])
    history = train(data["corpus"], CONFIG, TRAIN).history
    out = {
        "loss": np.array(result.loss),
        "dh0": result.dh0,
        "h_last": result.h_last,
        "train_losses": np.array([e["train_loss"] for e in history["per_epoch"]]),
        "val_losses": np.array([e["val_loss"] for e in history["per_epoch"]]),
    }
    out.update({f"param.{k}": v for k, v in params.items()})
    out.update({f"grad.{k}": v for k, v in result.grads.items()})
    return out


if __name__ == "__main__":
    data = inputs()
    FIXTURE.parent.mkdir(exist_ok=True)
    np.savez(FIXTURE, **data, **compute(data))
    print(f"wrote {FIXTURE}")
