"""No command loses a user's file: every command that writes refuses an output that is one of its
inputs (by file identity: a link counts), and replaces an existing file that is not an rnngen file
of the kind it writes only with --force. `-o -` writes the model or corpus to stdout."""

import os

import pytest
from typer.testing import CliRunner

from rnngen.cli.app import app
from rnngen.files.outputs import check_output

runner = CliRunner()
TINY = ["--epochs", "1", "--hidden", "8", "--batch-size", "4", "--seq-len", "8", "-q"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A text, a model trained on it with its log, and a second text."""
    from conftest import write_excerpt

    path = tmp_path_factory.mktemp("outputs")
    write_excerpt(path / "book.txt", 6000)
    write_excerpt(path / "other.txt", 3000)
    args = ["train", str(path / "book.txt"), "-o", str(path / "model.npz"), *TINY]
    result = runner.invoke(app, [*args, "--log-file", str(path / "run.jsonl")])
    assert result.exit_code == 0, result.stderr
    return path


def refused(args, kept, exit_code=2, says=()):
    """Run args; the command must fail with one line naming `says`, and `kept` be unchanged."""
    before = kept.read_bytes()
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == exit_code, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for word in says:
        assert str(word) in result.stderr, result.stderr
    assert kept.read_bytes() == before
    return result


def test_an_output_that_is_the_input_is_refused(folder):
    book, other, model = folder / "book.txt", folder / "other.txt", folder / "model.npz"
    log, link = folder / "run.jsonl", folder / "link.txt"
    if not link.exists():
        os.symlink(book, link)
    cases = [  # (command line, the file it must keep)
        (["encode", book, "-o", book], book),
        (["encode", link, "-o", book], book),  # another name for the same file
        (["train", book, "-o", book, *TINY], book),
        (["train", link, "-o", book, *TINY], book),
        (["train", other, "--valid", book, "-o", book, *TINY], book),
        (["train", other, "-o", folder / "m2.npz", "--checkpoint", other, *TINY], other),
        (["train", other, "-o", folder / "m2.npz", "--log-file", other, *TINY], other),
        (["tune", model, model, "--write"], model),
        (["tune", book, book, "--write"], book),
        (["plot", log, "--png", log], log),
    ]
    for args, kept in cases:
        refused(args, kept, says=["same file"])


@pytest.mark.parametrize(
    "args, option",
    [
        (["encode", "{book}", "-o", "{other}"], "-o"),
        (["train", "{book}", "-o", "{other}", *TINY], "-o"),
        (
            [
                "train",
                "{book}",
                "-o",
                "{tmp}/m.npz",
                "--checkpoint",
                "{other}",
                "--checkpoint-every",
                "5",
                *TINY,
            ],
            "--checkpoint",
        ),
        (["train", "{book}", "-o", "{tmp}/m.npz", "--log-file", "{other}", *TINY], "--log-file"),
        (["train", "{book}", "-o", "{tmp}/m.npz", "--log-file", "{model}", *TINY], "--log-file"),
        (["plot", "{log}", "--png", "{other}"], "--png"),
    ],
)
def test_replacing_another_kind_of_file_needs_force(folder, tmp_path, args, option):
    names = {
        "book": folder / "book.txt",
        "other": tmp_path / "notes.txt",
        "tmp": tmp_path,
        "model": tmp_path / "model.npz",
        "log": folder / "run.jsonl",
    }
    names["other"].write_text("a text of the user's\n")
    (tmp_path / "model.npz").write_bytes((folder / "model.npz").read_bytes())
    args = [a.format(**{k: str(v) for k, v in names.items()}) for a in args]
    kept = tmp_path / args[args.index(option) + 1]
    refused(args, kept, says=["--force", kept.name])
    if args[0] == "plot":
        pytest.importorskip("matplotlib")
    result = runner.invoke(app, [*args, "--force"])
    assert result.exit_code == 0, result.stderr
    assert kept.read_bytes() != b"a text of the user's\n"


def test_an_rnngen_file_of_the_kind_is_replaced(folder, tmp_path):
    """Writing a new model over a model, appending to a log and a resumed run writing back to its
    checkpoint stay as they were: no --force."""
    book, model, log = folder / "book.txt", tmp_path / "m.npz", tmp_path / "run.jsonl"
    ckpt = tmp_path / "m.ckpt.npz"
    args = ["train", str(book), "-o", str(model), "--log-file", str(log), *TINY]
    for _ in range(2):
        result = runner.invoke(app, [*args, "--checkpoint-every", "5"])
        assert result.exit_code == 0, result.stderr
    resumed = runner.invoke(
        app, ["train", str(book), "--resume", str(ckpt), "-o", str(model), "--epochs", "2", "-q"]
    )
    assert resumed.exit_code == 0, resumed.stderr
    encoded = tmp_path / "book.npz"
    for _ in range(2):
        result = runner.invoke(app, ["encode", str(book), "-o", str(encoded), "-q"])
        assert result.exit_code == 0, result.stderr
    # a corpus is not a model: it is kept unless --force
    refused(["train", book, "-o", encoded, *TINY], encoded, says=["--force"])


def test_the_library_check_compares_files_not_names(tmp_path):
    text = tmp_path / "a.txt"
    text.write_text("words\n")
    with pytest.raises(Exception, match="same file"):
        check_output(tmp_path / "." / "a.txt", "model", [str(text)])
    check_output(tmp_path / "b.npz", "model", [str(text)])  # a new file: nothing to lose
    (tmp_path / "empty").write_bytes(b"")
    check_output(tmp_path / "empty", "model", [])  # an empty file holds nothing to lose


def test_train_to_stdout_pipes_into_sample(folder):
    result = runner.invoke(app, ["train", str(folder / "book.txt"), "-o", "-", *TINY])
    assert result.exit_code == 0, result.stderr
    assert result.stdout_bytes[:4] == b"PK\x03\x04"
    assert not (folder / "-").exists() and not (folder / "-.ckpt.npz").exists()
    sampled = runner.invoke(
        app, ["sample", "-m", "-", "--length", "5", "--seed", "1"], input=result.stdout_bytes
    )
    assert sampled.exit_code == 0, sampled.stderr
    assert sampled.stdout.strip()


def test_encode_to_stdout(folder, tmp_path):
    text = (folder / "book.txt").read_bytes()
    result = runner.invoke(app, ["encode", "-", "-o", "-", "-q"], input=text)
    assert result.exit_code == 0, result.stderr
    assert result.stdout_bytes[:4] == b"PK\x03\x04"
    assert not (folder / "-").exists() and not os.path.exists("-")
    (tmp_path / "c.npz").write_bytes(result.stdout_bytes)
    trained = runner.invoke(app, ["train", str(tmp_path / "c.npz"), "-o", "-", *TINY])
    assert trained.exit_code == 0, trained.stderr


def test_stdout_is_refused_with_json(folder):
    result = runner.invoke(app, ["train", str(folder / "book.txt"), "-o", "-", "--json", *TINY])
    assert result.exit_code == 2 and "--json" in result.stderr
    assert result.stdout == ""
