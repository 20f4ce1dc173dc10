"""Numeric options out of their range: each is one line on stderr naming the option, exit code 2,
and nothing done (no model, corpus, text or chart written)."""

import pytest
from typer.testing import CliRunner

from rnngen.cli.app import app

runner = CliRunner()
TINY = ["--epochs", "1", "--hidden", "8", "--embed", "8", "--batch-size", "4", "--seq-len", "8"]


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    from conftest import write_excerpt

    path = tmp_path_factory.mktemp("data") / "book.txt"
    write_excerpt(path, 6000)
    return path


@pytest.fixture(scope="module")
def trained(text_file):
    """A model file and the training log it was written with."""
    model, log = text_file.parent / "model.npz", text_file.parent / "run.jsonl"
    args = ["train", str(text_file), "-o", str(model), "--log-file", str(log), "-q", *TINY]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.stderr
    return model, log


def assert_usage_error(result, option):
    assert result.exit_code == 2, (result.exit_code, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rnngen: error: "), result.stderr
    assert option in lines[0], lines[0]


VOCAB_OPTIONS = [
    (["--max-vocab", "0"], "--max-vocab"),
    (["--max-vocab", "-1"], "--max-vocab"),
    (["--min-count", "0"], "--min-count"),
    (["--min-count", "-2"], "--min-count"),
]


@pytest.mark.parametrize("options,option", VOCAB_OPTIONS)
def test_encode_refuses(text_file, tmp_path, options, option):
    out = tmp_path / "c.npz"
    assert_usage_error(
        runner.invoke(app, ["encode", str(text_file), "-o", str(out), *options]), option
    )
    assert not out.exists()


@pytest.mark.parametrize(
    "options,option",
    [
        *VOCAB_OPTIONS,
        (["--softmax", "class", "--classes", "0"], "--classes"),
        (["--softmax", "class", "--classes", "-3"], "--classes"),
        (["--softmax", "class", "--classes", "100000"], "--classes"),
        (["--clip", "-1"], "--clip"),
        (["--clip", "nan"], "--clip"),
        (["--clip", "inf"], "--clip"),
        (["--lr", "nan"], "--lr"),
        (["--lr", "inf"], "--lr"),
        (["--lr-decay", "nan"], "--lr-decay"),
        (["--lr-decay", "inf"], "--lr-decay"),
        (["--seed", "-1"], "--seed"),
    ],
)
def test_train_refuses(text_file, tmp_path, options, option):
    out = tmp_path / "m.npz"
    args = ["train", str(text_file), "-o", str(out), *TINY, *options]
    assert_usage_error(runner.invoke(app, args), option)
    assert not out.exists()


def test_classes_names_the_vocabulary_size(text_file, tmp_path):
    args = ["train", str(text_file), "-o", str(tmp_path / "m.npz"), "--softmax", "class"]
    result = runner.invoke(app, [*args, "--classes", "100000"])
    assert_usage_error(result, "the vocabulary size")


@pytest.mark.parametrize(
    "options",
    [
        ["--max-vocab", "1", "--min-count", "1"],
        ["--clip", "0", "--lr-decay", "1", "--seed", "0"],
    ],
)
def test_the_edges_of_the_ranges_are_accepted(text_file, tmp_path, options):
    out = tmp_path / "m.npz"
    result = runner.invoke(app, ["train", str(text_file), "-o", str(out), "-q", *TINY, *options])
    assert result.exit_code == 0, result.stderr
    assert out.exists()


def test_classes_up_to_the_vocabulary_size_are_accepted(text_file, tmp_path):
    out = tmp_path / "m.npz"
    args = ["train", str(text_file), "-o", str(out), "-q", *TINY, "--max-vocab", "20"]
    args += ["--softmax", "class"]
    for classes in ("1", "21"):  # 20 words and <unk>
        assert runner.invoke(app, [*args, "--classes", classes]).exit_code == 0
    assert_usage_error(runner.invoke(app, [*args, "--classes", "22"]), "--classes")


def test_sample_refuses_a_negative_seed(trained):
    model, _ = trained
    result = runner.invoke(app, ["sample", "-m", str(model), "--seed", "-1", "--start", "the"])
    assert_usage_error(result, "--seed")


def test_info_refuses_a_negative_top(trained):
    model, _ = trained
    assert_usage_error(runner.invoke(app, ["info", str(model), "--top", "-1"]), "--top")
    assert runner.invoke(app, ["info", str(model), "--top", "0"]).exit_code == 0


@pytest.mark.parametrize(
    "options,option",
    [
        (["--width", "0"], "--width"),
        (["--width", "-5"], "--width"),
        (["--width", "29"], "--width"),
        (["--height", "0"], "--height"),
        (["--height", "3"], "--height"),
    ],
)
def test_plot_refuses(trained, options, option):
    _, log = trained
    assert_usage_error(runner.invoke(app, ["plot", str(log), *options]), option)


def test_plot_smallest_chart_is_accepted(trained):
    _, log = trained
    result = runner.invoke(app, ["plot", str(log), "--width", "30", "--height", "4"])
    assert result.exit_code == 0, result.stderr
    assert max(len(line) for line in result.stdout.splitlines()) <= 30
