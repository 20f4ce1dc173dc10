"""Stop conditions for generation (`rnngen sample --stop`), matched on the generated text as it is
printed (detokenised, before any wrapping; the start text is never searched).

- `sentence`: a sentence end: a run of `.`, `!`, `?` or `…`, the closing quotes or brackets after
  it, then white space followed by something other than a lower-case letter (`“Who?” said he`
  goes on) or a line break; not a `.` after a title such as `Mr`, nor one inside a number or
  word (`3.5`, `e.g`). The text stops after the closing marks.
- `paragraph`: a paragraph break (a blank line) after some generated text; the text stops after
  the break (printed as one line break at the end of the output).
- anything else: that text, literally (`\\n`, `\\t` and `\\\\` stand for a line break, a tab and a
  backslash); the text stops right after it, even inside a word.

StopMatcher takes the printed pieces as they come and gives back the text that is safe to print:
everything up to the first possible start of a match is passed on at once, and only what could
still turn into a match is held (a `.` until the next word shows whether it ended a sentence; the
start of a stop text until the next characters show whether it is the whole). Where several
conditions could match, the one ending first wins.
"""

import re
from dataclasses import dataclass

from ..errors import ConfigError

SENTENCE = "sentence"
PARAGRAPH = "paragraph"
TITLES = frozenset({"Mr", "Mrs", "Ms", "Dr", "St", "Mme", "Mlle", "Messrs", "Jr", "Sr", "Capt"})
_SENTENCE_END = re.compile(r"([.!?…]+)([”’\"')\]]*)(\s*)(\S)?")
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\"}


@dataclass(frozen=True)
class Stop:
    kind: str  # SENTENCE, PARAGRAPH or "text"
    text: str = ""  # the text, for "text"

    def __str__(self) -> str:
        return self.kind if self.kind != "text" else repr(self.text)


def parse_stop(value: str) -> Stop:
    """A --stop value: `sentence`, `paragraph`, or a text with \\n, \\t and \\\\ escapes."""
    if value in (SENTENCE, PARAGRAPH):
        return Stop(value)
    text = unescape(value)
    if not text:
        raise ConfigError("--stop needs a text, `sentence` or `paragraph`; got an empty text")
    return Stop("text", text)


def unescape(value: str) -> str:
    """\\n, \\t and \\\\ in an option's value as a line break, a tab and a backslash."""
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(0)), value)


class StopMatcher:
    """Feed the generated text's printed pieces to push(); stop generating once `matched` is set
    (the text returned so far then ends exactly at the match). finish() at the end of generation
    gives what was held back, and settles a sentence end that only the end of the text
    confirms."""

    def __init__(self, stops):
        self.stops = tuple(stops)
        self.matched = None  # the Stop that matched
        self._text = ""  # the generated text so far
        self._sent = 0  # characters of it given back

    @property
    def printed(self) -> int:
        """Characters of the generated text given back so far."""
        return self._sent

    def push(self, piece: str) -> str:
        if self.matched is not None:
            raise RuntimeError("a stop condition already matched; nothing more is printed")
        self._text += piece
        return self._release(final=False)

    def finish(self) -> str:
        return "" if self.matched is not None else self._release(final=True)

    def _release(self, final: bool) -> str:
        """Text up to the first match (and set `matched`), else up to the first place a match
        could still start (everything, when final)."""
        text, sent = self._text, self._sent
        best_end, best, hold = None, None, len(text)
        for stop in self.stops:
            end, start = self._find(stop, text, sent, final)
            if end is not None and (best_end is None or end < best_end):
                best_end, best = end, stop
            hold = min(hold, start)
        if best is not None and (final or hold >= best_end):  # no other match could end first
            self.matched, cut = best, best_end
        else:
            cut = len(text) if final else hold
        self._sent = max(cut, sent)
        return text[sent:cut]

    def _find(self, stop: Stop, text: str, sent: int, final: bool) -> tuple:
        """(end of the first match at or after `sent`, or None; where a match could still
        start: len(text) when nothing is pending)."""
        if stop.kind == SENTENCE:
            return _sentence(text, sent, final)
        if stop.kind == PARAGRAPH:
            at = text.find("\n\n", sent)
            while at >= 0 and not text[:at].strip():  # a break before any text is no paragraph
                at = text.find("\n\n", at + 1)
            if at >= 0:
                return at + 2, len(text)
            return None, len(text) - 1 if text.endswith("\n") and not final else len(text)
        at = text.find(stop.text, sent)
        if at >= 0:
            return at + len(stop.text), len(text)
        for k in range(min(len(stop.text) - 1, len(text) - sent), 0, -1):
            if text.endswith(stop.text[:k]):  # the longest tail that could begin the stop text
                return None, len(text) - k
        return None, len(text)


def _sentence(text: str, sent: int, final: bool) -> tuple:
    """(end of the first sentence end at or after `sent`, or None; start of a pending one)."""
    for m in _SENTENCE_END.finditer(text, sent):
        marks, closers, space, following = m.groups()
        if marks == "." and _word_before(text, m.start()) in TITLES:
            continue
        if following is None and "\n" not in space:  # what follows is not known yet
            if final:
                return m.end(2), len(text)
            return None, m.start()
        if "\n" in space or (space and not following.islower()):
            return m.end(2), len(text)
    return None, len(text)


def _word_before(text: str, at: int) -> str:
    m = re.search(r"(\w+)$", text[max(0, at - 12) : at])
    return m.group(1) if m else ""
