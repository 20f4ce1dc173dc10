"""Turning text into tokens and tokens back into text, all at once or one token at a time.

Three schemes, chosen by a `TokenizerConfig` that is stored in every encoded corpus and model file,
so `sample` and `eval` always split text exactly the way training did:

- word level, `book` rules (the default): words (with inner apostrophes, `can't`), each punctuation
  mark as its own token, and paragraph breaks and the line breaks that carry meaning as the
  tokens "\\n\\n" and "\\n" (`lines`: the printer's wraps inside a paragraph of prose are
  joined, see linebreaks.py), so generated text keeps the book's paragraphs, verse and lists.
  Detokenising spaces punctuation the way the training text did (`attach`, `pairs`,
  `elisions`, learned by spacing.py while encoding), else the way most books print it:
  `said Peter.`, `“Oh, why`, `well-known`.
- word level, `whitespace` rules: for text that is already tokenised (Penn Treebank style); tokens
  are split on whitespace, every line ends with `<eos>`, a literal `<unk>` is the unknown token and
  a literal `<eos>` the end of a sentence (so it detokenises as a line end: PTB text has none).
- character level: every character is a token.

Normalisation applied before word-level splitting (documented in the README): CRLF and CR become
LF, the printer's line wraps are joined (`lines`), tabs and runs of spaces become one space, spaces
at the start and end of lines are dropped, and three or more line breaks become a paragraph break.
"""

import re
from dataclasses import asdict, dataclass

from .errors import ConfigError
from .linebreaks import Layout, join_lines
from .spacing import (
    CLOSERS,
    JOINERS,
    MAX_ELISIONS,
    MAX_MARKS,
    MAX_PAIRS,
    OPENERS,
    PAIR_SPACING,
    QUOTES,
    SIDES,
    char_class,
)

UNK = "<unk>"
EOS = "<eos>"
NEWLINE = "\n"
PARAGRAPH = "\n\n"

LEVELS = ("word", "char")
SCHEMES = ("book", "whitespace")
LINES = ("auto", "keep", "join")
# Versions of the book rules (`TokenizerConfig.rules`); new files get the last. 1: the rules of
# files made before the setting existed. 2: a printer's line break after a dash is joined without
# a space, one inside a run of marks kept (linebreaks.py).
RULES = (1, 2)
# What a file written before a setting existed meant by leaving it out.
LEGACY_SETTINGS = {"lines": "keep", "attach": {}, "elisions": [], "pairs": {}, "rules": 1}

# A paragraph break, a line break, a word (letters/digits, inner apostrophes), or one other mark.
_BOOK_TOKEN = re.compile(r"\n\n|\n|\w+(?:['’]\w+)*|[^\w\s]")
_SPACES = re.compile(r"[^\S\n]+")
_EDGE_SPACES = re.compile(r" *\n *")
_MANY_BREAKS = re.compile(r"\n{3,}")
_MARK = re.compile(r"[^\w\s]")
_PAIR = re.compile(r"(?:word|number|[^\w\s]) (?:word|number|[^\w\s])")
_ELISION = re.compile(r"'\w+(?:['’]\w+)*|\w+(?:['’]\w+)*'")

_NO_SPACE_BEFORE = CLOSERS | {NEWLINE, PARAGRAPH}
_NO_SPACE_AFTER = OPENERS | {NEWLINE, PARAGRAPH}
_JOINERS = JOINERS  # printed without spaces on either side: `well-known`, `and/or`


@dataclass(frozen=True)
class TokenizerConfig:
    level: str = "word"  # "word" or "char"
    scheme: str = "book"  # word level only: "book" rules or "whitespace" (pre-tokenised text)
    lowercase: bool = False  # fold case before splitting
    lines: str = "auto"  # book rules: join the printer's line breaks ("auto"), all ("join"), none
    # Book rules: how the training text spaced each punctuation mark, ((mark, side), ...) in mark
    # order, and the words it elided with a straight apostrophe ("'tis", "o'"); see spacing.py.
    # None: not learned yet (encoding learns them); (): none recorded, the built-in rules apply.
    attach: tuple | None = None
    elisions: tuple | None = None
    pairs: tuple | None = None  # (("* (", "tight"), ...): neighbours spaced against those rules
    rules: int = RULES[-1]  # book rules version (see RULES); files without it have 1

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
        if self.rules not in RULES:
            raise ConfigError(
                f"tokenizer rules {self.rules!r} are not known to this version of rnngen "
                f"(it knows {', '.join(map(str, RULES))}); upgrade rnngen"
            )
        if self.lines not in LINES:
            raise ConfigError(
                f"unknown --lines {self.lines!r}; give --lines one of: {', '.join(LINES)}"
            )
        if not self.book_words and self.lines != "keep":
            if self.lines == "join":
                raise ConfigError(
                    "--lines join is for word-level book text; drop it, or use --lines keep"
                )
            object.__setattr__(self, "lines", "keep")  # auto: every line of these texts counts
        self._check_spacing()

    def _check_spacing(self):
        attach, elisions = self.attach, self.elisions
        if isinstance(attach, dict):
            attach = tuple(sorted(attach.items()))
        if isinstance(elisions, list):
            elisions = tuple(elisions)
        if attach is not None:
            if not isinstance(attach, tuple) or len(attach) > MAX_MARKS:
                raise ConfigError(f"attach must map at most {MAX_MARKS} marks to a side")
            for pair in attach:
                mark, side = pair if isinstance(pair, tuple) and len(pair) == 2 else (None, None)
                if not (isinstance(mark, str) and _MARK.fullmatch(mark)) or mark in QUOTES:
                    raise ConfigError(f"attach has an entry for {mark!r}, not a mark")
                if side not in SIDES:
                    raise ConfigError(f"attach {mark!r}: {side!r}; sides are {', '.join(SIDES)}")
            if [m for m, _ in attach] != sorted({m for m, _ in attach}):
                raise ConfigError("attach lists a mark twice or out of order")
        if elisions is not None:
            if not isinstance(elisions, tuple) or len(elisions) > MAX_ELISIONS:
                raise ConfigError(f"elisions must be a list of at most {MAX_ELISIONS} words")
            for form in elisions:
                if not (isinstance(form, str) and _ELISION.fullmatch(form)):
                    raise ConfigError(f"elision {form!r} is not a word with an apostrophe")
            if list(elisions) != sorted(set(elisions)):
                raise ConfigError("elisions lists a word twice or out of order")
        pairs = self.pairs
        if isinstance(pairs, dict):
            pairs = tuple(sorted(pairs.items()))
        if pairs is not None:
            if not isinstance(pairs, tuple) or len(pairs) > MAX_PAIRS:
                raise ConfigError(f"pairs must map at most {MAX_PAIRS} pairs to spaced or tight")
            for pair in pairs:
                key, how = pair if isinstance(pair, tuple) and len(pair) == 2 else (None, None)
                if not (isinstance(key, str) and _PAIR.fullmatch(key)) or how not in PAIR_SPACING:
                    raise ConfigError(f"pairs has a bad entry {key!r}: {how!r}")
            if [k for k, _ in pairs] != sorted({k for k, _ in pairs}):
                raise ConfigError("pairs lists a pair twice or out of order")
        object.__setattr__(self, "pairs", pairs)
        if not self.book_words and (attach or elisions or pairs):
            raise ConfigError("punctuation spacing is for word-level book text")
        object.__setattr__(self, "attach", attach)
        object.__setattr__(self, "elisions", elisions)

    def to_dict(self) -> dict:
        settings = asdict(self)
        if self.attach is not None:
            settings["attach"] = dict(self.attach)
        if self.elisions is not None:
            settings["elisions"] = list(self.elisions)
        if self.pairs is not None:
            settings["pairs"] = dict(self.pairs)
        return settings

    @property
    def book_words(self) -> bool:
        """Word level with book rules (the tokenizer that reads a book's layout)."""
        return self.level == "word" and self.scheme == "book"

    @property
    def joins_lines(self) -> bool:
        """Some line breaks inside a paragraph may be joined, so the text must be read (and cut
        into pieces) a paragraph at a time."""
        return self.book_words and self.lines != "keep"

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


def normalized_text(text: str, config: TokenizerConfig, layout: Layout | None = None) -> str:
    """The text word-level `book` rules split: the printer's line breaks joined (per
    `config.lines`), case folded if asked, and normalised (see the module docstring)."""
    if config.joins_lines:
        text = join_lines(text, config.lines, layout, config.rules)
    if config.lowercase:
        text = text.lower()
    return normalize_book_text(text)


def book_tokens(normalized: str) -> list:
    """The tokens of a text already through `normalized_text` (word-level book rules)."""
    return _BOOK_TOKEN.findall(normalized)


def tokenize(text: str, config: TokenizerConfig, layout: Layout | None = None) -> list:
    """Split `text` into a list of token strings according to `config`. `layout` is the book's
    (linebreaks.LineStats over the whole text) when `text` is one piece of it; None: the text's
    own."""
    if config.book_words:
        return _BOOK_TOKEN.findall(normalized_text(text, config, layout))
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
        self._newlines = 0  # book: line breaks at the end of the text given out so far
        self._open_quotes = {'"': False, "'": False}
        self._after_opening_quote = False
        self._tight_before, self._tight_after = _tight_sets(config.attach)
        self._elisions = frozenset(config.elisions or ())
        self._pairs = {key: how == "spaced" for key, how in config.pairs or ()}

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
        after_opening = self._after_opening_quote
        space = not (
            prev is None
            or prev in self._tight_after
            or after_opening
            or token in self._tight_before
        )
        self._after_opening_quote = False
        if token in self._open_quotes:
            space = self._quote(token, prev, following, space, after_opening)
        elif (
            token in ".,:" and prev and prev[-1].isdigit() and following and following[0].isdigit()
        ):
            space = False  # 3.0, 6:30, 1,000
            self._after_opening_quote = True  # and no space after it either
        elif self._pairs and prev is not None and not after_opening and prev not in QUOTES:
            space = self._pairs.get(f"{char_class(prev[-1])} {char_class(token[0])}", space)
        self._prev = token
        if token in (NEWLINE, PARAGRAPH):
            # Breaks in a row (a model can emit them; a tokenized text never has them) print as
            # the text they stand for would be normalised: at most one blank line.
            newlines = min(2, self._newlines + len(token)) - self._newlines
            self._newlines += newlines
            return NEWLINE * newlines
        self._newlines = 0
        return " " + token if space else token

    def _quote(self, token, prev, following, space, after_opening) -> bool:
        """Whether a straight quote takes a space before it; notes whether it opened a quote."""
        if token == "'" and _is_word(prev) and prev + "'" in self._elisions:
            return False  # `o' the`: an elision, no quote opened or closed
        if token == "'" and _is_word(following) and "'" + following in self._elisions:
            self._after_opening_quote = True  # `'tis`
            return space
        # Straight quotes are ambiguous; these rules print most book text right. After a word
        # a quote closes (`father'?`, `Marooners' Rock`) unless none is open and another word
        # follows a word not ending in s (`by 'O father`, `how dangerous 'tis`). After a mark
        # it closes an open quote (`fairies,'`) and otherwise opens one (`said, 'Thank`).
        if _is_word(prev):
            opening = (
                not self._open_quotes[token] and _is_word(following) and not prev.endswith("s")
            )
        else:
            opening = not (self._open_quotes[token] and prev not in self._tight_after)
        self._open_quotes[token] = opening
        if not opening:
            return False
        self._after_opening_quote = True
        # An opening quote right after another one takes no space (`"'The critic`).
        return prev is not None and prev not in self._tight_after and not after_opening


def _tight_sets(attach) -> tuple:
    """(tokens printed without a space before, tokens printed without a space after): the
    built-in rules, with each mark the training text spaced otherwise set as it did."""
    before, after = set(_NO_SPACE_BEFORE) | _JOINERS, set(_NO_SPACE_AFTER) | _JOINERS
    for mark, side in attach or ():
        before.discard(mark)
        after.discard(mark)
        if side in ("left", "both"):
            before.add(mark)
        if side in ("right", "both"):
            after.add(mark)
    return frozenset(before), frozenset(after)


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
