"""Which line breaks of a book are the printer's and which are the author's.

Project Gutenberg books are hard-wrapped: a paragraph of prose is cut into lines of about 70
characters wherever the next word would not fit. Those breaks say nothing about the text, so the
book tokenizer (`--lines auto`, the default) joins them with a space; paragraph breaks (a blank
line) stay, and so do the breaks that carry meaning: verse, lists, tables of contents, the lines
of a letter's address, headings. The rule, decided for each paragraph from the text alone:

1. The book's wrap width `w` is the length that all but 0.5% of its wrapped-looking lines (lines
   followed by another line of the same paragraph) stay within: 72 for the Gutenberg novels, about
   54 for Shakespeare's verse. It is a statistic of the whole text (`LineStats`), gathered while
   the text is counted, so a paragraph's fate does not depend on how the text was cut into pieces.
2. The break after a line is the printer's when the line was full: its length, a space and the
   first word of the next line reach at least 7/8 of `w` (the next word would not have fitted,
   give or take the printer's own ragged margin).
3. A paragraph is wrapped prose when at least half of its breaks are full; then its full breaks
   are joined, and its short lines (a heading or a `Dear Sir,` above the text) keep theirs.
4. A paragraph whose lines read as verse keeps every break: at least two of its lines follow a
   line that does not end a sentence, and at least 3/4 of those start with a capital. So does a
   list: two or more lines starting with a bullet or a number (`- `, `* `, `1.`, `(a)`).

Under `--lines join` every break inside a paragraph is joined; `--lines keep` keeps them all (the
behaviour of model files made before this setting existed).

Under tokenizer rules 2 (`TokenizerConfig.rules`, files made since) two things differ. A break
after a dash attached to its word (`knew--⏎he`, `tell—⏎Oh`) is joined without a space: books print
such dashes closed, and the printer's wrap is the only place a space follows one. And a break
between two of the same repeatable mark (`. .⏎.`, `--⏎--`) is kept under every mode, `join`
included: joined, they would make one longer run token (spacing.RUN_MARKS), and the first pass of
`encode_file` counts tokens as if joining a break only removed the line break.

The decision for a break depends on the width only through one number, the widest `w` under which
the break is still joined (`join_limit`), so the first pass over a text can count how many breaks
any width will join before the width is known.
"""

import math
import re
from collections import Counter
from typing import NamedTuple

from .spacing import RUN_MARKS

WRAP_QUANTILE = 0.005  # share of wrapped-looking lines allowed to be longer than the wrap width
FULL_NUMERATOR, FULL_DENOMINATOR = 7, 8  # a full line reaches 7/8 of the width
PROSE_SHARE = 0.5  # share of a paragraph's breaks that must be full for it to be prose
VERSE_SHARE = 0.75  # share of capitals after unfinished lines that makes a paragraph verse
NEVER = -1  # join_limit of a break kept under any width
HELD = -2  # rules 2: join_limit of a break kept under any mode, `join` too (between run marks)

_SENTENCE_END = re.compile(r"[.!?][\"'”’)\]]*$")
_LIST_ITEM = re.compile(r"\s*(?:[-*•–]|\d+[.)]|\(\w{1,4}\))\s")
_LEADING_MARKS = re.compile(r"[^\w]*")
_ATTACHED_DASH = re.compile(r"[^\s\-—–][\-—–]+\Z")  # `word--`, `tell—`: not `Miss ------`


def normalize_line_ends(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _paragraphs(lines: list):
    """(first, last) line indices of each run of non-blank lines."""
    start = None
    for i, line in enumerate(lines):
        if line.strip():
            if start is None:
                start = i
        elif start is not None:
            yield start, i - 1
            start = None
    if start is not None:
        yield start, len(lines) - 1


def _first_word(line: str) -> str:
    parts = line.split(maxsplit=1)
    return parts[0] if parts else ""


def _votes(lines: list) -> tuple:
    """(capitals, lower case): how the lines after an unfinished line start. A line is unfinished
    when its last word neither ends a sentence nor is capitalised (`Prince⏎Andrew` goes on a name).
    Verse starts its lines with capitals all the same; prose goes on in lower case."""
    capitals = lower = 0
    for before, line in zip(lines, lines[1:], strict=False):
        words = before.split()
        if not words or _SENTENCE_END.search(words[-1]) or words[-1][:1].isupper():
            continue
        first = _LEADING_MARKS.sub("", line.lstrip(), count=1)[:1]
        capitals += first.isupper()
        lower += first.islower()
    return capitals, lower


def _is_list(lines: list) -> bool:
    return sum(1 for line in lines if _LIST_ITEM.match(line + " ")) >= 2


def _full_limit(need: int) -> int:
    """The widest wrap width under which a line needing `need` characters counts as full."""
    return FULL_DENOMINATOR * need // FULL_NUMERATOR


class Layout(NamedTuple):
    """The two book-level statistics the rule needs (see the module docstring)."""

    width: int  # the wrap width; 0 when no paragraph has two lines
    prose: bool  # paragraphs that give no sign either way are read as prose


class Paragraph(NamedTuple):
    """What one paragraph's breaks need from the book to be decided."""

    limits: list  # for each break, the widest wrap width under which it is joined, or NEVER
    kind: str  # "prose", "verse" (or a list: kept), or "unsure" (prose in a prose book)
    capitals: int  # lines starting with a capital after an unfinished line
    lower: int  # lines going on in lower case after an unfinished line


def _held(lines: list) -> list:
    """The breaks (by index) that fall between two of the same repeatable mark (rules 2)."""
    held = []
    for i, line in enumerate(lines[:-1]):
        end = line.rstrip()[-1:]
        if end and end in RUN_MARKS and lines[i + 1].lstrip()[:1] == end:
            held.append(i)
    return held


def read_paragraph(lines: list, rules: int = 2) -> Paragraph:
    """The facts about one paragraph (a run of non-blank lines) that decide its breaks."""
    paragraph = _read_paragraph(lines)
    held = _held(lines) if rules >= 2 else ()
    if held:
        limits = list(paragraph.limits)
        for i in held:
            limits[i] = HELD
        paragraph = paragraph._replace(limits=limits)
    return paragraph


def _read_paragraph(lines: list) -> Paragraph:
    """`read_paragraph` but for the breaks rules 2 hold."""
    capitals, lower = _votes(lines)
    if len(lines) < 2 or _is_list(lines):
        kind = "verse"
    elif capitals >= max(2, VERSE_SHARE * (capitals + lower)):
        kind = "verse"
    else:
        kind = "prose" if lower else "unsure"
    if kind == "verse":
        return Paragraph([NEVER] * (len(lines) - 1), kind, capitals, lower)
    needs = [
        len(line.rstrip()) + 1 + len(_first_word(following))
        for line, following in zip(lines, lines[1:], strict=False)
    ]
    # Prose while at least PROSE_SHARE of the breaks are full, i.e. while the m-th longest is.
    m = math.ceil(PROSE_SHARE * len(needs))
    prose_need = sorted(needs, reverse=True)[m - 1]
    return Paragraph([_full_limit(min(need, prose_need)) for need in needs], kind, capitals, lower)


def joins(paragraph: Paragraph, layout: Layout) -> list:
    """For each break of the paragraph, whether `auto` joins it in a book with this layout."""
    if paragraph.kind == "unsure" and not layout.prose:
        return [False] * len(paragraph.limits)
    return [limit >= layout.width > 0 for limit in paragraph.limits]


class LineStats:
    """What the first pass over a text learns about its lines: the lengths of wrapped-looking lines
    (for the wrap width), how the book's lines go on after unfinished ones, and how many breaks
    each layout would join. Texts added one piece at a time give the same result as the whole,
    provided pieces are cut between paragraphs."""

    def __init__(self, rules: int = 2):
        self.rules = rules  # the tokenizer rules the breaks are decided by
        self.lengths = Counter()  # length of a line followed by another line in its paragraph
        self.limits = Counter()  # (join limit, kind) -> number of breaks
        self.capitals = 0
        self.lower = 0

    def add(self, text: str) -> None:
        lines = normalize_line_ends(text).split("\n")
        for first, last in _paragraphs(lines):
            block = lines[first : last + 1]
            self.lengths.update(len(line.rstrip()) for line in block[:-1])
            paragraph = read_paragraph(block, self.rules)
            self.limits.update((limit, paragraph.kind) for limit in paragraph.limits)
            self.capitals += paragraph.capitals
            self.lower += paragraph.lower

    def layout(self) -> Layout:
        allowed = WRAP_QUANTILE * sum(self.lengths.values())
        width = longer = 0
        for length in sorted(self.lengths, reverse=True):
            if longer + self.lengths[length] > allowed:
                width = length
                break
            longer += self.lengths[length]
        return Layout(width, self.lower > self.capitals)

    def joined(self, layout: Layout, mode: str = "auto") -> int:
        """How many breaks `join_lines(text, layout, mode)` replaces."""
        if mode == "keep":
            return 0
        if mode == "join":
            return sum(n for (limit, _), n in self.limits.items() if limit != HELD)
        return sum(
            n
            for (limit, kind), n in self.limits.items()
            if limit >= layout.width > 0 and (kind == "prose" or layout.prose)
        )


def _after_attached_dash(line: str) -> bool:
    """Whether a line ends in a dash attached to its word (`word--`, `tell—`; rules 2)."""
    line = line.rstrip()
    return line[-1:] in ("-", "—", "–") and _ATTACHED_DASH.search(line) is not None


def text_layout(text: str, rules: int = 2) -> Layout:
    stats = LineStats(rules)
    stats.add(text)
    return stats.layout()


def join_lines(text: str, mode: str = "auto", layout: Layout | None = None, rules: int = 2) -> str:
    """The text with LF line ends and the printer's line breaks replaced by spaces (see the module
    docstring); `layout` is the whole book's (None: this text's own)."""
    text = normalize_line_ends(text)
    if mode == "keep" or "\n" not in text:
        return text
    if layout is None and mode == "auto":
        layout = text_layout(text, rules)
    lines = text.split("\n")
    ends = ["\n"] * (len(lines) - 1)  # what follows each line but the last
    for first, last in _paragraphs(lines):
        block = lines[first : last + 1]
        if mode == "join" and rules >= 2:
            joined = [limit != HELD for limit in read_paragraph(block, rules).limits]
        elif mode == "join":
            joined = [True] * (len(block) - 1)
        else:
            joined = joins(read_paragraph(block, rules), layout)
        for i, join in enumerate(joined):
            if join:
                ends[first + i] = " "
                if rules >= 2 and _after_attached_dash(lines[first + i]):
                    ends[first + i] = ""
                    lines[first + i] = lines[first + i].rstrip()
                    lines[first + i + 1] = lines[first + i + 1].lstrip()
    pieces = [lines[0]]
    for end, line in zip(ends, lines[1:], strict=True):
        pieces += (end, line)
    return "".join(pieces)
