"""A start text as typed on a keyboard: straight quotes onto the book's curly ones, and unknown
words answered with the same word in another case first."""

import pytest
from typer.testing import CliRunner

from rnngen.cli.app import app
from rnngen.errors import UnknownWordError
from rnngen.reading.generate import start_ids
from rnngen.text.tokenize import TokenizerConfig, tokenize
from rnngen.text.vocab import build_vocab, closest_known, keyboard_tokens

BOOK = TokenizerConfig()
TEXT = (
    "“Oh, games,” said Wendy. “I don’t know the names of the games.” ‘Marooners’ Rock’ was "
    "James’ name for it, and the games were many; games, games.\n\n"
)
runner = CliRunner()


@pytest.fixture(scope="module")
def vocab():
    return build_vocab(tokenize(TEXT * 3, BOOK))


def test_straight_quotes_become_the_books_curly_ones(vocab):
    tokens = tokenize('"Oh, games," said Wendy. "I don\'t know', BOOK)
    assert keyboard_tokens(tokens, vocab) == [
        "“", "Oh", ",", "games", ",", "”", "said", "Wendy", ".", "“", "I", "don’t", "know",
    ]  # fmt: skip
    assert keyboard_tokens(tokenize("'Marooners' Rock", BOOK), vocab)[:3] == ["‘", "Marooners", "’"]
    ids = start_ids('"Oh, games', BOOK, vocab)
    assert vocab.decode(ids) == ["“", "Oh", ",", "games"]


def test_known_straight_quotes_stay(vocab):
    straight = build_vocab(tokenize('"Oh," she said. "Yes."', BOOK))
    tokens = tokenize('"Oh,"', BOOK)
    assert keyboard_tokens(tokens, straight) == tokens


def test_suggestions_try_the_same_word_in_another_case_first(vocab):
    assert closest_known("GAMES", vocab)[0] == "games"
    assert closest_known("Games", vocab)[:1] == ["games"]
    assert set(closest_known("Games", vocab)[1:]) <= {"names", "James"}
    with pytest.raises(UnknownWordError, match="'GAMES' is not in the model's vocabulary; "
                       "closest known: games"):  # fmt: skip
        start_ids("GAMES", BOOK, vocab)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("start")
    (folder / "book.txt").write_text(TEXT * 40, encoding="utf-8")
    out = folder / "m.npz"
    tiny = ["--epochs", "1", "--hidden", "8", "--embed", "8", "--batch-size", "2", "--seq-len", "8"]
    result = runner.invoke(app, ["train", str(folder / "book.txt"), "-o", str(out), "-q", *tiny])
    assert result.exit_code == 0, result.stderr
    return out


def test_cli_start_with_straight_quotes(model_file):
    result = runner.invoke(
        app, ["sample", "-m", str(model_file), "--start", '"Oh,', "--length", "3"]
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith('"Oh,')  # echoed as typed; the model read “Oh,


@pytest.mark.parametrize("word, first", [("GAMES", "games"), ("Games", "games")])
def test_cli_unknown_start_word_suggests_the_folded_match(model_file, word, first):
    result = runner.invoke(app, ["sample", "-m", str(model_file), "--start", word])
    assert result.exit_code == 65
    assert f"{word!r} is not in the model's vocabulary; closest known: {first}" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
