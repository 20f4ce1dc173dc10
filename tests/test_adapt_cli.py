"""--cache, --dynamic and `rnngen tune` through the command line: options, output, exit codes,
and the model file left as trained."""

import hashlib
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from rnngen.cli.app import app
from rnngen.files.storage import load_model, save_model

runner = CliRunner()
TINY = ["--epochs", "1", "--hidden", "16", "--embed", "8", "--batch-size", "4", "--seq-len", "8"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from conftest import REPO

    folder = tmp_path_factory.mktemp("adapt")
    text = (REPO / "corpora" / "peter_pan.txt").read_text(encoding="utf-8")
    train, held = folder / "train.txt", folder / "held.txt"
    train.write_text(text[:8000], encoding="utf-8")
    held.write_text(text[8000:10000] * 2, encoding="utf-8")  # a passage read twice
    model = folder / "model.npz"
    result = runner.invoke(app, ["train", str(train), "-o", str(model), "-q", *TINY])
    assert result.exit_code == 0, result.stderr
    return {"train": train, "held": held, "model": model}


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def eval_json(files, *options, model=None):
    result = runner.invoke(
        app, ["eval", str(files["held"]), "-m", str(model or files["model"]), "--json", *options]
    )
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_training_stores_gradient_statistics(files):
    """The statistics stored are those of the trained weights on the training part of the text
    (not the validation tail, not the initial weights)."""
    from rnngen import api
    from rnngen.training.stats import gradient_stats
    from rnngen.training.train import TrainConfig, split_data

    model = load_model(files["model"])
    assert model.stats is not None and set(model.stats) == set(model.params)
    corpus = api.training_corpus(str(files["train"]))
    train_ids = split_data(corpus.ids, TrainConfig())[0]
    want = gradient_stats(api.device_params(model), model.config, train_ids)
    stored = api.device_arrays(model.stats)
    for k, v in want.items():
        np.testing.assert_allclose(stored[k], v, rtol=1e-4, atol=1e-12 * float(v.max()))


def test_eval_reports_static_and_adapted_side_by_side(files):
    plain = eval_json(files)
    before = digest(files["model"])
    both = eval_json(files, "--cache", "--dynamic")
    assert digest(files["model"]) == before  # the adapted model is never written
    for key in ("tokens", "oov_rate", "cross_entropy", "bits_per_token", "perplexity"):
        assert both[key] == pytest.approx(plain[key], rel=1e-6)
    adapted = both["adapted"]
    assert set(adapted["cache"]) == {"size", "theta", "lambda"}
    assert set(adapted["dynamic"]) == {"lr", "decay", "length"}
    assert adapted["dropped_steps"] == 0
    # the text repeats itself: both kinds of adaptation must find that
    assert adapted["perplexity"] < 0.9 * both["perplexity"]
    assert "adapted" not in plain


def test_dynamic_lr_zero_reports_the_static_figures_exactly(files):
    values = eval_json(files, "--dynamic", "--dynamic-lr", "0", "--dynamic-len", "128")
    assert values["adapted"]["cross_entropy"] == values["cross_entropy"]
    values = eval_json(files, "--cache-lambda", "0")
    assert values["adapted"]["cross_entropy"] == pytest.approx(values["cross_entropy"], rel=1e-12)


def test_eval_text_output_has_the_adapted_lines(files):
    result = runner.invoke(app, ["eval", str(files["held"]), "-m", str(files["model"]), "--cache"])
    assert result.exit_code == 0, result.stderr
    assert "adapted perplexity" in result.stdout and "cache size 1000" in result.stdout


@pytest.mark.parametrize(
    "options",
    [
        ["--cache-size", "0"],
        ["--cache-theta", "-1"],
        ["--cache-theta", "nan"],
        ["--cache-lambda", "1"],
        ["--cache-lambda", "inf"],
        ["--dynamic-lr", "-0.5"],
        ["--dynamic-lr", "nan"],
        ["--dynamic-decay", "2"],
        ["--dynamic-len", "0"],
    ],
)
def test_bad_values_exit_2(files, options):
    result = runner.invoke(app, ["eval", str(files["held"]), "-m", str(files["model"]), *options])
    assert result.exit_code == 2, result.stderr
    assert result.stderr.strip().startswith("rnngen: error: ") and result.stdout == ""


def test_dynamic_without_statistics_names_the_fix(files, tmp_path):
    old = load_model(files["model"])
    old.stats = None
    path = tmp_path / "old.npz"
    save_model(path, old)
    result = runner.invoke(app, ["eval", str(files["held"]), "-m", str(path), "--dynamic"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--dynamic-stats" in lines[0]
    # computing them from the training text works
    values = eval_json(files, "--dynamic", "--dynamic-stats", str(files["train"]), model=path)
    assert values["adapted"]["perplexity"] < values["perplexity"]


def test_score_with_a_cache(files):
    lines = files["held"].read_text(encoding="utf-8").splitlines()
    args = ["score", str(files["held"]), "-m", str(files["model"])]
    plain = runner.invoke(app, args)
    cached = runner.invoke(app, [*args, "--cache", "--cache-lambda", "0.2"])
    assert plain.exit_code == 0 and cached.exit_code == 0, cached.stderr
    rows = [r.split("\t") for r in cached.stdout.splitlines()]
    assert len(rows) == len(lines)
    total = sum(float(r[0]) for r in rows)
    assert total > sum(float(r.split("\t")[0]) for r in plain.stdout.splitlines())
    zero = runner.invoke(app, [*args, "--cache-lambda", "0"])
    np.testing.assert_allclose(
        [float(r.split("\t")[0]) for r in zero.stdout.splitlines()],
        [float(r.split("\t")[0]) for r in plain.stdout.splitlines()],
        rtol=1e-5,
        atol=1e-5,
    )


def test_sample_with_cache_and_dynamic(files):
    before = digest(files["model"])
    args = ["sample", "-m", str(files["model"]), "--start", "Peter Pan and Wendy", "--seed", "3"]
    args += ["--length", "30", "--cache", "--dynamic"]
    first, again = runner.invoke(app, args), runner.invoke(app, args)
    assert first.exit_code == 0, first.stderr
    assert first.stdout == again.stdout and first.stdout.startswith("Peter Pan and Wendy")
    assert digest(files["model"]) == before


def test_tune_prints_and_writes_settings_that_eval_uses(files, tmp_path):
    path = tmp_path / "tuned.npz"
    path.write_bytes(files["model"].read_bytes())
    result = runner.invoke(app, ["tune", str(path), str(files["held"]), "--json"])
    assert result.exit_code == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["cache_perplexity"] <= found["static_perplexity"]
    assert found["dynamic_perplexity"] <= found["static_perplexity"]
    assert load_model(path).adapt is None  # nothing written without --write
    text = runner.invoke(app, ["tune", str(path), str(files["held"]), "--write"])
    assert text.exit_code == 0, text.stderr
    assert "stored the settings" in text.stderr and "dynamic" in text.stdout
    tuned, trained = load_model(path), load_model(files["model"])
    for k, v in trained.params.items():  # the weights are unchanged
        np.testing.assert_array_equal(tuned.params[k], v)
    assert tuned.adapt["cache"] == found["cache"] and tuned.adapt["dynamic"] == found["dynamic"]
    values = eval_json(files, "--cache", model=path)
    assert values["adapted"]["cache"] == found["cache"]
    assert values["adapted"]["perplexity"] == pytest.approx(found["cache_perplexity"], rel=1e-6)
    values = eval_json(files, "--cache", "--cache-size", "7", model=path)
    assert values["adapted"]["cache"]["size"] == 7  # a value given beats the tuned one
    # both: the pair tuned together, never worse on the tuning text than either alone
    assert found["both_perplexity"] <= min(found["cache_perplexity"], found["dynamic_perplexity"])
    values = eval_json(files, "--cache", "--dynamic", model=path)
    assert values["adapted"]["cache"] == found["both_cache"] == tuned.adapt["both"]
    assert values["adapted"]["dynamic"] == found["both_dynamic"] == tuned.adapt["both_dynamic"]
    assert values["adapted"]["perplexity"] == pytest.approx(found["both_perplexity"], rel=1e-6)


def test_tune_write_refuses_standard_input(files):
    result = runner.invoke(
        app, ["tune", "-", str(files["held"]), "--write"], input=files["model"].read_bytes()
    )
    assert result.exit_code == 2 and "--write" in result.stderr
