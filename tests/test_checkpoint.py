"""Checkpoints: a run stopped and resumed equals the run straight through, bit for bit."""

import json
from dataclasses import replace
from pathlib import Path

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


# --- files written by rnngen 0.1 (tests/fixtures/release1, made by its make.py) ---------------

RELEASE1 = Path(__file__).parent / "fixtures" / "release1"


def test_a_release1_checkpoint_resumes_to_the_losses_0_1_computed(tmp_path):
    """The checkpoint 0.1 wrote, resumed for two more epochs by today's code, gives the losses
    0.1 gave (expected.json); a default that changed since must not leak into it."""
    import shutil

    from typer.testing import CliRunner

    from rnngen.cli.app import app

    expected = json.loads((RELEASE1 / "expected.json").read_text())
    for name in ("text.txt", "ckpt.npz"):
        shutil.copy(RELEASE1 / name, tmp_path / name)
    args = ["train", str(tmp_path / "text.txt"), "-o", str(tmp_path / "resumed.npz"),
            "--epochs", "4", "--resume", str(tmp_path / "ckpt.npz"), "--json", "-q"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stderr
    per_epoch = json.loads(result.stdout)["per_epoch"]
    want = expected["resumed_per_epoch"]
    assert [e["epoch"] for e in per_epoch] == [e["epoch"] for e in want]
    for got, old in zip(per_epoch, want, strict=True):
        for key in ("train_loss", "val_loss", "lr"):
            assert got[key] == pytest.approx(old[key], rel=1e-5), (got["epoch"], key)


def test_a_release1_model_scores_and_samples_as_before():
    from typer.testing import CliRunner

    from rnngen.cli.app import app

    expected = json.loads((RELEASE1 / "expected.json").read_text())
    runner = CliRunner()
    model = str(RELEASE1 / "model.npz")
    scored = runner.invoke(app, ["eval", str(RELEASE1 / "held_out.txt"), "-m", model, "--json"])
    assert scored.exit_code == 0, scored.stderr
    figures = json.loads(scored.stdout)
    for key in ("tokens", "oov_rate", "cross_entropy", "perplexity", "bits_per_character"):
        assert figures[key] == pytest.approx(expected["eval"][key], rel=1e-5), key
    sampled = runner.invoke(app, ["sample", "-m", model, "--length", "30", "--seed", "3", "-q"])
    assert sampled.exit_code == 0 and sampled.stdout == expected["sample"]


def test_a_version1_checkpoint_lacking_later_settings_takes_the_values_of_its_day(tmp_path):
    """A setting a version 1 checkpoint lacks means what it meant then (LEGACY_TRAIN_SETTINGS),
    not today's default: no state resets, no zero-state starts, a zero output bias; a timed run
    is not stopped by patience, and a None learning rate is the one the run began with."""
    with np.load(RELEASE1 / "ckpt.npz", allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(arrays["meta"].item())
    assert meta["version"] == 1
    for key in ("state_reset", "val_starts", "unigram_bias", "lazy_adam", "val_every"):
        del meta["train"][key]
    meta["train"].update(lr=None, time_limit=60.0, patience=3)
    old = tmp_path / "old.ckpt.npz"
    np.savez(old, **{**arrays, "meta": np.array(json.dumps(meta))})
    train = load_checkpoint(old).train
    assert (train.state_reset, train.val_starts, train.unigram_bias) == (0.0, 0, False)
    assert train.patience == 0 and train.lr == meta["history"]["train"]["lr"]
