"""Reading text safely and turning it into an encoded corpus (tokenizer settings, vocabulary, ids).

Text is read as strict UTF-8: a byte-order mark is dropped and line endings are normalised by the
tokenizer; a file with a NUL byte is refused as binary (no text has one). `-` means standard input.
"""

import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from .errors import InputDataError, MissingInputError
from .tokenize import TokenizerConfig, tokenize
from .vocab import Vocab, build_vocab

DEFAULT_CORPUS = "peter_pan.txt"


@dataclass(frozen=True)
class Corpus:
    tokenizer: TokenizerConfig
    vocab: Vocab
    ids: np.ndarray  # (n_tokens,) int32

    @property
    def unk_rate(self) -> float:
        """Share of tokens that map to `<unk>`."""
        return float((self.ids == 0).mean()) if len(self.ids) else 0.0


def default_corpus_path() -> Path:
    """The bundled corpus: inside the installed package, or in `corpora/` of a source checkout."""
    packaged = resources.files("rnngen") / "corpora" / DEFAULT_CORPUS
    if packaged.is_file():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "corpora" / DEFAULT_CORPUS


def read_bytes(path: str) -> bytes:
    """The bytes of a file, or of standard input when path is `-`."""
    if path == "-":
        return sys.stdin.buffer.read()
    p = Path(path)
    if p.is_dir():
        raise MissingInputError(f"{path} is a folder; give the path of a text file")
    try:
        return p.read_bytes()
    except FileNotFoundError:
        raise MissingInputError(f"{path} does not exist; check the path") from None
    except OSError as e:
        raise MissingInputError(f"cannot read {path}: {e.strerror}") from None


def decode_text(data: bytes, name: str) -> str:
    """Strict UTF-8 decoding with the checks every text input gets."""
    if not data.strip():
        raise InputDataError(f"{name} is empty; give a text with some words in it")
    if b"\0" in data:
        raise InputDataError(f"{name} looks like a binary file (NUL byte); give a plain-text file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputDataError(
            f"{name} is not valid UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start}); "
            "convert it to UTF-8, e.g. with iconv"
        ) from None


def read_text(path: str) -> str:
    return decode_text(read_bytes(path), "standard input" if path == "-" else path)


def encode_text(
    text: str, tokenizer: TokenizerConfig, max_vocab: int | None = None, min_count: int = 1
) -> Corpus:
    """Tokenize text, build its vocabulary and map it to ids."""
    tokens = tokenize(text, tokenizer)
    if not tokens:
        raise InputDataError("the text has no tokens; give a text with some words in it")
    vocab = build_vocab(tokens, tokenizer.specials, max_vocab, min_count)
    return Corpus(tokenizer, vocab, vocab.encode(tokens))
