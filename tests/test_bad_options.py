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


# Every setting a library config checks, given a bad value on each command that takes it: the
# error names the flag the user typed (the configs name their fields; cli/options.py FLAGS maps).
MODEL_TRAIN_OPTIONS = [
    (["--hidden", "0"], "--hidden"),
    (["--embed", "0"], "--embed"),
    (["--layers", "0"], "--layers"),
    (["--dropout", "1"], "--dropout"),
    (["--cell", "transformer"], "--cell"),
    (["--softmax", "mixture"], "--softmax"),
    (["--tie-weights", "--embed", "4"], "--tie-weights"),
    (["--optimizer", "lion"], "--optimizer"),
    (["--dtype", "float16"], "--dtype"),
    (["--val-frac", "1"], "--val-frac"),
    (["--epochs", "0"], "--epochs"),
    (["--batch-size", "0"], "--batch-size"),
    (["--seq-len", "0"], "--seq-len"),
    (["--val-every", "3"], "--val-every"),
    (["--patience", "-1"], "--patience"),
    (["--state-reset", "2"], "--state-reset"),
    (["--level", "byte"], "--level"),
    (["--tokenizer", "bpe"], "--tokenizer"),
    (["--lines", "sometimes"], "--lines"),
    (["--level", "char", "--tokenizer", "whitespace"], "--tokenizer"),
]


@pytest.mark.parametrize("options,option", MODEL_TRAIN_OPTIONS)
def test_train_names_the_flag_of_each_setting(text_file, tmp_path, options, option):
    out = tmp_path / "m.npz"
    args = ["train", str(text_file), "-o", str(out), *TINY, *options]
    assert_usage_error(runner.invoke(app, args), option)
    assert not out.exists()


ADAPT_OPTIONS = [
    (["--cache-size", "0"], "--cache-size"),
    (["--cache-theta", "-1"], "--cache-theta"),
    (["--cache-lambda", "1"], "--cache-lambda"),
    (["--dynamic-lr", "-1"], "--dynamic-lr"),
    (["--dynamic-decay", "2"], "--dynamic-decay"),
    (["--dynamic-len", "0"], "--dynamic-len"),
]
SAMPLING_OPTIONS = [
    (["--temperature", "-1"], "--temperature"),
    (["--top-k", "-1"], "--top-k"),
    (["--top-p", "2"], "--top-p"),
    (["--min-p", "2"], "--min-p"),
    (["--repeat-penalty", "0"], "--repeat-penalty"),
    (["--repeat-penalty", "1.1", "--repeat-last-n", "-2"], "--repeat-last-n"),
    (["--repeat-last-n", "5"], "--repeat-last-n"),
    (["--greedy", "--top-k", "5"], "--top-k"),
]
CACHE_ONLY = [o for o in ADAPT_OPTIONS if o[1].startswith("--cache")]


@pytest.mark.parametrize(
    "command,options,option",
    [
        *(("sample", *o) for o in ADAPT_OPTIONS + SAMPLING_OPTIONS),
        *(("eval", *o) for o in ADAPT_OPTIONS),
        *(("score", *o) for o in CACHE_ONLY),
    ],
)
def test_reading_commands_name_the_flag_of_each_setting(trained, command, options, option):
    model, _ = trained
    args = [command, "-m", str(model), *options]
    args += ["--start", "the"] if command == "sample" else ["-"]
    result = runner.invoke(app, args, input="the end of the story\n")
    assert_usage_error(result, option)
    assert "." not in result.stderr.split(":")[2].split()[0]  # a flag, not a field like cache.size


def test_a_model_files_setting_is_named_as_the_files(trained, tmp_path):
    """A bad tuned setting stored in a model file is the file's problem, named as its setting."""
    import json

    import numpy as np

    model, _ = trained
    with np.load(model) as data:
        arrays = dict(data)
    meta = json.loads(arrays["meta"].item())
    meta["adapt"] = {"dynamic": {"lr": 0.001, "decay": 0.0001, "length": 0}}
    arrays["meta"] = np.array(json.dumps(meta))
    bad = tmp_path / "bad.npz"
    np.savez(bad, **arrays)
    result = runner.invoke(app, ["eval", "-", "-m", str(bad), "--dynamic"], input="a text\n")
    assert result.exit_code == 65, result.stderr
    assert "the model file's tuned dynamic.length must be" in result.stderr
    assert "--dynamic-len" not in result.stderr


@pytest.mark.parametrize(
    "args, says, suggests",
    [
        (["sample", "--bogus"], "--bogus is not an option", None),
        (["sample", "--lenght", "3"], "--lenght is not an option", "--length"),
        (["sample", "--length", "abc"], "--length", None),
        (["smaple"], "'smaple' is not an rnngen command", "sample"),
        (["frobnicate"], "'frobnicate' is not an rnngen command", None),
        (["encode"], "missing argument", None),
    ],
)
def test_usage_errors_are_one_line(args, says, suggests):
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rnngen: error: "), result.stderr
    assert says in lines[0]
    if suggests is None:
        assert "did you mean" not in lines[0]
    else:
        assert f"did you mean {suggests}?" in lines[0]
