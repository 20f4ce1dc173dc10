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
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

import numpy as np

from ..errors import ConfigError, InputDataError, MissingInputError
from .linebreaks import LineStats
from .spacing import SpacingStats
from .tokenize import (
    NEWLINE,
    TokenizerConfig,
    book_tokens,
    detokenize,
    normalized_text,
    tokenize,
)
from .vocab import Vocab, build_vocab_from_counts

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
    return Path(__file__).resolve().parents[2] / "corpora" / DEFAULT_CORPUS


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
MAX_PARAGRAPH = 16 << 20  # characters; a longer "paragraph" is cut at a line break after all


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


def iter_text(
    f,
    name: str,
    options: TextOptions = STRICT_UTF8,
    chunk_bytes: int = CHUNK_BYTES,
    paragraphs: bool = False,
):
    """Decode a binary file piece by piece. Pieces are cut just after a line break that sits
    between two non-space characters, so tokenising the pieces one by one gives exactly the tokens
    of the whole text (every tokenizer's normalisation stays inside a piece). With `paragraphs`,
    only after a blank line, so that a paragraph is never split between pieces (the line joiner
    decides on whole paragraphs), unless a paragraph runs past MAX_PARAGRAPH characters."""
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
        cut = _last_safe_cut(pending, paragraphs)
        if cut == 0 and paragraphs and len(pending) > MAX_PARAGRAPH:
            cut = _last_safe_cut(pending)
        if cut > 0:
            yield pending[:cut]
            pending = pending[cut:]
    if not seen_text:
        raise InputDataError(f"{name} is empty; give a text with some words in it")
    if pending:
        yield pending


def _last_safe_cut(text: str, paragraphs: bool = False) -> int:
    """Index just after the last line break (LF or CRLF) with a non-space character on both sides,
    or 0 when there is none. With `paragraphs`: after the last run of white space holding two or
    more line breaks (a blank line) with a non-space character on both sides."""
    i = len(text) - 1
    while (i := text.rfind("\n", 0, i)) > 0:
        if i + 1 >= len(text) or text[i + 1].isspace():
            continue
        first = i  # where the white space before text[i + 1] starts
        while first > 0 and text[first - 1].isspace():
            first -= 1
        space = text[first : i + 1]
        if first > 0 and (space.count("\n") >= 2 if paragraphs else space in ("\n", "\r\n")):
            return i + 1
        i = first
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
    counts = Counter(tokens)
    if _learns_spacing(tokenizer):
        spacing = SpacingStats(tokenizer.rules)
        spacing.add(normalized_text(text, replace(tokenizer, lines="keep")))
        tokenizer = _with_spacing(tokenizer, spacing, counts)
    vocab = build_vocab_from_counts(counts, tokenizer.specials, max_vocab, min_count)
    return Corpus(tokenizer, vocab, vocab.encode(tokens))


def _learns_spacing(tokenizer: TokenizerConfig) -> bool:
    return tokenizer.book_words and tokenizer.attach is None


def _with_spacing(tokenizer, spacing: SpacingStats, counts: Counter) -> TokenizerConfig:
    """The tokenizer with the punctuation spacing learned from the text (spacing.py)."""
    attach, elisions, pairs = spacing.record(counts)
    return replace(tokenizer, attach=attach, elisions=elisions, pairs=pairs)


def encode_file(
    path: str,
    tokenizer: TokenizerConfig,
    max_vocab: int | None = None,
    min_count: int = 1,
    options: TextOptions = STRICT_UTF8,
    vocab: Vocab | None = None,
) -> Corpus:
    """Encode a text file (or `-`) of any size in two streaming passes: count the tokens and build
    the vocabulary (or take `vocab` as given) and the book's line layout, then write the ids into
    one preallocated array. Memory holds the vocabulary and the ids (4 bytes a token), never the
    whole text; with line joining, pieces are cut between paragraphs."""
    name = _input_name(path)
    paragraphs = tokenizer.joins_lines
    with open_input(path) as f:
        counts = Counter()
        lines = LineStats(tokenizer.rules)
        # The first pass counts tokens with every line break kept and learns the book's layout;
        # how many breaks that layout joins is known from the counts (linebreaks.LineStats.joined).
        # It also learns how the book spaces its punctuation, from the same normalised text.
        keep = replace(tokenizer, lines="keep")
        spacing = SpacingStats(tokenizer.rules) if _learns_spacing(tokenizer) else None
        for piece in iter_text(f, name, options, paragraphs=paragraphs):
            if keep.book_words:
                normalized = normalized_text(piece, keep)
                counts.update(book_tokens(normalized, keep.rules))
                if spacing is not None:
                    spacing.add(normalized)
            else:
                counts.update(tokenize(piece, keep))
            if paragraphs:
                lines.add(piece)
        layout = lines.layout()
        if paragraphs:
            counts[NEWLINE] -= lines.joined(layout, tokenizer.lines)
            counts += Counter()  # drop a count that fell to zero
        if spacing is not None:
            tokenizer = _with_spacing(tokenizer, spacing, counts)
        n_tokens = sum(counts.values())
        if n_tokens == 0:
            raise InputDataError(f"{name} has no tokens; give a text with some words in it")
        if vocab is None:
            vocab = build_vocab_from_counts(counts, tokenizer.specials, max_vocab, min_count)
        ids = np.empty(n_tokens, dtype=np.int32)
        f.seek(0)
        filled = 0
        for piece in iter_text(f, name, options, paragraphs=paragraphs):
            piece_ids = vocab.encode(tokenize(piece, tokenizer, layout))
            ids[filled : filled + len(piece_ids)] = piece_ids
            filled += len(piece_ids)
        if filled != n_tokens:
            raise RuntimeError(f"counted {n_tokens} tokens in {name} but wrote {filled}")
    return Corpus(tokenizer, vocab, ids)


@dataclass(frozen=True)
class RoundTrip:
    lines: int  # lines of the normalised text that are not empty
    identical: int  # how many of them come back unchanged

    @property
    def exact(self) -> float:
        return self.identical / self.lines if self.lines else 1.0


def round_trip(text: str, tokenizer: TokenizerConfig | None = None) -> RoundTrip:
    """How exactly detokenize(tokenize(text)) gives the text back, under the tokenizer settings
    `encode` would make of it (punctuation spacing learned from the text itself). The result is
    compared line by line with the text as the tokenizer reads it (tokenize.normalized_text: LF
    line ends, the printer's line wraps joined, runs of white space made one space, no spaces at
    the ends of lines, three or more line breaks made two), so differences left are spacing
    and quoting the detokenizer got wrong."""
    tokenizer = encode_text(text, tokenizer or TokenizerConfig()).tokenizer
    if not tokenizer.book_words:
        raise ConfigError(
            "round_trip measures word-level book tokenizing; drop --level/--tokenizer"
        )
    expected = normalized_text(text, tokenizer).split("\n")
    got = detokenize(tokenize(text, tokenizer), tokenizer).split("\n")
    lines = [line for line in expected if line]
    pairs = zip(expected, got, strict=False)
    return RoundTrip(len(lines), sum(1 for a, b in pairs if a and a == b))
