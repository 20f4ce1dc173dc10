"""Checkpoints: a run stopped and resumed equals the run straight through, bit for bit."""

import json
from dataclasses import replace

import numpy as np
import pytest

from rnngen.core.model import ModelConfig
from rnngen.errors import ModelFileError
from rnngen.files.checkpoint import Checkpoint, data_fingerprint, load_checkpoint, save_checkpoint
from rnngen.text.tokenize import TokenizerConfig
from rnngen.text.vocab import build_vocab
from rnngen.training.train import TrainConfig, split_data, train

VOCAB = build_vocab([str(i) for i in range(20)])
IDS = np.random.default_rng(5).integers(1, 21, size=900).astype(np.int32)


def _run(model_cfg, cfg, tmp_path, stop_after=None, resume=None):
    """Train; with stop_after=k, stop after k steps and save a checkpoint."""
    train_ids, val_ids = split_data(IDS, cfg)
    path = tmp_path / "ckpt.npz"
    steps = [0]

    def should_stop():
        steps[0] += 1
        return stop_after is not None and steps[0] >= stop_after

    def on_checkpoint(state):
        ckpt = Checkpoint(
            model_cfg, cfg, TokenizerConfig(), VOCAB, state, data_fingerprint(train_ids, val_ids)
        )
        save_checkpoint(path, ckpt)

    result = train(
        IDS, model_cfg, cfg, resume=resume, on_checkpoint=on_checkpoint, should_stop=should_stop
    )
    return result, path


CLASSES = (0, 3, 8, 14, 21)
CASES = [
    (ModelConfig(21, embed=8, hidden=12, cell="lstm", layers=2, dropout=0.3), "adam"),
    (ModelConfig(21, embed=8, hidden=12, cell="gru"), "sgd"),
    (ModelConfig(21, embed=8, hidden=12, cell="rnn"), "adagrad"),
    (ModelConfig(21, embed=8, hidden=12, softmax="class", class_bounds=CLASSES, dropout=0.2),
     "adam"),
    (ModelConfig(21, embed=8, hidden=12, cell="gru", dropout=0.2), "lazy-adam"),
]  # fmt: skip
CASE_IDS = ["lstm-adam", "gru-sgd", "rnn-adagrad", "class-softmax-adam", "gru-lazy-adam"]


@pytest.mark.parametrize("model_cfg,optimizer", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("stop_after", [3, 7, 14, 20])  # mid-epoch, epoch ends, later epochs
def test_resume_is_bit_exact(tmp_path, model_cfg, optimizer, stop_after):
    cfg = TrainConfig(
        epochs=4,
        batch_size=4,
        seq_len=25,
        optimizer=optimizer.removeprefix("lazy-"),
        lazy_adam=optimizer == "lazy-adam",
        lr_decay=2.0,
        patience=0,
        seed=3,
    )  # 7 steps an epoch; fmt: skip
    straight, _ = _run(model_cfg, cfg, tmp_path)
    stopped, path = _run(model_cfg, cfg, tmp_path, stop_after=stop_after)
    assert stopped.interrupted
    ckpt = load_checkpoint(path)
    resolved = replace(cfg, lr=cfg.learning_rate(model_cfg.cell))  # stored, not left to defaults
    assert ckpt.model == model_cfg and ckpt.train == resolved and ckpt.vocab == VOCAB
    train_ids, val_ids = split_data(IDS, cfg)
    assert ckpt.data == data_fingerprint(train_ids, val_ids)
    resumed, _ = _run(model_cfg, cfg, tmp_path, resume=ckpt.state)
    assert not resumed.interrupted
    for name in straight.params:
        assert straight.params[name].tobytes() == resumed.params[name].tobytes(), name
        final_a, final_b = straight.state.params[name], resumed.state.params[name]
        assert final_a.tobytes() == final_b.tobytes(), name
    losses = [(e["train_loss"], e["val_loss"], e["lr"]) for e in straight.history["per_epoch"]]
    assert losses == [
        (e["train_loss"], e["val_loss"], e["lr"]) for e in resumed.history["per_epoch"]
    ]


def test_corrupt_checkpoint_is_refused(tmp_path):
    model_cfg, _ = CASES[0]
    cfg = TrainConfig(epochs=1, batch_size=4, seq_len=25, seed=3)
    _, path = _run(model_cfg, cfg, tmp_path, stop_after=2)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="ckpt.npz"):
        load_checkpoint(path)


def test_a_checkpoint_from_before_the_lazy_adam_rename_loads(tmp_path):
    """Checkpoints written when TrainConfig.lazy_adam was called sparse_embedding keep loading,
    with the setting they had; one holding both names is refused."""
    model_cfg = ModelConfig(21, embed=8, hidden=12, cell="rnn")
    cfg = TrainConfig(epochs=1, batch_size=4, seq_len=25, seed=3, lazy_adam=True)
    _, path = _run(model_cfg, cfg, tmp_path, stop_after=2)
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(arrays["meta"].item())
    settings = meta["train"]
    settings["sparse_embedding"] = settings.pop("lazy_adam")
    old = tmp_path / "old.ckpt.npz"
    np.savez(old, **{**arrays, "meta": np.array(json.dumps(meta))})
    ckpt = load_checkpoint(old)
    assert ckpt.train == replace(cfg, lr=0.002) and ckpt.state.optimizer.lazy
    settings["lazy_adam"] = True
    np.savez(old, **{**arrays, "meta": np.array(json.dumps(meta))})
    with pytest.raises(ModelFileError, match="sparse_embedding and lazy_adam"):
        load_checkpoint(old)
