"""Messages name things as the user knows them: standard input as "standard input" (never the
temporary file it is spooled to), and an empty input to `score` is a note, not silence."""

import re

import pytest
from typer.testing import CliRunner

from rnngen.cli.app import app

runner = CliRunner()


@pytest.mark.parametrize(
    "args, data",
    [
        (["sample", "-m", "-"], bytes(range(256)) * 4),  # random bytes
        (["info", "-"], b"PK\x03\x04 not really a zip archive"),
        (["eval", "book.txt", "-m", "-"], b"\x00" * 100),
    ],
    ids=["random bytes", "a broken zip", "zeros"],
)
def test_a_bad_model_on_stdin_is_named_standard_input(args, data):
    result = runner.invoke(app, args, input=data)
    assert result.exit_code == 65, result.stderr
    assert "standard input" in result.stderr
    assert not re.search(r"/tmp|rnngen-|standard-input", result.stderr), result.stderr


def test_scoring_nothing_says_so(tmp_path):
    from conftest import write_excerpt

    book = write_excerpt(tmp_path / "book.txt", 6000)
    model = tmp_path / "m.npz"
    tiny = ["--epochs", "1", "--hidden", "8", "--batch-size", "4", "--seq-len", "8", "-q"]
    assert runner.invoke(app, ["train", str(book), "-o", str(model), *tiny]).exit_code == 0
    result = runner.invoke(app, ["score", "-", "-m", str(model)], input=b"")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert "standard input has no lines to score" in result.stderr
