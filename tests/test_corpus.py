"""Reading and encoding text: streaming pieces equal the whole, strict decoding, and properties of
tokenising that must hold for any input."""

import io
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rnngen.errors import ConfigError, InputDataError
from rnngen.files.storage import load_corpus, save_corpus
from rnngen.text.corpus import TextOptions, encode_file, encode_text, iter_text, read_text
from rnngen.text.linebreaks import text_layout
from rnngen.text.tokenize import TokenizerConfig, detokenize, normalized_text, tokenize
from rnngen.text.vocab import build_vocab

CONFIGS = [
    TokenizerConfig(),
    TokenizerConfig(lines="keep"),
    TokenizerConfig(lines="join"),
    TokenizerConfig(lowercase=True),
    TokenizerConfig(level="char"),
    TokenizerConfig(scheme="whitespace"),
]
IDS = ["book", "keep", "join", "lower", "char", "whitespace"]


def _pieces(text: str, chunk_bytes: int, paragraphs: bool = False):
    data = io.BytesIO(text.encode())
    return list(iter_text(data, "t", chunk_bytes=chunk_bytes, paragraphs=paragraphs))


def _piecewise(text: str, chunk_bytes: int, config):
    """The tokens of the text's pieces, tokenised one by one as encode_file does."""
    pieces = _pieces(text, chunk_bytes, config.joins_lines)
    assert "".join(pieces) == text.replace("\ufeff", "")
    layout = text_layout(text)
    return [t for p in pieces for t in tokenize(p, config, layout)], len(pieces)


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_encode_file_equals_encode_text(tmp_path, book_text, config):
    text = book_text.replace("\n", "\r\n")[:8000] + "\n\n\n  Last   line \t\n"
    path = tmp_path / "book.txt"
    path.write_bytes(text.encode())
    whole = encode_text(text, config, max_vocab=300)
    tokens, n_pieces = _piecewise(text, 512, config)
    assert n_pieces > 5 and tokens == tokenize(text, config)
    streamed = encode_file(str(path), config, max_vocab=300)
    assert streamed.tokenizer == whole.tokenizer  # the same spacing learned from the pieces
    assert streamed.vocab == whole.vocab
    np.testing.assert_array_equal(streamed.ids, whole.ids)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.text(alphabet=st.sampled_from(list("ab .,'\"\n\r\t -“”")), max_size=300),
    chunk=st.integers(min_value=1, max_value=40),
)
def test_pieces_tokenise_like_the_whole(text, chunk):
    if not text.strip():
        return
    for config in CONFIGS:
        assert _piecewise(text, chunk, config)[0] == tokenize(text, config)


def test_decode_errors_name_the_offset():
    data = b"fine text\n" * 1000 + b"caf\xe9\n"
    with pytest.raises(InputDataError, match="byte 0xe9 at offset 10003"):
        list(iter_text(io.BytesIO(data), "t", chunk_bytes=64))
    replaced = "".join(iter_text(io.BytesIO(data), "t", TextOptions(errors="replace")))
    assert replaced.endswith("caf\ufffd\n")
    latin = "".join(iter_text(io.BytesIO(data), "t", TextOptions(encoding="latin-1")))
    assert latin.endswith("café\n")


def test_bom_binary_and_empty(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes(b"\xef\xbb\xbfHello there.\n")
    assert read_text(str(path)) == "Hello there.\n"
    path.write_bytes(b"text" * 5000 + b"\x00")
    with pytest.raises(InputDataError, match="binary file .NUL byte at offset 20000"):
        read_text(str(path))
    path.write_bytes(b" \n\t\n")
    with pytest.raises(InputDataError, match="is empty"):
        read_text(str(path))
    with pytest.raises(ConfigError, match="unknown encoding"):
        TextOptions(encoding="klingon")


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=200))
def test_tokenising_any_text_never_fails_and_ids_are_in_range(text):
    for config in CONFIGS:
        tokens = tokenize(text, config)
        assert all(isinstance(t, str) and t for t in tokens)
        if tokens:
            corpus = encode_text(text, config, max_vocab=5)
            assert corpus.ids.min() >= 0 and corpus.ids.max() < len(corpus.vocab)
        detokenize(tokens, config)  # never raises


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=200))
def test_char_level_round_trip_is_exact(text):
    config = TokenizerConfig(level="char")
    normalised = text.replace("\r\n", "\n").replace("\r", "\n")
    assert detokenize(tokenize(text, config), config) == normalised


_WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABC", min_size=1, max_size=8)


@st.composite
def book_like_text(draw):
    """Text as a book prints it: words separated by single spaces, punctuation attached to the word
    before it, lines and paragraphs."""
    lines = []
    for _ in range(draw(st.integers(1, 4))):
        words = draw(st.lists(_WORD, min_size=1, max_size=8))
        marks = draw(
            st.lists(
                st.sampled_from(["", "", ".", ",", ";", "!", "?"]),
                min_size=len(words),
                max_size=len(words),
            )
        )
        lines.append(" ".join(w + m for w, m in zip(words, marks, strict=True)))
        lines.append(draw(st.sampled_from(["\n", "\n\n"])))
    return "".join(lines[:-1])


@settings(max_examples=200, deadline=None)
@given(text=book_like_text())
def test_book_round_trip_on_book_like_text(text):
    for config in (TokenizerConfig(), TokenizerConfig(lines="keep")):
        assert detokenize(tokenize(text, config), config) == normalized_text(text, config)


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=200))
@example(text="<eos>")
@example(text="a <eos> b\nc")
def test_whitespace_round_trip(text):
    """Every line comes back with single spaces; a literal `<eos>` in the text is the
    end-of-sentence token (as a literal `<unk>` is the unknown one), so it comes back as a line
    end: the PTB files have none, and a model cannot tell the two apart anyway."""
    config = TokenizerConfig(scheme="whitespace")
    lines = (" ".join(line.split()) for line in text.splitlines())
    expected = "".join(re.sub(r" ?(?<!\S)<eos>(?!\S) ?", "\n", line) + "\n" for line in lines)
    assert detokenize(tokenize(text, config), config) == expected


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    tokens=st.lists(
        st.text(min_size=1, max_size=6).filter(lambda t: "\x00" not in t), min_size=1, max_size=60
    )
)
def test_vocabulary_save_and_load_is_the_identity(tmp_path, tokens):
    from rnngen.text.corpus import Corpus

    config = TokenizerConfig()
    vocab = build_vocab(tokens)
    corpus = Corpus(config, vocab, vocab.encode(tokens))
    save_corpus(tmp_path / "c.npz", corpus)
    loaded = load_corpus(tmp_path / "c.npz")
    assert loaded.vocab == vocab
    assert loaded.vocab.decode(loaded.ids) == tokens
