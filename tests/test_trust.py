"""Interrupts, resuming, crash-proof writes and the documented exit codes, through real
subprocesses where signals are involved."""

import json
import os
import random
import shlex
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import REPO, write_excerpt
from typer.testing import CliRunner

from rnngen import api
from rnngen.cli.app import app
from rnngen.files.checkpoint import load_checkpoint
from rnngen.files.storage import load_model

runner = CliRunner()
SMALL = ["--hidden", "16", "--embed", "8", "--batch-size", "4", "--seq-len", "8", "--seed", "1"]


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    path = tmp_path_factory.mktemp("trust") / "book.txt"
    write_excerpt(path, 8000)
    return path


def _rnngen(*args, cwd):
    return subprocess.Popen(
        [sys.executable, "-m", "rnngen", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def _long_training(book, folder):
    """A training run that lasts long enough to be interrupted (no early stopping)."""
    args = ["-o", "m.npz", "--epochs", "400", "--patience", "0", *SMALL]
    return _rnngen("train", str(book), *args, cwd=folder)


def _wait_for(proc, text, timeout=60):
    """Read stderr lines until one contains text; return what was read."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        if text in line:
            return seen
    raise AssertionError(f"never saw {text!r}: {''.join(seen)}")


def test_ctrl_c_saves_a_checkpoint_and_the_printed_command_resumes(book, tmp_path):
    """The command printed after Ctrl-C, run as printed (through a shell's word splitting), writes
    to the same model, checkpoint and log, with the same validation text; paths with spaces and
    quotes survive."""
    (tmp_path / "my models").mkdir()
    (tmp_path / "valid text.txt").write_text(book.read_text()[-1500:])
    args = [
        "-o",
        "my models/m 1.npz",
        "--valid",
        "valid text.txt",
        "--log-file",
        "it's.jsonl",
        "--checkpoint",
        "my models/state.npz",
        "--epochs",
        "400",
        "--patience",
        "0",
        *SMALL,
    ]
    proc = _rnngen("train", str(book), *args, cwd=tmp_path)  # fmt: skip
    _wait_for(proc, "epoch   2/400")
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("rnngen: interrupted: checkpoint saved to my models/state.npz"), stderr
    assert "Traceback" not in stderr
    ckpt = load_checkpoint(tmp_path / "my models" / "state.npz")
    model = tmp_path / "my models" / "m 1.npz"
    assert ckpt.state.epoch >= 3 and load_model(model).history["epochs"] >= 2
    words = shlex.split(last.split("continue with: ", 1)[1])
    assert words[:2] == ["rnngen", "train"] and words[-2:] == ["--resume", "my models/state.npz"]
    resumed = _rnngen(*words[1:], "--epochs", str(ckpt.state.epoch + 1), cwd=tmp_path)
    _, stderr = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, stderr
    assert load_model(model).history["epochs"] == ckpt.state.epoch + 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "it's.jsonl",
        "my models",
        "valid text.txt",
    ]
    assert sorted(p.name for p in (tmp_path / "my models").iterdir()) == ["m 1.npz", "state.npz"]
    records = [json.loads(line) for line in (tmp_path / "it's.jsonl").read_text().splitlines()]
    assert [r["event"] for r in records].count("start") == 2  # the resumed run logged there too


def test_second_ctrl_c_quits_at_once(book, tmp_path):
    args = [
        "--epochs",
        "400",
        "--patience",
        "0",
        "--hidden",
        "256",
        "--embed",
        "128",
        "--seq-len",
        "64",
    ]
    proc = _rnngen("train", str(book), "-o", "m.npz", *args, cwd=tmp_path)
    _wait_for(proc, "parameters")
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    began = time.monotonic()
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert time.monotonic() - began < 10
    assert "Traceback" not in stderr


def test_resume_matches_an_uninterrupted_run(book, tmp_path):
    """Through the CLI: stopped by --checkpoint-every's checkpoint and resumed, the final model
    equals the one from a straight run, bit for bit."""
    common = [str(book), *SMALL, "--dropout", "0.2", "-q"]
    assert runner.invoke(app, ["train", *common, "-o", str(tmp_path / "a.npz"),
                               "--epochs", "3"]).exit_code == 0  # fmt: skip
    first = runner.invoke(app, ["train", *common, "-o", str(tmp_path / "b.npz"), "--epochs", "2",
                                "--checkpoint-every", "1000"])  # fmt: skip
    assert first.exit_code == 0
    again = ["--resume", str(tmp_path / "b.ckpt.npz"), "--epochs", "3"]
    resumed = runner.invoke(app, ["train", str(book), "-q", "-o", str(tmp_path / "b.npz"), *again])
    assert resumed.exit_code == 0, resumed.stderr
    a, b = load_model(tmp_path / "a.npz"), load_model(tmp_path / "b.npz")
    assert a.history["per_epoch"] == b.history["per_epoch"]
    for name in a.params:
        assert a.params[name].tobytes() == b.params[name].tobytes()


def test_resume_refuses_other_data(book, tmp_path):
    runner.invoke(app, ["train", str(book), *SMALL, "-q", "-o", str(tmp_path / "m.npz"),
                        "--epochs", "1", "--checkpoint-every", "5"])  # fmt: skip
    other = tmp_path / "other.txt"
    other.write_text(book.read_text()[:7000])
    result = runner.invoke(app, ["train", str(other), "-o", str(tmp_path / "m.npz"),
                                 "--resume", str(tmp_path / "m.ckpt.npz")])  # fmt: skip
    assert result.exit_code == 2 and "other training or validation data" in result.stderr


KILLER = """
import sys, numpy as np
from rnngen.core import model as M
from rnngen.files.storage import TrainedModel, save_model
from rnngen.text.tokenize import TokenizerConfig
from rnngen.text.vocab import build_vocab
vocab = build_vocab([str(i) for i in range(2000)])
cfg = M.ModelConfig(len(vocab), embed=64, hidden=64)
print("ready", flush=True)
i = 0
while True:
    params = {k: np.full(s, float(i % 2), np.float32) for k, s in M.param_shapes(cfg).items()}
    save_model(sys.argv[1], TrainedModel(cfg, TokenizerConfig(), vocab, params, {"i": i}))
    i += 1
"""


def test_sigkill_during_saves_never_leaves_a_broken_file(tmp_path):
    path = tmp_path / "m.npz"
    rng = random.Random(0)
    trials = 12
    for trial in range(trials):
        proc = subprocess.Popen([sys.executable, "-c", KILLER, str(path)], stdout=subprocess.PIPE,
                                env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip
        proc.stdout.readline()
        time.sleep(rng.uniform(0.05, 0.4))
        proc.kill()
        proc.wait()
        if not path.exists():
            continue  # killed before the first save finished: nothing was there to lose
        model = load_model(path)  # the previous file or the new one, never a broken one
        values = {float(v.flat[0]) for v in model.params.values()}
        assert values in ({0.0}, {1.0}), trial


# --- exit codes, one test each -----------------------------------------------------------------


def test_exit_0_ok(book, tmp_path):
    result = runner.invoke(app, ["train", str(book), *SMALL, "--epochs", "1", "-q",
                                 "-o", str(tmp_path / "m.npz")])  # fmt: skip
    assert result.exit_code == 0 and result.stderr == ""


def test_exit_1_unexpected(book, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("simulated bug")

    monkeypatch.setattr(api, "train_model", broken)
    result = runner.invoke(app, ["train", str(book), "-o", str(tmp_path / "m.npz")])
    assert result.exit_code == 1
    assert "ZeroDivisionError: simulated bug" in result.stderr and "Traceback" not in result.stderr


def test_exit_1_diverged_keeps_the_best_model(book, tmp_path):
    out = tmp_path / "m.npz"
    args = ["train", str(book), *SMALL, "-o", str(out), "--optimizer", "sgd", "--lr", "1e30",
            "--clip", "0", "--epochs", "3"]  # fmt: skip
    with pytest.warns(RuntimeWarning) as seen:  # the overflow that makes it diverge, expected here
        result = runner.invoke(app, args)
    assert any("overflow encountered" in str(w.message) for w in seen)
    assert result.exit_code == 1, result.stderr
    assert "lower --lr" in result.stderr and "Traceback" not in result.stderr


def test_exit_2_usage(book):
    assert runner.invoke(app, ["train", str(book), "--epochs", "many"]).exit_code == 2
    assert runner.invoke(app, ["train", str(book), "--dropout", "2"]).exit_code == 2


def test_exit_65_bad_data(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"\xff\xfe\x00\x01")
    result = runner.invoke(app, ["encode", str(path)])
    assert result.exit_code == 65 and "binary" in result.stderr


def test_exit_66_missing(tmp_path):
    result = runner.invoke(app, ["eval", str(tmp_path / "nothing.txt")])
    assert result.exit_code == 66


def test_exit_69_missing_extra(book, tmp_path):
    try:
        import matplotlib  # noqa: F401

        pytest.skip("matplotlib is installed")
    except ImportError:
        pass
    log = tmp_path / "run.jsonl"
    runner.invoke(app, ["train", str(book), *SMALL, "--epochs", "1", "-q", "--log-file", str(log),
                        "-o", str(tmp_path / "m.npz")])  # fmt: skip
    result = runner.invoke(app, ["plot", str(log), "--png", str(tmp_path / "x.png")])
    assert result.exit_code == 69


def test_exit_73_cannot_write(book, tmp_path):
    result = runner.invoke(app, ["encode", str(book), "-o", str(tmp_path / "no" / "c.npz")])
    assert result.exit_code == 73 and "cannot write" in result.stderr


def test_exit_130_interrupted(book, tmp_path):
    proc = _long_training(book, tmp_path)
    _wait_for(proc, "parameters")
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode == 130


def test_encoding_options(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes("Le café était très bon, dit Wendy.\n".encode("latin-1") * 30)
    strict = runner.invoke(app, ["encode", str(path), "-o", str(tmp_path / "a.npz")])
    assert strict.exit_code == 65 and "offset 6" in strict.stderr and "--encoding" in strict.stderr
    latin = runner.invoke(app, ["encode", str(path), "-o", str(tmp_path / "b.npz"),
                                "--encoding", "latin-1"])  # fmt: skip
    assert latin.exit_code == 0
    replaced = runner.invoke(app, ["encode", str(path), "-o", str(tmp_path / "c.npz"),
                                   "--errors", "replace"])  # fmt: skip
    assert replaced.exit_code == 0
    from rnngen.files.storage import load_corpus

    assert "café" in load_corpus(tmp_path / "b.npz").vocab.tokens
    assert "\ufffd" in load_corpus(tmp_path / "c.npz").vocab.tokens  # a mark of its own
    assert np.all(load_corpus(tmp_path / "b.npz").ids >= 0)


def test_sigint_runs_no_statistics_pass_and_exits_within_a_step_and_a_save(book, tmp_path):
    """Ctrl-C in a default-sized run: exit 130 within a step and the saves (no gradient
    statistics, no end-of-run scoring: 0.1 computed statistics over 100,000 tokens here), the
    checkpoint written and the best model so far saved without statistics."""
    args = ["-o", "m.npz", "--epochs", "400", "--patience", "0", "--batch-size", "4",
            "--seq-len", "8", "--log-file", "log.jsonl"]  # fmt: skip
    proc = _rnngen("train", str(book), *args, cwd=tmp_path)
    _wait_for(proc, "epoch   1/400")
    proc.send_signal(signal.SIGINT)
    signalled = time.monotonic()
    _, stderr = proc.communicate(timeout=120)
    took = time.monotonic() - signalled
    assert proc.returncode == 130, stderr
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    steps = [r for r in records if r["event"] == "step"]
    step_seconds = 1 / steps[-1]["tokens_per_second"] * 4 * 8  # one batch of 4 x 8 tokens
    # a step, the checkpoint and a model file (a few MB each), with room for a loaded machine
    assert took < 5 + 20 * step_seconds, (took, step_seconds)
    model = load_model(tmp_path / "m.npz")
    assert model.stats is None and "stats_tokens" not in model.history
    assert "val_ppl" not in model.history  # no end-of-run scoring either
    assert load_checkpoint(tmp_path / "m.ckpt.npz").state.epoch >= 2
