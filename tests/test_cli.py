"""The command line through Typer's CliRunner (and a real pipe): stdout carries only data,
stderr one-line messages, and each failure its exit code."""

import json
import math
import shlex
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from rnngen import api
from rnngen.cli.app import app
from rnngen.cli.resume import resume_command
from rnngen.files.storage import load_corpus, load_model
from rnngen.text.tokenize import tokenize

runner = CliRunner()
TINY = ["--epochs", "2", "--hidden", "16", "--embed", "8", "--batch-size", "4", "--seq-len", "8"]


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    from conftest import write_excerpt

    path = tmp_path_factory.mktemp("data") / "book.txt"
    write_excerpt(path, 6000)
    return path


@pytest.fixture(scope="module")
def model_file(text_file):
    path = text_file.parent / "model.npz"
    result = runner.invoke(app, ["train", str(text_file), "-o", str(path), *TINY])
    assert result.exit_code == 0, result.stderr
    return path


def assert_one_line_error(result, code, *fragments):
    assert result.exit_code == code, (result.exit_code, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rnngen: error: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_help_lists_every_command():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("encode", "train", "sample", "eval", "score", "info", "plot"):
        assert command in result.stdout
    assert "Exit codes" in result.stdout


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.startswith("rnngen ")


def test_encode(text_file, tmp_path):
    out = tmp_path / "book.npz"
    result = runner.invoke(app, ["encode", str(text_file), "-o", str(out), "--max-vocab", "100"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert "tokens" in result.stderr and "vocabulary 101" in result.stderr
    corpus = load_corpus(out)
    assert len(corpus.vocab) == 101 and corpus.unk_rate > 0


def test_encode_stdin(tmp_path):
    out = tmp_path / "c.npz"
    result = runner.invoke(app, ["encode", "-", "-o", str(out), "--level", "char"], input="abca\n")
    assert result.exit_code == 0, result.stderr
    corpus = load_corpus(out)
    assert corpus.tokenizer.level == "char" and len(corpus.ids) == 5


def test_train_writes_model_and_reports_on_stderr(model_file):
    model = load_model(model_file)
    assert model.config.hidden == 16 and model.history["epochs"] == 2
    assert "best_val_ppl" in model.history


def test_train_output_streams(text_file, tmp_path):
    out = tmp_path / "m.npz"
    result = runner.invoke(app, ["train", str(text_file), "-o", str(out), *TINY])
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "epoch   1/2" in result.stderr and "val ppl" in result.stderr
    assert "\x1b[" not in result.stderr  # no escape codes off a terminal
    quiet = runner.invoke(app, ["train", str(text_file), "-o", str(out), "-q", *TINY])
    assert quiet.exit_code == 0 and quiet.stderr == "" and quiet.stdout == ""


def test_train_from_encoded_corpus_and_stdin(text_file, tmp_path):
    encoded = tmp_path / "book.npz"
    assert runner.invoke(app, ["encode", str(text_file), "-o", str(encoded)]).exit_code == 0
    result = runner.invoke(app, ["train", str(encoded), "-o", str(tmp_path / "a.npz"), *TINY])
    assert result.exit_code == 0, result.stderr
    result = runner.invoke(
        app, ["train", "-", "-o", str(tmp_path / "b.npz"), *TINY], input=text_file.read_text()
    )
    assert result.exit_code == 0, result.stderr
    a, b = load_model(tmp_path / "a.npz"), load_model(tmp_path / "b.npz")
    assert a.vocab == b.vocab  # same text, same vocabulary either way
    for k in a.params:  # and the same seed gives the same model
        assert (a.params[k] == b.params[k]).all()


def test_train_rejects_tokenizer_options_for_encoded_corpus(text_file, tmp_path):
    encoded = tmp_path / "book.npz"
    runner.invoke(app, ["encode", str(text_file), "-o", str(encoded)])
    result = runner.invoke(app, ["train", str(encoded), "--level", "char", *TINY])
    assert_one_line_error(result, 2, "already encoded")


@pytest.mark.parametrize(
    "content,code,fragment",
    [
        (None, 66, "does not exist"),
        (b"", 65, "is empty"),
        (b"text\x00\x01\x02binary", 65, "binary"),
        (b"caf\xe9 au lait", 65, "not valid UTF-8 (byte 0xe9 at offset 3)"),
    ],
    ids=["missing", "empty", "binary", "latin-1"],
)
def test_train_bad_input(tmp_path, content, code, fragment):
    path = tmp_path / "in.txt"
    if content is not None:
        path.write_bytes(content)
    out = tmp_path / "m.npz"
    result = runner.invoke(app, ["train", str(path), "-o", str(out), *TINY])
    assert_one_line_error(result, code, fragment)
    assert not out.exists()


def test_train_too_short_text(tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("Just four words.")
    result = runner.invoke(app, ["train", str(path), "-o", str(tmp_path / "m.npz"), *TINY])
    assert_one_line_error(result, 65, "too few")


def test_train_unwritable_output_fails_before_training(text_file, tmp_path):
    out = tmp_path / "missing-folder" / "m.npz"
    result = runner.invoke(app, ["train", str(text_file), "-o", str(out), *TINY])
    assert_one_line_error(result, 73, "cannot write")


def test_sample(model_file):
    args = ["sample", "-m", str(model_file), "--start", "Wendy", "--length", "30", "--seed", "3"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("Wendy") and result.stdout.endswith("\n")
    assert result.stderr == ""
    again = runner.invoke(app, args)
    assert again.stdout == result.stdout  # same seed, same text
    other = runner.invoke(app, args[:-1] + ["4"])
    assert other.stdout != result.stdout


def test_sample_greedy_and_top_k(model_file):
    base = ["sample", "-m", str(model_file), "--start", "the", "--length", "20"]
    a = runner.invoke(app, base + ["--greedy", "--seed", "1"])
    b = runner.invoke(app, base + ["--greedy", "--seed", "2"])
    assert a.exit_code == 0 and a.stdout == b.stdout  # greedy ignores the seed
    top1 = runner.invoke(app, base + ["--top-k", "1", "--seed", "5"])
    assert top1.stdout == a.stdout  # top-1 sampling is greedy


def test_sample_start_from_stdin(model_file):
    result = runner.invoke(
        app,
        ["sample", "-m", str(model_file), "--length", "5", "--seed", "0"],
        input="the Darling\n",
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("the Darling")


def test_sample_without_start_draws_a_word(model_file):
    result = runner.invoke(app, ["sample", "-m", str(model_file), "--length", "5", "--seed", "0"])
    assert result.exit_code == 0 and len(result.stdout.split()) >= 2


def test_sample_unknown_start_word(model_file):
    result = runner.invoke(app, ["sample", "-m", str(model_file), "--start", "Wendyy"])
    assert_one_line_error(result, 65, "'Wendyy' is not in the model's vocabulary", "Wendy")


def test_sample_missing_model(tmp_path):
    result = runner.invoke(app, ["sample", "-m", str(tmp_path / "none.npz")])
    assert_one_line_error(result, 66, "does not exist")


def test_sample_corrupt_model(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    result = runner.invoke(app, ["sample", "-m", str(bad)])
    assert_one_line_error(result, 65, "bad.npz", "not an rnngen file")


def test_eval(model_file, text_file):
    result = runner.invoke(app, ["eval", str(text_file), "-m", str(model_file)])
    assert result.exit_code == 0, result.stderr
    assert "perplexity" in result.stdout and result.stderr == ""
    as_json = runner.invoke(
        app, ["eval", "-", "-m", str(model_file), "--json"], input=text_file.read_text()
    )
    values = json.loads(as_json.stdout)
    assert {"tokens", "oov_rate", "cross_entropy", "perplexity"} <= set(values)
    assert values["oov_rate"] == 0 and values["perplexity"] > 1


def test_eval_counts_unknown_words(model_file):
    result = runner.invoke(
        app, ["eval", "-", "-m", str(model_file), "--json"], input="Wendy zyzzyva was."
    )
    assert json.loads(result.stdout)["oov_rate"] == pytest.approx(1 / 4)


def test_sample_into_closed_pipe_is_quiet(model_file):
    """`rnngen sample ... | head -1` must end without a traceback or error message."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "rnngen", "sample", "-m", str(model_file), "--length", "30000",
         "--seed", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    proc.stdout.readline()
    proc.stdout.close()
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert stderr == b""


@pytest.mark.parametrize(
    "options",
    [
        # this tiny 2-layer LSTM learns context more slowly from a unigram output bias: after 8
        # epochs 199 against 140 from a zero bias (the unigram figure is 220)
        ["--cell", "lstm", "--layers", "2", "--dropout", "0.3", "--lr", "0.01", "--zero-bias"],
        ["--cell", "gru", "--tie-weights", "--embed", "16", "--optimizer", "sgd"],
        ["--cell", "rnn", "--layers", "2", "--optimizer", "adagrad", "--lr", "0.05"],
    ],
    ids=["lstm", "gru-tied-sgd", "rnn-adagrad"],
)
def test_cells_train_sample_and_eval(text_file, tmp_path, options):
    """Each cell and optimiser learns more than word frequencies: after 8 epochs on the whole
    text, its perplexity on that text is well under the text's own unigram perplexity (the best
    any model blind to context can do; here about 205, with 495 words), and a sample is words of
    the vocabulary."""
    out = tmp_path / "m.npz"
    small = ["--epochs", "8", "--val-frac", "0", "--hidden", "16", "--embed", "8",
             "--batch-size", "4", "--seq-len", "8"]  # fmt: skip
    assert (
        runner.invoke(app, ["train", str(text_file), "-o", str(out), *small, *options]).exit_code
        == 0
    )
    model = load_model(out)
    assert model.config.cell == options[1]
    sample = runner.invoke(
        app, ["sample", "-m", str(out), "--start", "the", "--length", "10", "--seed", "1"]
    )
    assert sample.exit_code == 0 and sample.stdout.startswith("the")
    # The output's last line end is the printer's, not a token (with joined lines the model may
    # never have seen a `\n`); it also stands for a paragraph break generated last, if any.
    words = tokenize(sample.stdout.removesuffix("\n"), model.tokenizer)
    assert len(words) >= 10 and all(w in model.vocab and w != "<unk>" for w in words), words
    assert len({w for w in words if w.isalpha()}) >= 5  # not one word over and over
    result = runner.invoke(app, ["eval", str(text_file), "-m", str(out), "--json"])
    tokens = tokenize(text_file.read_text(), model.tokenizer)
    counts = np.array(list(Counter(tokens).values()), dtype=float)
    unigram = math.exp(-(counts * np.log(counts / len(tokens))).sum() / len(tokens))
    assert 1 < json.loads(result.stdout)["perplexity"] < 0.9 * unigram


def test_separate_validation_file(text_file, tmp_path):
    valid = tmp_path / "valid.txt"
    valid.write_text("Wendy said that the boys were lost.\n" * 20)
    out = tmp_path / "m.npz"
    result = runner.invoke(
        app, ["train", str(text_file), "-o", str(out), "--valid", str(valid), *TINY]
    )
    assert result.exit_code == 0, result.stderr
    history = load_model(out).history
    assert history["val_tokens"] == 180  # 9 tokens a line, including the line break
    assert history["train_tokens"] > 1000  # the whole training text, no tail held out


@pytest.mark.parametrize(
    "options,fragment",
    [
        (["--cell", "transformer"], "--cell must be one of rnn, lstm, gru"),
        (["--tie-weights", "--embed", "8", "--hidden", "16"], "--tie-weights needs"),
        (["--dropout", "1.5"], "--dropout"),
        (["--optimizer", "rmsprop"], "--optimizer must be one of"),
        (["--classes", "10"], "--classes is for --softmax class"),
        (["--checkpoint-every", "-1"], "--checkpoint-every must not be negative"),
    ],
)
def test_train_bad_options(text_file, tmp_path, options, fragment):
    result = runner.invoke(app, ["train", str(text_file), "-o", str(tmp_path / "m.npz"), *options])
    assert_one_line_error(result, 2, fragment)


@pytest.mark.parametrize(
    "options,option",
    [
        (["--hidden", "0"], "--hidden"),
        (["--embed", "0"], "--embed"),
        (["--layers", "0"], "--layers"),
        (["--cell", "transformer"], "--cell"),
        (["--softmax", "hierarchical"], "--softmax"),
        (["--optimizer", "rmsprop"], "--optimizer"),
        (["--dtype", "float16"], "--dtype"),
        (["--level", "byte"], "--level"),
        (["--tokenizer", "bpe"], "--tokenizer"),
        (["--device", "tpu"], "--device"),
        (["--encoding", "no-such-codec"], "--encoding"),
        (["--sparse-embedding", "--dense-embedding"], "--dense-embedding"),
        (["--zero-bias", "--unigram-bias"], "--unigram-bias"),
    ],
)
def test_bad_option_messages_name_the_option(text_file, tmp_path, options, option):
    result = runner.invoke(app, ["train", str(text_file), "-o", str(tmp_path / "m.npz"), *options])
    assert_one_line_error(result, 2, option)


def test_stream_flags(model_file):
    args = ["sample", "-m", str(model_file), "--start", "Wendy", "--length", "5", "--seed", "1"]
    streamed, default = runner.invoke(app, [*args, "--stream"]), runner.invoke(app, args)
    assert streamed.exit_code == 0 and streamed.stdout == default.stdout
    assert runner.invoke(app, [*args, "--no-stream"]).stdout == default.stdout
    assert_one_line_error(runner.invoke(app, [*args, "--stream", "--no-stream"]), 2, "--stream")


def test_dense_embedding_is_still_accepted(text_file, tmp_path):
    out = tmp_path / "m.npz"
    args = ["train", str(text_file), "-o", str(out), *TINY, "--epochs", "1", "--dense-embedding"]
    assert runner.invoke(app, args).exit_code == 0
    assert load_model(out).history is not None


@pytest.mark.parametrize(
    "sizes,embed,tied",
    [
        (["--hidden", "12"], 12, True),  # the embedding defaults to the hidden size, tied
        (["--hidden", "12", "--untie-weights"], 12, False),
        (["--hidden", "12", "--embed", "12", "--tie-weights"], 12, True),
        (["--hidden", "12", "--embed", "8"], 8, False),  # unequal sizes cannot share
    ],
)
def test_weights_are_tied_by_default_where_the_sizes_allow(text_file, tmp_path, sizes, embed, tied):
    out = tmp_path / "m.npz"
    args = ["train", str(text_file), "-o", str(out), "--epochs", "1", "--batch-size", "4", *sizes]
    assert runner.invoke(app, args).exit_code == 0
    cfg = load_model(out).config
    assert (cfg.embed, cfg.hidden, cfg.tie_weights) == (embed, 12, tied)


def test_tie_and_untie_contradict(text_file, tmp_path):
    args = ["train", str(text_file), "-o", str(tmp_path / "m.npz"), "--tie-weights"]
    assert_one_line_error(runner.invoke(app, [*args, "--untie-weights"]), 2, "contradict")


def test_too_short_a_text_names_what_it_needs(model_file, tmp_path):
    one = tmp_path / "one.txt"
    one.write_text("oneword")  # one token: nothing to predict
    result = runner.invoke(app, ["eval", str(one), "-m", str(model_file)])
    assert_one_line_error(result, 65, "1 token", "at least 2")
    assert "--batch-size" not in result.stderr  # eval has no such option
    result = runner.invoke(app, ["train", str(one), "-o", str(tmp_path / "m.npz"), *TINY])
    assert_one_line_error(result, 65, "--batch-size")


@pytest.mark.parametrize(
    "args",
    [
        ["eval", "{book}", "-m", "{folder}"],
        ["eval", "{folder}", "-m", "{model}"],
        ["score", "{folder}", "-m", "{model}"],
        ["encode", "{folder}", "-o", "{out}"],
        ["train", "{book}", "-o", "{out}", "--valid", "{folder}"],
        ["info", "{folder}"],
        ["sample", "-m", "{folder}"],
        ["train", "{folder}", "-o", "{out}"],
        ["train", "{book}", "-o", "{out}", "--resume", "{folder}"],
        ["plot", "{folder}"],
    ],
)
def test_a_folder_for_a_file_is_a_missing_input(args, text_file, model_file, tmp_path):
    names = {"book": text_file, "model": model_file, "folder": tmp_path, "out": tmp_path / "m.npz"}
    result = runner.invoke(app, [a.format(**names) for a in args])
    assert_one_line_error(result, 66, "is a folder")


def test_class_softmax(text_file, tmp_path):
    out = tmp_path / "m.npz"
    args = ["train", str(text_file), "-o", str(out), *TINY, "--softmax", "class", "--classes", "7"]
    assert runner.invoke(app, args).exit_code == 0
    model = load_model(out)
    assert model.config.softmax == "class" and model.config.n_classes == 7
    assert model.params["cls.W"].shape == (16, 7)
    sample = runner.invoke(app, ["sample", "-m", str(out), "--start", "Wendy", "--length", "10"])
    assert sample.exit_code == 0 and sample.stdout.startswith("Wendy")
    values = json.loads(
        runner.invoke(app, ["eval", str(text_file), "-m", str(out), "--json"]).stdout
    )
    assert 1 < values["perplexity"] < len(model.vocab)


def test_resume_refuses_model_and_training_options_that_differ_from_the_checkpoint(
    text_file, tmp_path
):
    """--resume takes the checkpoint's settings: options that contradict it are exit 2, naming
    them; the same values, or options not given, are fine."""
    small = ["--hidden", "16", "--embed", "8", "--batch-size", "4", "--seq-len", "8"]
    first = ["train", str(text_file), "-q", "-o", str(tmp_path / "m.npz"), *small]
    assert runner.invoke(app, [*first, "--epochs", "1", "--checkpoint-every", "5"]).exit_code == 0
    resume = ["train", str(text_file), "-q", "-o", str(tmp_path / "m.npz"), "--epochs", "2",
              "--resume", str(tmp_path / "m.ckpt.npz")]  # fmt: skip
    result = runner.invoke(app, [*resume, "--cell", "gru", "--hidden", "512"])
    assert_one_line_error(result, 2, "--cell gru (the checkpoint's: rnn)",
                          "--hidden 512 (the checkpoint's: 16)")  # fmt: skip
    result = runner.invoke(app, [*resume, "--classes", "5"])
    assert_one_line_error(result, 2, "--classes 5 (the checkpoint's: None)")
    result = runner.invoke(app, [*resume, "--dense-embedding", "--lr", "0.5", "--seed", "0"])
    assert_one_line_error(result, 2, "--lr 0.5 (the checkpoint's: 0.002)")
    assert "--seed" not in result.stderr and "--dense-embedding" not in result.stderr
    result = runner.invoke(app, [*resume, "--sparse-embedding"])  # lazy Adam on a dense one
    assert_one_line_error(result, 2, "--sparse-embedding True (the checkpoint's: False)")
    result = runner.invoke(app, [*resume, "--lines", "keep"])
    assert_one_line_error(result, 2, "--lines keep (the checkpoint's: auto)")
    result = runner.invoke(app, [*resume, "--state-reset", "0", "--zero-bias"])
    assert_one_line_error(result, 2, "--state-reset 0.0 (the checkpoint's: 0.05)",
                          "--zero-bias True (the checkpoint's: False)")  # fmt: skip
    same = runner.invoke(
        app, [*resume, "--cell", "rnn", *small, "--dropout", "0.3", "--lines", "auto"]
    )
    assert same.exit_code == 0, same.stderr
    assert load_model(tmp_path / "m.npz").history["epochs"] == 2


def test_resume_command_parses_back_to_the_options_it_was_given():
    """The printed resume command, split as a shell splits it, gives `train` the same values."""
    line = resume_command(
        "c k.npz", "-odd $name.txt", "out dir/m.npz",
        {"--valid": "a;b.txt", "--log-file": "it's.jsonl", "--json": True, "--checkpoint": None,
         "--errors": "replace", "--checkpoint-every": 50},
    )  # fmt: skip
    words = shlex.split(line)
    assert words[:2] == ["rnngen", "train"]
    train = typer.main.get_command(app).commands["train"]
    params = train.make_context("train", words[2:]).params
    assert params["input"] == "./-odd $name.txt" and params["out"] == "out dir/m.npz"
    assert params["valid"] == "a;b.txt" and params["log_file"] == "it's.jsonl"
    assert params["as_json"] and params["errors"] == "replace" and params["checkpoint"] is None
    assert params["checkpoint_every"] == 50 and params["resume"] == "c k.npz"
    assert shlex.split(resume_command("c.npz", None, "m.npz")) == [
        "rnngen", "train", "-o", "m.npz", "--resume", "c.npz"
    ]  # fmt: skip


# --- conventions: -q, -v, errors, completion, help, terminals ---------------------------------

COMMANDS = ("encode", "train", "sample", "eval", "score", "info", "plot")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example_and_q_v(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "Example: rnngen " + command in result.stdout or "| rnngen " + command in result.stdout
    assert "--quiet" in result.stdout and "--verbose" in result.stdout


def test_quiet_leaves_stderr_empty_for_every_command(model_file, text_file, tmp_path):
    log = tmp_path / "run.jsonl"
    train = ["train", str(text_file), "-o", str(tmp_path / "m.npz"), "--log-file", str(log), *TINY]
    runs = [
        ["encode", str(text_file), "-o", str(tmp_path / "c.npz")],
        train,
        ["sample", "-m", str(model_file), "--start", "Wendy", "--length", "5"],
        ["eval", str(text_file), "-m", str(model_file)],
        ["score", str(text_file), "-m", str(model_file)],
        ["info", str(model_file)],
        ["plot", str(log)],
    ]
    for args in runs:
        loud = runner.invoke(app, args)
        quiet = runner.invoke(app, [*args, "-q"])
        assert loud.exit_code == 0 and quiet.exit_code == 0, (args, quiet.stderr)
        assert quiet.stderr == "", args
        if args[0] not in ("sample", "train"):  # random start times and seeds aside
            assert quiet.stdout == loud.stdout, args


def test_quiet_and_verbose_contradict(model_file):
    result = runner.invoke(app, ["info", str(model_file), "-q", "-v"])
    assert_one_line_error(result, 2, "contradict")


def test_verbose_adds_detail(model_file, text_file, tmp_path):
    sample = runner.invoke(app, ["sample", "-m", str(model_file), "--length", "5", "-v"])
    assert sample.exit_code == 0 and "seed" in sample.stderr
    seed = sample.stderr.split("seed ")[1].split()[0]  # the seed it drew reproduces the text
    again = runner.invoke(app, ["sample", "-m", str(model_file), "--length", "5", "--seed", seed])
    assert again.stdout == sample.stdout
    train = runner.invoke(
        app, ["train", str(text_file), "-o", str(tmp_path / "m.npz"), "-v", *TINY]
    )
    assert '"cell": "rnn"' in train.stderr and '"seq_len": 8' in train.stderr
    score = runner.invoke(app, ["score", str(text_file), "-m", str(model_file), "-v"])
    assert "lines" in score.stderr and "tokens in" in score.stderr


def test_unexpected_error_is_one_line_or_a_traceback_with_verbose(model_file, monkeypatch):

    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero\nsecond line")

    monkeypatch.setattr(api, "model_info", broken)
    result = runner.invoke(app, ["info", str(model_file)])
    assert result.exit_code == 1 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert "unexpected ZeroDivisionError: division by zero" in lines[0]
    assert "bug" in lines[0] and "-v" in lines[0]
    verbose = runner.invoke(app, ["info", str(model_file), "-v"])
    assert verbose.exit_code == 1 and "Traceback (most recent call last)" in verbose.stderr
    assert "ZeroDivisionError" in verbose.stderr.strip().splitlines()[-1]


def test_shell_completion(monkeypatch):
    help_text = runner.invoke(app, ["--help"]).stdout
    assert "--install-completion" in help_text and "--show-completion" in help_text
    # Typer finds the shell among the process's ancestors; a test run started outside any shell
    # (a CI runner, a background job) has none, so the shell is named here.
    import typer.completion

    monkeypatch.setattr(typer.completion, "_get_shell_name", lambda: "bash")
    result = runner.invoke(app, ["--show-completion"], prog_name="rnngen")
    assert result.exit_code == 0 and "_RNNGEN_COMPLETE" in result.stdout
    assert "complete " in result.stdout


def test_every_input_reads_stdin(text_file, tmp_path):
    text = text_file.read_text()
    out = tmp_path / "m.npz"
    result = runner.invoke(
        app, ["train", str(text_file), "-o", str(out), "--valid", "-", *TINY], input=text[:2000]
    )
    assert result.exit_code == 0, result.stderr
    both = runner.invoke(app, ["train", "-", "--valid", "-", *TINY], input=text)
    assert_one_line_error(both, 2, "standard input")


def test_training_display_on_dumb_and_no_color_terminals(monkeypatch):
    """A live bar only on a terminal that is not dumb; NO_COLOR keeps the bar, drops colours."""
    import io

    from rich.console import Console

    from rnngen.cli.progress import TrainingDisplay
    from rnngen.training.train import Progress

    def run_display(env):
        buffer = io.StringIO()
        console = Console(file=buffer, force_terminal=True, width=100, _environ=env)
        display = TrainingDisplay("test", console=console)
        with display:
            display(Progress(1, 2, 5, 10, 4.0, 1000.0, 1.0))
        return display, buffer.getvalue()

    dumb, _ = run_display({"TERM": "dumb"})
    assert not dumb.live
    live, output = run_display({"TERM": "xterm-256color"})
    assert live.live and "\x1b[" in output
    plain, output = run_display({"TERM": "xterm-256color", "NO_COLOR": "1"})
    assert plain.live and "\x1b[3" not in output and "\x1b[9" not in output  # no colours


def test_progress_does_not_swallow_stdout(text_file, tmp_path):
    """stderr a terminal (a live bar), stdout a pipe: the data still reaches the pipe."""
    import os
    import pty

    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env["TERM"] = "xterm-256color"
    args = ["train", str(text_file), "-o", str(tmp_path / "m.npz"), "--json", *TINY]
    proc = subprocess.Popen(
        [sys.executable, "-m", "rnngen", *args], stdout=subprocess.PIPE, stderr=follower, env=env
    )
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    stdout = proc.stdout.read()
    proc.wait(timeout=60)
    os.close(leader)
    assert proc.returncode == 0
    assert json.loads(stdout)["epochs"] == 2  # one JSON object, nothing else
    assert b"\x1b[" in seen and b"epoch" in seen  # the bar ran on the terminal


def test_training_display_leaves_stdout_alone():
    import io

    from rich.console import Console

    from rnngen.cli.progress import TrainingDisplay

    before = sys.stdout
    console = Console(file=io.StringIO(), force_terminal=True)
    with TrainingDisplay("test", console=console) as display:
        assert display.live and sys.stdout is before


@pytest.mark.parametrize(
    "options, option",
    [
        (["--temperature", "nan"], "--temperature"),
        (["--temperature", "inf"], "--temperature"),
        (["--temperature", "-1"], "--temperature"),
        (["--top-p", "nan"], "--top-p"),
        (["--top-p", "-0.5"], "--top-p"),
        (["--top-p", "1.5"], "--top-p"),
        (["--min-p", "3"], "--min-p"),
        (["--repeat-penalty", "0"], "--repeat-penalty"),
        (["--top-k", "-2"], "--top-k"),
        (["--repeat-last-n", "8"], "--repeat-last-n"),
        (["--greedy", "--temperature", "0.5"], "--greedy"),
        (["--greedy", "--top-k", "5"], "--greedy"),
        (["--greedy", "--top-p", "0.9"], "--greedy"),
        (["--greedy", "--repeat-penalty", "1.1"], "--greedy"),
        (["--width", "-1"], "--width"),
    ],
)
def test_sample_refuses_bad_sampler_options(model_file, options, option):
    result = runner.invoke(app, ["sample", "-m", str(model_file), "--start", "the", *options])
    assert_one_line_error(result, 2, option)


def test_sample_temperature_zero_is_greedy(model_file):
    base = ["sample", "-m", str(model_file), "--start", "the", "--length", "20"]
    greedy = runner.invoke(app, base + ["--greedy"])
    zero = runner.invoke(app, base + ["--temperature", "0", "--seed", "4"])
    assert zero.exit_code == 0 and zero.stdout == greedy.stdout


def test_sample_with_the_whole_chain(model_file):
    args = ["sample", "-m", str(model_file), "--start", "the", "--length", "40", "--seed", "2",
            "--top-k", "20", "--top-p", "0.9", "--min-p", "0.05", "--temperature", "0.8",
            "--repeat-penalty", "1.1", "--repeat-last-n", "16"]  # fmt: skip
    a, b = runner.invoke(app, args), runner.invoke(app, args)
    assert a.exit_code == 0, a.stderr
    assert a.stdout == b.stdout and a.stdout.startswith("the")


def test_sample_on_a_terminal_wraps_to_its_width(model_file, monkeypatch):
    from rnngen.cli import sample as cli

    args = ["sample", "-m", str(model_file), "--start", "the", "--length", "80", "--seed", "1"]
    plain = runner.invoke(app, args).stdout  # not a terminal: no wrapping
    monkeypatch.setattr(cli, "terminal_width", lambda: 24)
    wrapped = runner.invoke(app, args).stdout
    assert wrapped != plain and wrapped.split() == plain.split()
    assert all(len(line) <= 24 or " " not in line for line in wrapped.splitlines())
    assert runner.invoke(app, [*args, "--width", "0"]).stdout == plain
