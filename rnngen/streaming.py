"""Turning tokens into text one token at a time, for `rnngen sample` to print as it generates.

`StreamDetokenizer.push(token)` returns the text that is final once `token` is known, and
`finish()` the rest, so that the pieces, joined, are exactly `tokenize.detokenize(tokens)`.
Each push costs O(1): the streamer carries the little state `detokenize` carries from left to
right instead of re-joining a growing prefix.

- char level: a token is its own text.
- whitespace rules: a token is printed with a space before it unless it starts a line; `<eos>`
  ends the line.
- book rules: whether a space goes before a token depends on the tokens on both sides of it and on
  which straight quotes are open, so the streamer holds back one token and prints it when the
  next one arrives (or at `finish()`). The rules are those of `tokenize._join_book_tokens`, whose
  character classes it shares; tests check the two agree on generated and random token streams.
"""

from .tokenize import (
    _JOINERS,
    _NO_SPACE_AFTER,
    _NO_SPACE_BEFORE,
    EOS,
    TokenizerConfig,
    _is_word,
)

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
        """The held token with the space before it, now that its right neighbour is known.
        Mirrors one iteration of tokenize._join_book_tokens."""
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
            space = False
            self._after_opening_quote = True
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
