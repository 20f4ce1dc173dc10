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

from ..errors import ConfigError
from .linebreaks import Layout, join_lines
from .spacing import (
    CLOSERS,
    ELIDED_WORD,
    JOINERS,
    MARK_RUNS,
    MAX_ELISIONS,
    MAX_MARKS,
    MAX_PAIRS,
    OPENERS,
    PAIR_SPACING,
    QUOTES,
    RUN_MARKS,
    SIDES,
    char_class,
    default_spacing,
    mark_class,
    separates_digits,
)

UNK = "<unk>"
EOS = "<eos>"
NEWLINE = "\n"
PARAGRAPH = "\n\n"

LEVELS = ("word", "char")
SCHEMES = ("book", "whitespace")
LINES = ("auto", "keep", "join")
# Versions of the book rules (`TokenizerConfig.rules`); new files get the last. 1: the rules of
# files made before the setting existed. 2: abbreviations (`M.A.`), elided words (`’em`) and runs
# of marks (`...`, `* * *`) are one token; pairs of neighbours are also learned in the context of
# the token before or after them, and words elided at their end however rare, and such endings
# (`-in'`; spacing.py); the detokenizer tracks `_emphasis_` and starts every paragraph with no
# quote open; a comma between numbers is a thousands separator only before three digits; a
# printer's line break after a dash is joined without a space, one inside a run of marks kept
# (linebreaks.py).
RULES = (1, 2)
# What a file written before a setting existed meant by leaving it out.
LEGACY_SETTINGS = {"lines": "keep", "attach": {}, "elisions": [], "pairs": {}, "rules": 1}

# A paragraph break, a line break, a word (letters/digits, inner apostrophes), or one other mark.
_BOOK_TOKEN = re.compile(r"\n\n|\n|\w+(?:['’]\w+)*|[^\w\s]")
# Rules 2: a word may also hold periods between letters (`M.A`, `i.e`: its last period stays a
# mark, so `M.A.` ending a sentence reads as usual), a word may start with an elided letter's
# curly apostrophe (`’em`), and a run of a repeated mark is one token (spacing.MARK_RUNS).
_BOOK_TOKEN_V2 = re.compile(
    rf"\n\n|\n|\w+(?:(?:['’]|(?<=[^\W\d_])\.(?=[^\W\d_]))\w+)*|{ELIDED_WORD}|{MARK_RUNS}|[^\w\s]"
)
_MARK_OR_RUN = re.compile(rf"{MARK_RUNS}|[^\w\s]")
_RUN = re.compile(MARK_RUNS)
_SPACES = re.compile(r"[^\S\n]+")
_EDGE_SPACES = re.compile(r" *\n *")
_MANY_BREAKS = re.compile(r"\n{3,}")
# A pair of neighbours, or (rules 2) a mark and its right neighbour after a left one or at the
# start of a line (spacing.SpacingStats._context_exceptions).
_CLASS = r"(?:word|number|[^\w\s]{1,3})"
_PAIR = re.compile(
    rf"{_CLASS} {_CLASS}|(?:line|{_CLASS}) [^\w\s]{{1,3}} {_CLASS}"
    rf"|{_CLASS} [^\w\s]{{1,3}} > (?:_|{_CLASS})"
)
# An elided word as it prints (`'tis`, `o'`), or (rules 2) an elided ending (`-in'`: any word of
# three or more letters ending so).
_ELISION = re.compile(r"'\w+(?:['’]\w+)*|\w+(?:['’]\w+)*'|-\w\w'")

_LINE_ENDS = (None, NEWLINE, PARAGRAPH)  # what follows a token that ends a line
_LINE_STARTS = _LINE_ENDS  # what precedes a token that starts one
_BEFORE_CLOSING = frozenset(",.;:!?)]}")  # a straight quote before these closes (rules 2)
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
                f"must be one of {', '.join(LEVELS)}, got {self.level!r}", "tokenizer.level"
            )
        if self.scheme not in SCHEMES:
            raise ConfigError(
                f"must be one of {', '.join(SCHEMES)}, got {self.scheme!r}", "tokenizer.scheme"
            )
        if self.level == "char" and self.scheme != "book":
            raise ConfigError(
                "{0} whitespace is for word level; drop it or use {1} word",
                "tokenizer.scheme",
                "tokenizer.level",
            )
        if self.rules not in RULES:
            raise ConfigError(
                f"tokenizer rules {self.rules!r} are not known to this version of rnngen "
                f"(it knows {', '.join(map(str, RULES))}); upgrade rnngen"
            )
        if self.lines not in LINES:
            raise ConfigError(
                f"must be one of {', '.join(LINES)}, got {self.lines!r}", "tokenizer.lines"
            )
        if not self.book_words and self.lines != "keep":
            if self.lines == "join":
                raise ConfigError(
                    "{0} join is for word-level book text; drop it, or use {0} keep",
                    "tokenizer.lines",
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
                if not (isinstance(mark, str) and _MARK_OR_RUN.fullmatch(mark)) or mark in QUOTES:
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


def book_tokens(normalized: str, rules: int = RULES[-1]) -> list:
    """The tokens of a text already through `normalized_text` (word-level book rules)."""
    return (_BOOK_TOKEN_V2 if rules >= 2 else _BOOK_TOKEN).findall(normalized)


def tokenize(text: str, config: TokenizerConfig, layout: Layout | None = None) -> list:
    """Split `text` into a list of token strings according to `config`. `layout` is the book's
    (linebreaks.LineStats over the whole text) when `text` is one piece of it; None: the text's
    own."""
    if config.book_words:
        return book_tokens(normalized_text(text, config, layout), config.rules)
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
        self._rules = config.rules
        self._attached = frozenset(mark for mark, _ in config.attach or ())
        self._sides = {}  # rules 2: token -> (tight before, tight after), filled as tokens come
        self._emphasis = False  # rules 2: an `_emphasis_` is open
        self._prev2 = None  # rules 2: the token before `_prev`

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
        if self._rules >= 2:
            return self._book_piece_v2(token, following)
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
        return self._emit(token, space)

    def _book_piece_v2(self, token: str, following) -> str:
        """`_book_piece` under rules 2 (see RULES)."""
        prev = self._prev
        after_opening = self._after_opening_quote
        self._after_opening_quote = False
        space = not (prev is None or after_opening or self._tight(prev)[1] or self._tight(token)[0])
        if token in self._open_quotes:
            space = self._quote(token, prev, following, space, after_opening)
        elif not token.strip("_"):
            # A lone underscore is an emphasis mark next to punctuation (`_Lady:_`), attached
            # to the emphasised text on its inner side like a quote.
            space = self._underscore(space)
        elif prev is not None and separates_digits(token, prev, following or ""):
            space = False  # 3.0, 6:30, 1,000
            self._after_opening_quote = True  # and no space after it either
        elif self._pairs and prev is not None and not after_opening and prev not in QUOTES:
            space = self._paired(prev, token, following, space)
        if "_" in token:  # what is emphasised, for the next lone underscore
            self._note_emphasis(token)
        if token == PARAGRAPH:
            # A quotation running on over paragraphs opens again at each one and closes only at
            # its last, so whatever is open, the new paragraph starts with nothing open.
            self._open_quotes = dict.fromkeys(self._open_quotes, False)
            self._emphasis = False
        self._prev2, self._prev = prev, token
        return self._emit(token, space)

    def _paired(self, prev: str, token: str, following, space: bool) -> bool:
        """The space between two tokens by the pairs recorded: in context of the token before
        `prev` when `prev` is a mark, of the token after `token` when `token` is one (see
        spacing.SpacingStats._context_exceptions), else as a pair."""
        pair = f"{_edge_class(prev, -1)} {_edge_class(token, 0)}"
        if not _is_word(token) and following is not None and following not in QUOTES:
            after = "_" if following[0] == "_" else _edge_class(following, 0)
            how = self._pairs.get(f"{pair} > {after}")
            if how is not None:
                return how
        if not _is_word(prev):
            before = self._prev2
            context = "line" if before in (None, NEWLINE, PARAGRAPH) else _edge_class(before, -1)
            how = self._pairs.get(f"{context} {pair}")
            if how is not None:
                return how
        return self._pairs.get(pair, space)

    def _tight(self, token: str) -> tuple:
        """(no space before, no space after) `token` by the marks' sides (rules 2): a run of
        marks the text gave no evidence on takes its default (spacing.default_spacing)."""
        sides = self._sides.get(token)
        if sides is None:
            if token in self._attached or not _RUN.fullmatch(token):
                sides = (token in self._tight_before, token in self._tight_after)
            else:
                before, after = default_spacing(token)
                sides = (not before, not after)
            self._sides[token] = sides
        return sides

    def _underscore(self, space: bool) -> bool:
        """Whether a lone underscore (`_Lady:_`, `_“Sweet`) takes a space before it: one that
        closes the open emphasis does not; one that opens it takes none after it."""
        if self._emphasis:
            self._emphasis = False
            return False
        self._emphasis = True
        self._after_opening_quote = True
        return space

    def _elided_end(self, word: str) -> bool:
        """Whether the text elides the end of `word` with a straight apostrophe: the word, or
        (rules 2) its ending (`-in'`), was recorded. Rules 2 look through emphasis
        (`_bilin_'`)."""
        if word + "'" in self._elisions:
            return True
        if self._rules < 2:
            return False
        word = word.strip("_")
        if word + "'" in self._elisions:
            return True
        return len(word) > 2 and f"-{word[-2:]}'" in self._elisions

    def _elided_start(self, word) -> bool:
        """Whether the text elides the start of `word` with a straight apostrophe (`'tis`);
        rules 2 look through emphasis (`'ll_`)."""
        if not _is_word(word):
            return False
        return "'" + word in self._elisions or (
            self._rules >= 2 and "'" + word.strip("_") in self._elisions
        )

    def _opens(self, token: str, prev, following) -> bool:
        """Rules 2: whether a straight quote opens. Where its neighbours tell, by them: none opens
        at the end of a line or before a closing mark (`no",`), every one at the start of a line
        or after an opening mark (`("Yes`); else as rules 1 guess, but by what is open after a
        dash (`--"Yes` and `yes"--`), and without the plural's possessive for `"`."""
        if following in _LINE_ENDS or following in _BEFORE_CLOSING:
            return False
        if prev in _LINE_STARTS or prev in OPENERS:
            return True
        if _is_word(prev):
            plural = token == "'" and self._plural(prev)
            return not self._open_quotes[token] and _is_word(following) and not plural
        return not self._open_quotes[token]

    def _plural(self, word: str) -> bool:
        """Whether a quote after `word` likely marks a plural's possessive (`Marooners' Rock`).
        Rules 2 learn a text's possessives with its elisions (spacing.py) and guess so only for
        a text that taught none, as the guess misreads `says 'for` and `was 'lection`."""
        return word.endswith("s") and (self._rules < 2 or not self._elisions)

    def _note_emphasis(self, token: str) -> None:
        """A word with an odd number of underscores opens or closes an emphasis: opens at its
        start (`_Lady`), closes at its end (`York_`), else turns it over (`gentle_men`);
        `_hval_` and `1_st_` do both."""
        if token.count("_") % 2 == 0:
            return
        if token[0] == "_":
            self._emphasis = True
        elif token[-1] == "_":
            self._emphasis = False
        else:
            self._emphasis = not self._emphasis

    def _emit(self, token: str, space: bool) -> str:
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
        # An elision opens or closes no quote. Rules 2 read `do 'bout` and `man 'ud` with the
        # word after elided, as a word elided at its start is known by itself, one elided at its
        # end perhaps only by its ending (`-an'`).
        starts = token == "'" and self._elided_start(following)
        if token == "'" and not (starts and self._rules >= 2):
            if _is_word(prev) and self._elided_end(prev):
                return False  # `o' the`
        if starts:
            self._after_opening_quote = True  # `'tis`
            return space
        # Straight quotes are ambiguous; these rules print most book text right. After a word
        # a quote closes (`father'?`, `Marooners' Rock`) unless none is open and another word
        # follows a word not ending in s (`by 'O father`, `how dangerous 'tis`). After a mark
        # it closes an open quote (`fairies,'`) and otherwise opens one (`said, 'Thank`).
        if self._rules >= 2:
            opening = self._opens(token, prev, following)
        elif _is_word(prev):
            opening = (
                not self._open_quotes[token] and _is_word(following) and not self._plural(prev)
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
    """A word, a number, or (rules 2) a word with an elided first letter (`’em`)."""
    return token is not None and (
        token[0].isalnum() or token[0] == "_" or (token[0] == "’" and len(token) > 1)
    )


def _edge_class(token: str, end: int) -> str:
    """The class of a token at its first (0) or last (-1) character as rules 2 see it
    (spacing.char_class, spacing.mark_class): an elided word (`’em`) is a word there too, a run
    of marks its own class."""
    if token[0] == "’" and len(token) > 1:
        return "word"
    if len(token) > 1 and token[0] in RUN_MARKS and _RUN.fullmatch(token):
        return mark_class(token)
    return char_class(token[end])
