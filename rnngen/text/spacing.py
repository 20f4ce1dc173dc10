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

Rules 2 (`TokenizerConfig.rules`, files made since) count what the tokenizer of those rules makes a
mark: a run of one repeated mark (`...`, `--`, `. . . .`, `* * *`) is one mark with its own side;
a period inside an abbreviation (`M.A.`), a separator inside a number (`1,000`, `3.5`) and a curly
apostrophe starting an elided word (`’em`) are not marks at all, as they print attached anyway.
They also record pairs spaced otherwise in the context of the token before or after them
(`_context_exceptions`: a footnote's `*` starting a line), and more elisions: every word elided at
its end, and endings elided in many words (`-in'`, `_elided_ends`), except in a text that quotes
its dialogue with the apostrophe (`_quotes_dialogue`), whose quotes would pass for elisions.
"""

import re
from collections import Counter

SIDES = ("left", "right", "both", "none")
MAX_MARKS = 512  # entries kept in `attach` (a book has a few dozen marks)
MAX_ELISIONS = 1024
MAX_ELISIONS_V1 = 64  # what rules 1 recorded
MAX_PAIRS = 128  # pairs and (rules 2) pairs in context together
MAX_PAIR_EXCEPTIONS = 64  # of each kind recorded
PAIR_SPACING = ("spaced", "tight")
QUOTES = ("'", '"')

# Marks printers repeat: under rules 2 a run of one of them, tight (`...`, `--`, `!!!`) or spaced
# with three or more (`. . .`, `* * *`), is one token, so its inner spacing comes back exactly.
RUN_MARKS = ".-—–*!?~=#+"
MARK_RUNS = "|".join(rf"{c}(?:{c}+|(?: {c}){{2,}})" for c in map(re.escape, RUN_MARKS))
# A curly apostrophe after a space, an opening mark or a dash, before a letter, elides letters
# (`’em`, `‘’Tis`): an opening quote would be ‘, so under rules 2 it belongs to the word.
ELIDED_WORD = r"’(?<![^\s‘“(\[{—–-]’)\w+(?:['’]\w+)*"

_MARK = re.compile(r"[^\w\s]")
_RUN = re.compile(MARK_RUNS)
_ELIDED_AT = re.compile(ELIDED_WORD)
_LETTER = re.compile(r"[^\W\d_]")
_WORDS = ("word", "number")  # the classes of tokens that are not marks
_SENTENCE_MARKS = (",", ".", ";", ":", "!", "?", "-", "—")  # before ` 'Oh` opening a quote
_WORD_BEFORE = re.compile(r"\w+(?:['’]\w+)*$")
_WORD_AFTER = re.compile(r"\w+(?:['’]\w+)*")


def _side(space_before: bool, space_after: bool) -> str:
    if space_before:
        return "none" if space_after else "right"
    return "left" if space_after else "both"


class SpacingStats:
    """Counts gathered over a text's normalised pieces (their sum is the whole's: a mark is judged
    by its neighbours on its own line, and pieces are cut between lines)."""

    def __init__(self, rules: int = 2):
        self.rules = rules  # the tokenizer rules whose marks are counted (TokenizerConfig.rules)
        self.marks = Counter()  # (mark, "before" or "after", spaced) -> occurrences
        self.elided = Counter()  # "'tis" / "o'" -> occurrences
        self.opened = Counter()  # rules 2: (word, word) around ` '` (`say 'poor`) -> occurrences
        self.dialogue = 0  # rules 2: quotes opening a line or sentence before a capital, `'Oh`
        self.after_marks = Counter()  # rules 2: `'tis` after a mark or starting a line -> count
        self.pairs = Counter()  # rules 1: (class, class, spaced) -> occurrences, a mark on a side
        # rules 2: the space between two neighbours A and B in context: (A, B, the class before a
        # mark A or "line", the class after a mark B, spaced) -> occurrences; None: no context
        self.gaps = Counter()

    def add(self, text: str) -> None:
        """Count the marks of a normalised text (tokenize.normalized_text). A mark's side counts
        only where a word is its neighbour there, directly or across one space: `?!` or `!”` say
        nothing of how `!` meets a word."""
        if self.rules >= 2:
            self._add_marks(text)
            return
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

    def _add_marks(self, text: str) -> None:
        """`add` under rules 2: marks as that tokenizer makes them (runs; no inner periods,
        number separators or elided words' apostrophes), neighbours as it does (`’em` a word,
        a run its own class, `mark_class`), and the spaces around marks in their contexts (the
        pairs are counted among them, `_pairs`)."""
        found = _marks(text)
        marks, gaps = [], []  # counted all at once: Counter.update is fast on a list
        context = None  # the class before the previous mark, or "line"
        last = len(found) - 1
        for k, (i, j, mark) in enumerate(found):
            if mark in QUOTES:
                self._elision(text, i, mark)
                context = None
                continue
            own = mark if len(mark) == 1 else mark_class(mark)
            left = _neighbour_class(text, i - 1, -1, found[k - 1] if k else None)
            right = _neighbour_class(text, j, 1, found[k + 1] if k < last else None)
            if left is not None and left[0] not in QUOTES:
                if left[0] in _WORDS:
                    marks.append((mark, "before", left[1]))
                    context = None
                after = None
                if right is not None and right[0] not in QUOTES:
                    after = "_" if text[j + right[1]] == "_" else right[0]
                gaps.append((left[0], own, context, after, left[1]))
            context = "line" if left is None else left[0]
            if right is not None and right[0] in _WORDS:
                marks.append((mark, "after", right[1]))
                gaps.append((own, right[0], context, None, right[1]))
        self.marks.update(marks)
        self.gaps.update(gaps)

    def _elision(self, text: str, i: int, mark: str) -> None:
        if mark != "'":
            return
        if self.rules >= 2:
            self._apostrophe(text, i)
            return
        if i == 0 or i + 1 >= len(text):
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

    def _apostrophe(self, text: str, i: int) -> None:
        """`_elision` under rules 2: also a word elided at a line's edge (a wrap, before joining),
        looking through emphasis (`_bilin_'`); the words quotes open after (`say 'poor`); and
        the quotes that open a line or a sentence with a capital (`'Oh`, `said, 'What`): a text
        full of those quotes its dialogue with the apostrophe."""
        before = text[i - 1] if i else "\n"
        after = text[i + 1] if i + 1 < len(text) else "\n"
        if before == "\n" or (before == " " and text[i - 2 : i - 1] in _SENTENCE_MARKS):
            self.dialogue += after.isupper()
        if before in " \n" and not after.isspace():  # ` 'tis`, `'tis` starting a line
            word = _WORD_AFTER.match(text, i + 1)
            previous = _WORD_BEFORE.search(text, max(0, i - 41), i - 1) if i > 1 else None
            if word:
                self.elided["'" + word.group()] += 1
                if previous and before == " ":
                    self.opened[previous.group().strip("_"), word.group()] += 1
                else:  # `said, 'nothing`: where a quote goes on after its speaker
                    self.after_marks["'" + word.group()] += 1
        elif after.isspace() and not before.isspace():  # `o' `, `o'` ending a line
            word = _WORD_BEFORE.search(text, max(0, i - 40), i)
            form = word.group().strip("_") if word else ""
            if form:
                self.elided[form + "'"] += 1

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
        pairs = self._pair_exceptions(dict(attach), self._pairs())
        if self.rules >= 2:
            pairs += self._context_exceptions(dict(attach), dict(pairs))
        return tuple(attach), self._elisions(counts), tuple(sorted(pairs))

    def _elisions(self, counts: Counter) -> tuple:
        """The elided words to record, the most frequent first: those with the apostrophe in at
        least half of their occurrences, and under rules 2 (`_elided_ends`) more words elided at
        their end, and such endings (`-in'`). Rules 2 take a capitalised word elided at its start
        (`'Tis`) only if it is never whole; and in a text that quotes its dialogue with the
        apostrophe (`_quotes_dialogue`) none, as it opens many a quote there (`'Oh`), and count
        no word elided at its start after a mark (`said, 'nothing`)."""
        dialogue = self.rules >= 2 and self._quotes_dialogue()
        elided = {}
        for form, n in self.elided.items():
            word = form.strip("'")
            least = 2 * n
            if dialogue and form[0] == "'":
                n -= self.after_marks[form]
                least = -1 if word[0].isupper() else 2 * n
            elif self.rules >= 2 and form[0] == "'" and word[0].isupper():
                least = n
            if n >= 2 and least >= counts.get(word, 0):
                elided[form] = n
        if self.rules >= 2:
            elided.update(self._elided_ends(elided, dialogue))
        ranked = sorted(elided.items(), key=lambda item: (-item[1], item[0]))
        limit = MAX_ELISIONS if self.rules >= 2 else MAX_ELISIONS_V1
        return tuple(sorted(form for form, _ in ranked[:limit]))

    def _quotes_dialogue(self) -> bool:
        """Rules 2: whether the text opens quotes with the straight apostrophe (`'Oh`, `said,
        'What`) more often than it elides the ends of words with it."""
        return self.dialogue > sum(n for form, n in self.elided.items() if form[-1] == "'")

    def _elided_ends(self, elided: dict, dialogue: bool) -> dict:
        """Rules 2: {`blame'`: n}, every word the text elides at its end (`blame' fool`) or marks
        as a plural's possessive (`girls' school`, printed alike), however rare, unless quotes
        open after it (`say 'poor`) a quarter as often, elided words after it (`do 'bout`) not
        counted; and {`-in'`: n}, two-letter endings of words of three or more letters elided so
        in three different words, four times as often as quotes open after such words. A
        dialect elides by rule (`hoverin' round`), so a word seen once is elided all the same;
        but in a text that quotes its dialogue with the apostrophe (`_quotes_dialogue`) only
        plurals' possessives, as a word before the apostrophe more likely ends a quote there."""
        opened = Counter()
        for (word, following), n in self.opened.items():
            if "'" + following not in elided:
                opened[word] += n
        ends, uses, words, after = {}, Counter(), Counter(), Counter()
        for form, n in self.elided.items():
            plural = form[-2:-1] in ("s", "S")  # `dwarfs' cottage`, however the text quotes
            if (plural or not dialogue) and form[-1] == "'" and n >= max(1, 4 * opened[form[:-1]]):
                ends[form] = n
            if form[-1] == "'" and len(form) > 3 and _is_word_char(form[-3:-1]):
                uses[form[-3:-1]] += n
                words[form[-3:-1]] += 1
        for word, n in opened.items():
            after[word[-2:]] += n
        for ending, n in uses.items():
            if words[ending] >= 3 and n >= 4 * max(1, after[ending]):
                ends[f"-{ending}'"] = n
        return ends

    def _pairs(self) -> Counter:
        """(class, class, spaced) -> occurrences, a mark on either side; under rules 2 summed
        over the contexts of the gaps."""
        if self.rules < 2:
            return self.pairs
        pairs = Counter()
        for (left, right, _, _, spaced), n in self.gaps.items():
            pairs[left, right, spaced] += n
        return pairs

    def _pair_exceptions(self, attach: dict, pairs: Counter) -> tuple:
        """Pairs (seen at least twice) that the text spaced otherwise than the marks' own rules
        say, the most frequent MAX_PAIR_EXCEPTIONS: `*(2)` footnotes, `1806 - 07`."""
        exceptions = []
        for left, right in sorted({(a, b) for a, b, _ in pairs}):
            yes, no = pairs[left, right, True], pairs[left, right, False]
            if yes + no >= 2 and yes != no and (yes > no) != _spaced(left, right, attach):
                exceptions.append((yes + no, f"{left} {right}", "spaced" if yes > no else "tight"))
        exceptions.sort(key=lambda item: (-item[0], item[1]))
        return tuple(sorted((pair, how) for _, pair, how in exceptions[:MAX_PAIR_EXCEPTIONS]))

    def _context_exceptions(self, attach: dict, pairs: dict) -> tuple:
        """Rules 2: pairs spaced otherwise than the pair alone says (its exception, else the
        marks' rules) in the context of the token before them, when the first is a mark (`A B
        C`: the space between B and C after A, or at the start of a line), then of the token
        after them, when the second is a mark (`A B > C`: between A and B before C; C is `_`
        for an `_emphasis_`), where that context leaves fewer spaces wrong than the pair and
        the first context do; each seen at least twice, the most frequent MAX_PAIR_EXCEPTIONS
        of each. Footnotes: `alien.* Hence` but `*Hence` starting a line (`line * word`);
        Moby-Dick's citations `it?” —_Burke_` against `you?”—he` (`” — > _`)."""

        def usual(left, right):
            pair = f"{left} {right}"
            return pairs[pair] == "spaced" if pair in pairs else _spaced(left, right, attach)

        tally = Counter()  # (key, spaced) -> occurrences
        for (left, right, before, _, spaced), n in self.gaps.items():
            if before is not None:
                tally[f"{before} {left} {right}", spaced] += n
        firsts = _majority_exceptions(tally, lambda key: usual(*key.split(" ")[1:]))
        found = dict(firsts)
        wrong, tally = Counter(), Counter()  # key -> spaces wrong without it; (key, spaced) -> n
        for (left, right, before, after, spaced), n in self.gaps.items():
            if after is None or right in _WORDS:
                continue
            key = f"{left} {right} > {after}"
            tally[key, spaced] += n
            how = found.get(f"{before} {left} {right}")
            wrong[key] += n if spaced != (how == "spaced" if how else usual(left, right)) else 0
        seconds = _majority_exceptions(tally, None, wrong)
        return firsts + seconds


def _majority_exceptions(tally: Counter, usual, wrong=None) -> tuple:
    """((key, "spaced" or "tight"), ...) for keys seen at least twice whose majority differs from
    `usual(key)`, or (given `wrong`, the spaces wrong without the key) leaves fewer wrong, the
    most frequent MAX_PAIR_EXCEPTIONS."""
    exceptions = []
    for key in {key for key, _ in tally}:
        yes, no = tally[key, True], tally[key, False]
        if yes + no < 2 or yes == no:
            continue
        fewer = min(yes, no) < wrong[key] if wrong is not None else (yes > no) != usual(key)
        if fewer:
            exceptions.append((yes + no, key, "spaced" if yes > no else "tight"))
    exceptions.sort(key=lambda item: (-item[0], item[1]))
    return tuple((key, how) for _, key, how in exceptions[:MAX_PAIR_EXCEPTIONS])


def _marks(text: str) -> list:
    """[(start, end, mark)] of the marks of a normalised text as rules 2 tokenize it. Found one
    character at a time (faster than one regex of runs and marks), a run where one can start."""
    n = len(text)
    found = []
    end = 0
    for match in _MARK.finditer(text):
        i = match.start()
        if i < end:
            continue  # inside the run just found
        mark = text[i]
        end = i + 1
        if mark in RUN_MARKS and (text[end : end + 1] == mark or text[end : end + 2] == " " + mark):
            run = _RUN.match(text, i)
            if run:
                end = run.end()
                mark = run.group()
        # Only a mark with a word character after it can be inside a word or number.
        elif end < n and mark in "'’.,:" and (text[end].isalnum() or text[end] == "_"):
            if _part_of_word(text, i, mark):
                continue
        found.append((i, end, mark))
    return found


def separates_digits(mark: str, before: str, after: str) -> bool:
    """Whether a mark between two numbers (the tokens before and after it) belongs to the number,
    printed tight: `3.5`, `6:30`, `1,000`. Under rules 2 a comma only before three digits, as a
    thousands separator: `October 11, 1805` is a comma between two numbers."""
    if mark not in ".,:" or not (before[-1:].isdigit() and after[:1].isdigit()):
        return False
    return mark != "," or (len(after) == 3 and after.isdigit())


def _part_of_word(text: str, i: int, mark: str) -> bool:
    """Whether the single mark at i is, under rules 2, inside a word or number (tokenize.py)
    rather than a mark of its own: `don’t`, `’em`, `M.A.`, `1,000`."""
    if len(mark) > 1:
        return False
    before = text[i - 1] if i > 0 else " "
    after = text[i + 1] if i + 1 < len(text) else " "
    if mark in "'’" and _is_word_char(before + after):
        return True  # `don’t`, `o'er`
    if mark == "’" and _ELIDED_AT.match(text, i):
        return True  # `’em`
    if mark == "." and _LETTER.match(before) and _LETTER.match(after):
        return True  # `M.A.`, `i.e.`
    if mark in ".,:" and before.isdigit():
        word = _WORD_AFTER.match(text, i + 1)
        return word is not None and separates_digits(mark, before, word.group())
    return False


def mark_class(mark: str) -> str:
    """A mark token as the pair rules see it: itself, or for a run (rules 2) its mark twice if
    tight (`..` for `...`, `....`), three times if spaced (`...` for `. . .`, `. . . .`)."""
    if len(mark) == 1:
        return mark
    return mark[0] * (3 if " " in mark else 2)


def _neighbour_class(text: str, i: int, step: int, near) -> tuple | None:
    """(class, spaced) of the token next to a mark (rules 2), as `_neighbour` finds it: its
    character as `char_class` sees it, a mark token found there (`near`: (start, end, mark)) as
    `mark_class` does, a word elided at its start (`’em`) as a word; None at a line's edge."""
    if not 0 <= i < len(text):
        return None
    char = text[i]
    spaced = char == " "
    if spaced:
        i += step
        if not 0 <= i < len(text):
            return None
        char = text[i]
    if char.isalnum() or char == "_":
        return _NEIGHBOURS["number" if char.isdigit() else "word", spaced]
    if char.isspace():
        return None
    if near is not None and near[0] <= i < near[1]:
        return mark_class(near[2]), spaced
    if char == "’" and _ELIDED_AT.match(text, i):
        return _NEIGHBOURS["word", spaced]
    return char, spaced


_NEIGHBOURS = {(kind, spaced): (kind, spaced) for kind in _WORDS for spaced in (False, True)}


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
    """Whether the marks' own rules (learned, else built in) put a space between two classes (a
    run's class, `--`, spaced as that run)."""
    after = left in _WORDS or _side_spaces(left, attach)[1]
    before = right in _WORDS or _side_spaces(right, attach)[0]
    return after and before


def _side_spaces(mark: str, attach: dict) -> tuple:
    """(space before, space after) a mark, or a class of runs (`mark_class`: the runs' default,
    tight as their mark or spaced)."""
    if len(mark) > 1:
        return default_spacing(mark[0] * 2 if len(mark) == 2 else f"{mark[0]} {mark[0]}")
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
    """(space before, space after) of a mark under the built-in rules. A run of marks (rules 2)
    spaces as its mark does, except a spaced run (`* * *`), which stands between spaces."""
    if len(mark) > 1:
        if " " in mark:
            return True, True
        mark = mark[0]
    return (
        mark not in CLOSERS and mark not in JOINERS,
        mark not in OPENERS and mark not in JOINERS,
    )
