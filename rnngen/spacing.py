"""How a book spaces its punctuation: learned while its text is counted, used when detokenizing.

Books differ: Middlemarch prints `bracelet—if`, another book `bracelet — if`; Shakespeare elides
with a straight apostrophe on either side of a word (`'tis`, `o' the`). While `encode` counts a
book's tokens, `SpacingStats` looks at every punctuation mark of the normalised text and counts,
on each side where a word is its neighbour (directly or across one space, on the same line),
whether a space stood between them. The majority on each side makes the mark's side:

    left   no space before, a space after      , . ; ! ? ) ” (the usual closers)
    right  a space before, none after          ( [ “ (the usual openers)
    both   attached on both sides              - — / (`well-known`, `bracelet—if`)
    none   spaced on both sides                & =

It goes into the tokenizer settings (`TokenizerConfig.attach`, one entry per mark, in string
order); a side with no evidence, or a tie, keeps the built-in rule (`default_spacing`).
Neighbouring tokens are also counted as pairs of classes (`char_class`: the mark itself, `word`
or `number`, by the characters where the two meet): a pair seen at least twice whose majority
differs from what the marks' sides give (`individual?(17)`, `1806 - 07`) goes into
`TokenizerConfig.pairs` (at most MAX_PAIRS, the most frequent). Straight quotes (`"` and `'`) are
left out: they open and close, and the detokenizer tells which from their neighbours. What it
cannot tell, an apostrophe eliding letters, is learned per word: a word that, in at least half of
its occurrences, has a straight apostrophe attached on one side and a space on the other (`'tis`,
`o'`) goes into `TokenizerConfig.elisions`, written as it prints, at most MAX_ELISIONS of them,
the most frequent.

A mark is judged by its neighbours on its own line, so the counts over a text's pieces (cut
between lines) add up to the whole text's.
"""

import re
from collections import Counter

SIDES = ("left", "right", "both", "none")
MAX_MARKS = 512  # entries kept in `attach` (a book has a few dozen marks)
MAX_ELISIONS = 64
MAX_PAIRS = 64
PAIR_SPACING = ("spaced", "tight")
QUOTES = ("'", '"')

# Marks printers repeat: under rules 2 a run of one of them, tight (`...`, `--`, `!!!`) or spaced
# with three or more (`. . .`, `* * *`), is one token, so its inner spacing comes back exactly.
RUN_MARKS = ".-—–*!?~=#+"

_MARK = re.compile(r"[^\w\s]")
_WORD_BEFORE = re.compile(r"\w+(?:['’]\w+)*$")
_WORD_AFTER = re.compile(r"\w+(?:['’]\w+)*")


def _side(space_before: bool, space_after: bool) -> str:
    if space_before:
        return "none" if space_after else "right"
    return "left" if space_after else "both"


class SpacingStats:
    """Counts gathered over a text's normalised pieces (their sum is the whole's: a mark is judged
    by its neighbours on its own line, and pieces are cut between lines)."""

    def __init__(self):
        self.marks = Counter()  # (mark, "before" or "after", spaced) -> occurrences
        self.elided = Counter()  # "'tis" / "o'" -> occurrences
        self.pairs = Counter()  # (class, class, spaced) -> occurrences, a mark on either side

    def add(self, text: str) -> None:
        """Count the marks of a normalised text (tokenize.normalized_text). A mark's side counts
        only where a word is its neighbour there, directly or across one space: `?!` or `!”` say
        nothing of how `!` meets a word."""
        n = len(text)
        marks, pairs = self.marks, self.pairs
        for match in _MARK.finditer(text):
            i = match.start()
            mark = match.group()
            if mark in "'’" and 0 < i < n - 1 and _is_word_char(text[i - 1] + text[i + 1]):
                continue  # inside a word: `don’t`, `o'er`
            if mark in QUOTES:
                self._elision(text, i, mark)
                continue
            # Each neighbour: a token's edge character, directly or across one space. A word
            # there is evidence for the mark's side; the pair is counted with the token before,
            # and with a word after (a mark after counts the pair itself).
            left = _neighbour(text, i - 1, -1)
            if left is not None:
                char, spaced = left
                if char.isalnum() or char == "_":
                    marks[mark, "before", spaced] += 1
                    pairs["number" if char.isdigit() else "word", mark, spaced] += 1
                elif char not in QUOTES:
                    pairs[char, mark, spaced] += 1
            right = _neighbour(text, i + 1, 1)
            if right is not None:
                char, spaced = right
                if char.isalnum() or char == "_":
                    marks[mark, "after", spaced] += 1
                    pairs[mark, "number" if char.isdigit() else "word", spaced] += 1

    def _elision(self, text: str, i: int, mark: str) -> None:
        if mark != "'" or i == 0 or i + 1 >= len(text):
            return
        before, after = text[i - 1] == " ", text[i + 1] == " "
        if before and not after:  # ` 'tis`
            word = _WORD_AFTER.match(text, i + 1)
            if word:
                self.elided["'" + word.group()] += 1
        elif after and not before:  # `o' `
            word = _WORD_BEFORE.search(text, max(0, i - 40), i)
            if word:
                self.elided[word.group() + "'"] += 1

    def record(self, counts: Counter) -> tuple:
        """(attach, elisions, pairs) for TokenizerConfig, given the text's token counts. A side
        without evidence keeps the built-in rule (`default(mark)`: whether it takes a space before
        and after); ties go to the built-in rule too."""
        attach = []
        for mark in sorted({key[0] for key in self.marks}):
            spaced = []
            for where, default in zip(("before", "after"), default_spacing(mark), strict=True):
                yes, no = self.marks[mark, where, True], self.marks[mark, where, False]
                spaced.append(default if yes == no else yes > no)
            attach.append((mark, _side(*spaced)))
        if len(attach) > MAX_MARKS:
            seen = Counter()
            for (mark, _, _), n in self.marks.items():
                seen[mark] += n
            keep = {m for m, _ in sorted(seen.items(), key=lambda x: (-x[1], x[0]))[:MAX_MARKS]}
            attach = [(mark, side) for mark, side in attach if mark in keep]
        elided = [
            (form, n)
            for form, n in self.elided.items()
            if n >= 2 and 2 * n >= counts.get(form.strip("'"), 0)
        ]
        elided.sort(key=lambda item: (-item[1], item[0]))
        elisions = tuple(sorted(form for form, _ in elided[:MAX_ELISIONS]))
        return tuple(attach), elisions, self._pair_exceptions(dict(attach))

    def _pair_exceptions(self, attach: dict) -> tuple:
        """Pairs (seen at least twice) that the text spaced otherwise than the marks' own rules
        say, the most frequent MAX_PAIRS: `*(2)` footnotes, `1806 - 07`."""
        exceptions = []
        for left, right in sorted({(a, b) for a, b, _ in self.pairs}):
            yes, no = self.pairs[left, right, True], self.pairs[left, right, False]
            if yes + no >= 2 and yes != no and (yes > no) != _spaced(left, right, attach):
                exceptions.append((yes + no, f"{left} {right}", "spaced" if yes > no else "tight"))
        exceptions.sort(key=lambda item: (-item[0], item[1]))
        return tuple(sorted((pair, how) for _, pair, how in exceptions[:MAX_PAIRS]))


def char_class(char: str) -> str:
    """A token as the pair rules see it, by its character next to the other token: a mark
    itself, `number` (a digit), or `word`."""
    if char.isdigit():
        return "number"
    return "word" if _is_word_char(char) else char


def _neighbour(text: str, i: int, step: int):
    """(the character of the neighbouring token at i, or at i + step after one space; whether
    that space was there), or None at the edge of a line."""
    if not 0 <= i < len(text) or text[i] == "\n":
        return None
    if text[i] != " ":
        return text[i], False
    i += step
    if not 0 <= i < len(text) or text[i].isspace():
        return None
    return text[i], True


def _spaced(left: str, right: str, attach: dict) -> bool:
    """Whether the marks' own rules (learned, else built in) put a space between two classes."""
    after = len(left) > 1 or _side_spaces(left, attach)[1]
    before = len(right) > 1 or _side_spaces(right, attach)[0]
    return after and before


def _side_spaces(mark: str, attach: dict) -> tuple:
    side = attach.get(mark)
    if side is None:
        return default_spacing(mark)
    return side in ("right", "none"), side in ("left", "none")


def _is_word_char(chars: str) -> bool:
    """Whether every one of `chars` is a word character (`\\w`)."""
    return all(char.isalnum() or char == "_" for char in chars)


# The built-in rules, for a mark a text gives no evidence on: closers attach to the word before,
# openers to the word after, joiners to both; any other mark stands between spaces.
CLOSERS = set(".,;:!?)]}”’%…")
OPENERS = set("([{“‘")
JOINERS = {"-", "/"}


def default_spacing(mark: str) -> tuple:
    """(space before, space after) of a mark under the built-in rules."""
    return (
        mark not in CLOSERS and mark not in JOINERS,
        mark not in OPENERS and mark not in JOINERS,
    )
