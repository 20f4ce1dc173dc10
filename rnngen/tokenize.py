"""Turning text into tokens and tokens back into text.

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
            raise ConfigError(f"unknown level {self.level!r}; use one of: {', '.join(LEVELS)}")
        if self.scheme not in SCHEMES:
            raise ConfigError(
                f"unknown tokenizer {self.scheme!r}; use one of: {', '.join(SCHEMES)}"
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
    if config.level == "char":
        return "".join(tokens)
    if config.scheme == "whitespace":
        lines, line = [], []
        for token in tokens:
            if token == EOS:
                lines.append(" ".join(line) + "\n")
                line = []
            else:
                line.append(token)
        return "".join(lines) + " ".join(line)
    return _join_book_tokens(tokens)


def _join_book_tokens(tokens) -> str:
    parts = []
    open_quotes = {'"': False, "'": False}  # straight quotes alternate between opening and closing
    after_opening_quote = False
    for i, token in enumerate(tokens):
        prev = tokens[i - 1] if i > 0 else None
        following = tokens[i + 1] if i + 1 < len(tokens) else None
        space = not (
            prev is None
            or prev in _NO_SPACE_AFTER
            or prev in _JOINERS
            or after_opening_quote
            or token in _NO_SPACE_BEFORE
            or token in _JOINERS
        )
        after_opening_quote = False
        if token in open_quotes:
            # Straight quotes are ambiguous; these rules print most book text right. After a word
            # a quote closes (`father'?`, `Marooners' Rock`) unless none is open and another word
            # follows a word not ending in s (`by 'O father`, `how dangerous 'tis`). After a mark
            # it closes an open quote (`fairies,'`) and otherwise opens one (`said, 'Thank`).
            if _is_word(prev):
                opening = not open_quotes[token] and _is_word(following) and not prev.endswith("s")
            else:
                opening = not (open_quotes[token] and prev not in _NO_SPACE_AFTER)
            if opening:
                space = prev is not None and prev not in _NO_SPACE_AFTER and prev not in _JOINERS
                after_opening_quote = True
            else:
                space = False
            open_quotes[token] = opening
        elif (
            token in ".,:" and prev and prev[-1].isdigit() and following and following[0].isdigit()
        ):
            space = False  # 3.0, 6:30, 1,000
            after_opening_quote = True  # and no space after it either
        if space:
            parts.append(" ")
        parts.append(token)
    return "".join(parts)


def _is_word(token) -> bool:
    return token is not None and (token[0].isalnum() or token[0] == "_")
