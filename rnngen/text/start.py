"""A start text for generation, read like any other text.

The text is tokenised as the model's training text was, straight quotes are made the book's
curly ones where the vocabulary has only those (vocab.keyboard_tokens), and each unknown token is:
- read as `<unk>` where the model was trained with `<unk>` in its text (its vocabulary counts
  `<unk>` more than zero times: --max-vocab or --min-count dropped words), as `eval` reads it;
- left out of the conditioning otherwise (the default vocabulary keeps every word, so `<unk>` was
  never trained and its embedding is noise), as char-rnn's -ignore_bad_primetext does.
With `strict`, an unknown token is an error instead. A start text with no known token left is
always an error: there would be nothing to continue.
"""

from dataclasses import dataclass

from ..errors import UnknownWordError
from .tokenize import UNK, tokenize
from .vocab import Vocab, closest_known, keyboard_tokens


@dataclass(frozen=True)
class StartText:
    text: str  # as given
    tokens: tuple  # its tokens, unknown ones included (they still space the printed text)
    ids: tuple  # what the model reads: the known tokens' ids, unknown ones as <unk> or left out
    unknown: tuple  # the distinct unknown tokens, in order of appearance
    as_unk: bool  # unknown tokens were read as <unk> (else left out)

    def warning(self, vocab: Vocab) -> str:
        """One line naming every unknown token with its closest known ones; '' if none."""
        if not self.unknown:
            return ""
        how = "read as <unk>" if self.as_unk else "left out of what the model reads"
        return f"{unknown_words(self.unknown, vocab)}; {how} (--strict refuses instead)"


def read_start(text: str, tokenizer, vocab: Vocab, strict: bool = False) -> StartText:
    """The start text's tokens and the ids the model reads (see the module docstring)."""
    tokens = tokenize(text, tokenizer)
    if tokenizer.scheme == "whitespace" and tokenizer.level == "word" and not text.endswith("\n"):
        tokens = tokens[:-1]  # the line is not finished: no end-of-sentence yet
    if not tokens:
        raise UnknownWordError("the start text has no tokens; give a word such as --start games")
    tokens = keyboard_tokens(tokens, vocab)  # `"Oh,` -> `“Oh,` in a book printed with curly quotes
    unknown = tuple(dict.fromkeys(t for t in tokens if t not in vocab))
    if unknown and strict:
        raise UnknownWordError(unknown_words(unknown, vocab))
    as_unk = UNK in vocab and vocab.counts[vocab.id(UNK)] > 0
    ids = tuple(vocab.id(t) for t in tokens if as_unk or t in vocab)
    if not ids and len(unknown) == 1:
        raise UnknownWordError(unknown_words(unknown, vocab))
    if not ids:
        raise UnknownWordError(
            f"no word of the start text is in the model's vocabulary: {_listed(unknown, vocab)}; "
            "give at least one known word"
        )
    return StartText(text, tuple(tokens), ids, unknown, as_unk)


def unknown_words(unknown, vocab: Vocab) -> str:
    """`'x' is not in the model's vocabulary; closest known: a, b`, or for several words
    `'x' (closest known: a, b), 'y' (...) are not in the model's vocabulary`."""
    if len(unknown) == 1:
        return f"{unknown[0]!r} is not in the model's vocabulary; {_hint(unknown[0], vocab)}"
    return f"{_listed(unknown, vocab)} are not in the model's vocabulary"


def _listed(unknown, vocab: Vocab) -> str:
    return ", ".join(f"{t!r} ({_hint(t, vocab)})" for t in unknown)


def _hint(token: str, vocab: Vocab) -> str:
    close = closest_known(token, vocab)
    return f"closest known: {', '.join(close)}" if close else "try a common word"
