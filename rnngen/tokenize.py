"""Turning text into tokens and tokens back into text, all at once or one token at a time.

Three schemes, chosen by a `TokenizerConfig` that is stored in every encoded corpus and model file,
so `sample` and `eval` always split text exactly the way training did:

- word level, `book` rules (the default): words (with inner apostrophes, `can't`), each punctuation
  mark as its own token, and line and paragraph breaks as the tokens "\\n" and "\\n\\n", so
  generated text keeps the book's lines and paragraphs. Detokenising rejoins punctuation the way
  a book prints it: `said Peter.`, `“Oh, why`, `well-known`.
- word level, `whitespace` rules: for text that is already tokenised (Penn Treebank style); tokens
  are split on whitespace, every line ends with `<eos>`, and a literal `<unk>` is the unknown token.
- character level: every character is a token.

Normalisation applied before word-level splitting (documented in the README): CRLF and CR become
LF, tabs and runs of spaces become one space, spaces at the start and end of lines are dropped, and
three or more line breaks become a paragraph break.
"""

import re
from dataclasses import asdict, dataclass

from .errors import ConfigError

UNK = "<unk>"
EOS = "<eos>"
NEWLINE = "\n"
PARAGRAPH = "\n\n"

LEVELS = ("word", "char")
SCHEMES = ("book", "whitespace")

# A paragraph break, a line break, a word (letters/digits, inner apostrophes), or one other mark.
_BOOK_TOKEN = re.compile(r"\n\n|\n|\w+(?:['’]\w+)*|[^\w\s]")
_SPACES = re.compile(r"[^\S\n]+")
_EDGE_SPACES = re.compile(r" *\n *")
_MANY_BREAKS = re.compile(r"\n{3,}")

_NO_SPACE_BEFORE = set(".,;:!?)]}”’%…") | {NEWLINE, PARAGRAPH}
_NO_SPACE_AFTER = set("([{“‘") | {NEWLINE, PARAGRAPH}
_JOINERS = {"-", "/"}  # printed without spaces on either side: `well-known`, `and/or`


@dataclass(frozen=True)
class TokenizerConfig:
    level: str = "word"  # "word" or "char"
    scheme: str = "book"  # word level only: "book" rules or "whitespace" (pre-tokenised text)
    lowercase: bool = False  # fold case before splitting

    def __post_init__(self):
        if self.level not in LEVELS:
            raise ConfigError(
                f"unknown level {self.level!r}; give --level one of: {', '.join(LEVELS)}"
            )
        if self.scheme not in SCHEMES:
            raise ConfigError(
                f"unknown tokenizer {self.scheme!r}; give --tokenizer one of: {', '.join(SCHEMES)}"
            )
        if self.level == "char" and self.scheme != "book":
            raise ConfigError(
                "--tokenizer whitespace is for word level; drop it or use --level word"
            )

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def specials(self) -> tuple:
        """Tokens that come first in the vocabulary, in this order."""
        return (UNK, EOS) if self.scheme == "whitespace" else (UNK,)


def normalize_book_text(text: str) -> str:
    """The normalisation word-level `book` splitting starts from (see the module docstring)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _SPACES.sub(" ", text)
    text = _EDGE_SPACES.sub("\n", text)
    return _MANY_BREAKS.sub(PARAGRAPH, text).strip(" ")


def tokenize(text: str, config: TokenizerConfig) -> list:
    """Split `text` into a list of token strings according to `config`."""
    if config.lowercase:
        text = text.lower()
    if config.level == "char":
        return list(text.replace("\r\n", "\n").replace("\r", "\n"))
    if config.scheme == "whitespace":
        tokens = []
        for line in text.splitlines():
            tokens.extend(line.split())
            tokens.append(EOS)
        return tokens
    return _BOOK_TOKEN.findall(normalize_book_text(text))


def detokenize(tokens, config: TokenizerConfig) -> str:
    """Join tokens back into text, the inverse of `tokenize` on normalised text."""
    return "".join(stream_detokenize(tokens, config))


# Detokenising one token at a time (for `rnngen sample` to print as it generates). Each push costs
# O(1): the joiner carries the little state the rules need from left to right.
# - char level: a token is its own text.
# - whitespace rules: a space before a token unless it starts a line; `<eos>` ends the line.
# - book rules: whether a space goes before a token depends on the tokens on both sides of it and
#   on which straight quotes are open, so the joiner holds back one token and prints it when the
#   next one arrives (or at `finish()`).

_HELD_NOTHING = object()  # no token held back yet (None is a legitimate "no previous token")


class StreamDetokenizer:
    """Incremental `detokenize`: feed tokens with push(), then call finish() once."""

    def __init__(self, config: TokenizerConfig):
        if config.level == "char":
            self._mode = "char"
        elif config.scheme == "whitespace":
            self._mode = "whitespace"
        else:
            self._mode = "book"
        self._line_start = True  # whitespace: the next token starts a line
        self._prev = None  # book: the token before the held one
        self._held = _HELD_NOTHING  # book: the token waiting for its right-hand neighbour
        self._open_quotes = {'"': False, "'": False}
        self._after_opening_quote = False

    def push(self, token: str) -> str:
        """Text that is final now that `token` follows everything pushed before."""
        if self._mode == "char":
            return token
        if self._mode == "whitespace":
            if token == EOS:
                self._line_start = True
                return "\n"
            text = token if self._line_start else " " + token
            self._line_start = False
            return text
        if self._held is _HELD_NOTHING:
            self._held = token
            return ""
        text = self._book_piece(self._held, token)
        self._held = token
        return text

    def finish(self) -> str:
        """The text still held back; the streamer is not to be used afterwards."""
        if self._mode != "book" or self._held is _HELD_NOTHING:
            return ""
        text = self._book_piece(self._held, None)
        self._held = _HELD_NOTHING
        return text

    def _book_piece(self, token: str, following) -> str:
        """The held token with the space before it, now that its right neighbour is known."""
        prev = self._prev
        space = not (
            prev is None
            or prev in _NO_SPACE_AFTER
            or prev in _JOINERS
            or self._after_opening_quote
            or token in _NO_SPACE_BEFORE
            or token in _JOINERS
        )
        self._after_opening_quote = False
        if token in self._open_quotes:
            # Straight quotes are ambiguous; these rules print most book text right. After a word
            # a quote closes (`father'?`, `Marooners' Rock`) unless none is open and another word
            # follows a word not ending in s (`by 'O father`, `how dangerous 'tis`). After a mark
            # it closes an open quote (`fairies,'`) and otherwise opens one (`said, 'Thank`).
            if _is_word(prev):
                opening = (
                    not self._open_quotes[token] and _is_word(following) and not prev.endswith("s")
                )
            else:
                opening = not (self._open_quotes[token] and prev not in _NO_SPACE_AFTER)
            if opening:
                space = prev is not None and prev not in _NO_SPACE_AFTER and prev not in _JOINERS
                self._after_opening_quote = True
            else:
                space = False
            self._open_quotes[token] = opening
        elif (
            token in ".,:" and prev and prev[-1].isdigit() and following and following[0].isdigit()
        ):
            space = False  # 3.0, 6:30, 1,000
            self._after_opening_quote = True  # and no space after it either
        self._prev = token
        return " " + token if space else token


def stream_detokenize(tokens, config: TokenizerConfig):
    """Yield text pieces for tokens; "".join of them equals detokenize(list(tokens), config)."""
    stream = StreamDetokenizer(config)
    for token in tokens:
        piece = stream.push(token)
        if piece:
            yield piece
    tail = stream.finish()
    if tail:
        yield tail


def _is_word(token) -> bool:
    return token is not None and (token[0].isalnum() or token[0] == "_")
