"""Laying generated text out as paragraphs: wrapping to a width, as a streaming filter.

The text comes in pieces (from tokenize.StreamDetokenizer, one token or so at a time). With a
width, each line is filled greedily with whole words, a line breaking at a space where the next
word would pass the width; a word longer than the width has a line of its own. Every line break
in the text (a paragraph break, or a line break the model wrote) is kept and starts a new line;
spaces at the end of a line, and of the text, are dropped.
Without a width (None or 0) the text passes through unchanged: one line per paragraph when the
paragraphs come as one line each. Widths count characters.

The output depends only on the text, not on how it was cut into pieces, so a streamed sample and
the same sample printed at once are the same bytes. A word is held back until the space or line
break after it (or the end) shows whether it fits.
"""

from collections.abc import Iterable, Iterator


class Wrapper:
    """Streaming word wrap: push() pieces of text, then finish() once; the texts returned,
    joined, are the wrapped text."""

    def __init__(self, width: int | None):
        self.width = width or 0
        self._column = 0  # characters on the current output line
        self._spaces = ""  # spaces after the last word, not yet printed
        self._word = ""  # the word being read, not yet printed

    def push(self, text: str) -> str:
        if not self.width:
            return text
        out = []
        for ch in text:
            if ch == " ":
                out.append(self._flush_word())
                self._spaces += ch
            elif ch == "\n":
                out.append(self._flush_word())
                out.append("\n")
                self._spaces, self._column = "", 0  # spaces before a line break are dropped
            else:
                self._word += ch
        return "".join(out)

    def finish(self) -> str:
        if not self.width:
            return ""
        text = self._flush_word()
        self._spaces = ""  # spaces at the end of the text, as at the end of a line, are dropped
        return text

    def _flush_word(self) -> str:
        word, self._word = self._word, ""
        if not word:
            return ""
        if self._column > 0 and self._column + len(self._spaces) + len(word) > self.width:
            self._spaces, self._column = "", len(word)
            return "\n" + word
        text = self._spaces + word
        self._spaces, self._column = "", self._column + len(text)
        return text


def wrap_pieces(pieces: Iterable[str], width: int | None) -> Iterator[str]:
    """The pieces of text, wrapped to `width` (None or 0: unchanged), as they come."""
    wrapper = Wrapper(width)
    for piece in pieces:
        text = wrapper.push(piece)
        if text:
            yield text
    tail = wrapper.finish()
    if tail:
        yield tail


def wrap_text(text: str, width: int | None) -> str:
    """The whole text wrapped to `width` (None or 0: unchanged)."""
    return "".join(wrap_pieces([text], width))
