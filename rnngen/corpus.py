"""Reading text safely and turning it into an encoded corpus (tokenizer settings, vocabulary, ids).

Text is read as strict UTF-8 unless told otherwise (`TextOptions`): a byte-order mark is dropped
and line endings are normalised by the tokenizer; undecodable bytes are an error naming their
offset; a file with a NUL byte is refused as binary (no text has one). `-` means standard input.
Large inputs are read in pieces, so memory is bounded by the vocabulary and the ids, not the text.
"""

import codecs
import io
import shutil
import sys
import tempfile
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from .errors import ConfigError, InputDataError, MissingInputError
from .tokenize import TokenizerConfig, tokenize
from .vocab import Vocab, build_vocab, build_vocab_from_counts

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


@dataclass(frozen=True)
class TextOptions:
    """How input bytes become text."""

    encoding: str = "utf-8"  # any codec Python knows; a UTF-8 byte-order mark is always dropped
    errors: str = "strict"  # "strict": refuse undecodable bytes; "replace": put U+FFFD instead

    def __post_init__(self):
        try:
            codecs.lookup(self.encoding)
        except LookupError:
            raise ConfigError(
                f"unknown encoding {self.encoding!r}; try --encoding utf-8 or latin-1"
            ) from None
        if self.errors not in ("strict", "replace"):
            raise ConfigError(f"--errors must be strict or replace, got {self.errors!r}")

    @property
    def label(self) -> str:
        return "UTF-8" if codecs.lookup(self.encoding).name == "utf-8" else self.encoding

    @property
    def codec(self) -> str:
        return "utf-8-sig" if codecs.lookup(self.encoding).name == "utf-8" else self.encoding


STRICT_UTF8 = TextOptions()
CHUNK_BYTES = 1 << 20  # input is read and tokenised 1 MB at a time


@contextmanager
def open_input(path: str, spool: bool = True):
    """A binary file object for path, or for standard input when path is `-`. With spool,
    standard input is first copied to a temporary file, so it can be read twice like a file;
    without, it is read as it comes (for filters that read once)."""
    if path == "-" and not spool:
        yield sys.stdin.buffer
        return
    if path == "-":
        with tempfile.TemporaryFile() as spool:
            shutil.copyfileobj(sys.stdin.buffer, spool, CHUNK_BYTES)
            spool.seek(0)
            yield spool
        return
    p = Path(path)
    if p.is_dir():
        raise MissingInputError(f"{path} is a folder; give the path of a text file")
    try:
        f = open(p, "rb")  # noqa: SIM115 (closed below)
    except FileNotFoundError:
        raise MissingInputError(f"{path} does not exist; check the path") from None
    except OSError as e:
        raise MissingInputError(f"cannot read {path}: {e.strerror}") from None
    with f:
        yield f


def _input_name(path: str) -> str:
    return "standard input" if path == "-" else path


def iter_text(f, name: str, options: TextOptions = STRICT_UTF8, chunk_bytes: int = CHUNK_BYTES):
    """Decode a binary file piece by piece. Pieces are cut just after a line break that sits
    between two non-space characters, so tokenising the pieces one by one gives exactly the tokens
    of the whole text (every tokenizer's normalisation stays inside a piece)."""
    decoder = codecs.getincrementaldecoder(options.codec)(options.errors)
    offset = 0  # bytes read before the current chunk
    pending = ""
    seen_text = False
    while True:
        data = f.read(chunk_bytes)
        final = not data
        if b"\0" in data:
            raise InputDataError(
                f"{name} looks like a binary file (NUL byte at offset {offset + data.index(0)}); "
                "give a plain-text file"
            )
        try:
            text = decoder.decode(data, final)
        except UnicodeDecodeError as e:
            position = max(0, offset + e.start - len(decoder.getstate()[0]))
            raise InputDataError(
                f"{name} is not valid {options.label} (byte 0x{e.object[e.start]:02x} at offset "
                f"{position}); convert it, or pass --encoding or --errors replace"
            ) from None
        offset += len(data)
        pending += text
        seen_text = seen_text or bool(text.strip())
        if final:
            break
        cut = _last_safe_cut(pending)
        if cut > 0:
            yield pending[:cut]
            pending = pending[cut:]
    if not seen_text:
        raise InputDataError(f"{name} is empty; give a text with some words in it")
    if pending:
        yield pending


def _last_safe_cut(text: str) -> int:
    """Index just after the last line break (LF or CRLF) with a non-space character on both sides,
    or 0 when there is none."""
    i = len(text) - 1
    while (i := text.rfind("\n", 0, i)) > 0:
        first = i - 1 if text[i - 1] == "\r" else i  # where the break starts
        if first > 0 and not text[first - 1].isspace() and i + 1 < len(text):
            if not text[i + 1].isspace():
                return i + 1
    return 0


def decode_text(data: bytes, name: str, options: TextOptions = STRICT_UTF8) -> str:
    """Bytes already in memory (a start text from a pipe), with the same checks as a file."""
    return "".join(iter_text(io.BytesIO(data), name, options))


def read_text(path: str, options: TextOptions = STRICT_UTF8) -> str:
    """A whole (small) text: an evaluation text, a validation file, a start text."""
    with open_input(path) as f:
        return "".join(iter_text(f, _input_name(path), options))


def encode_text(
    text: str, tokenizer: TokenizerConfig, max_vocab: int | None = None, min_count: int = 1
) -> Corpus:
    """Tokenize text, build its vocabulary and map it to ids."""
    tokens = tokenize(text, tokenizer)
    if not tokens:
        raise InputDataError("the text has no tokens; give a text with some words in it")
    vocab = build_vocab(tokens, tokenizer.specials, max_vocab, min_count)
    return Corpus(tokenizer, vocab, vocab.encode(tokens))


def encode_file(
    path: str,
    tokenizer: TokenizerConfig,
    max_vocab: int | None = None,
    min_count: int = 1,
    options: TextOptions = STRICT_UTF8,
    vocab: Vocab | None = None,
) -> Corpus:
    """Encode a text file (or `-`) of any size in two streaming passes: count the tokens and build
    the vocabulary (or take `vocab` as given), then write the ids into one preallocated array.
    Memory holds the vocabulary and the ids (4 bytes a token), never the whole text."""
    name = _input_name(path)
    with open_input(path) as f:
        counts = Counter()
        for piece in iter_text(f, name, options):
            counts.update(tokenize(piece, tokenizer))
        n_tokens = sum(counts.values())
        if n_tokens == 0:
            raise InputDataError(f"{name} has no tokens; give a text with some words in it")
        if vocab is None:
            vocab = build_vocab_from_counts(counts, tokenizer.specials, max_vocab, min_count)
        ids = np.empty(n_tokens, dtype=np.int32)
        f.seek(0)
        filled = 0
        for piece in iter_text(f, name, options):
            piece_ids = vocab.encode(tokenize(piece, tokenizer))
            ids[filled : filled + len(piece_ids)] = piece_ids
            filled += len(piece_ids)
    return Corpus(tokenizer, vocab, ids)
