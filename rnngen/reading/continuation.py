"""The printed text of a sample: the start text exactly as given, then the generated tokens
detokenised as they come, cut where a stop condition matches.

The start text's tokens (unknown ones too: they space what follows) go through the detokenizer
first, so that the first generated token is spaced as it would be after them, but what the
detokenizer makes of them is not printed: the start text is, as typed. Book-style detokenizing
holds one token back (a token's space depends on the token after it), so the first piece given
out after a generated token is still the start text's last token, and is dropped.

What was generated is kept in a SampleLog: each token printed with its log-probability under the
model before the sampler chain (and the likeliest alternatives, where asked for) and the stop
that matched.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from ..text.tokenize import StreamDetokenizer
from .stops import StopMatcher

UNTIL_STOP_CAP = 100_000  # tokens at most where --length 0 generates until a stop condition


class Generated(NamedTuple):
    """One generated token: its id and string, its log-probability under the model (as adapted
    when it was drawn) before the sampler chain, and the likeliest tokens at its position with
    theirs ((token, logprob) pairs; empty unless asked for)."""

    id: int
    token: str
    logprob: float
    top: tuple = ()


@dataclass
class SampleLog:
    """What one sample generated, filled in as it streams."""

    tokens: list = field(default_factory=list)  # Generated, the tokens whose text was printed
    stop: object = None  # the stops.Stop that ended the sample; None: the token limit did


def generation_limit(length: int, stops) -> int:
    """Tokens to generate: `length`, or UNTIL_STOP_CAP where length is 0 and there are stops."""
    return UNTIL_STOP_CAP if length == 0 and stops else length


def printed_pieces(
    start_text: str, start_tokens: Iterable[str], records: Iterable, tokenizer, stops=(),
    log: SampleLog | None = None,
) -> Iterator[str]:  # fmt: skip
    """The sample's text a piece at a time. records: a Generated per generated token, drawn as
    the pieces are asked for (stopping early stops generating)."""
    log = log if log is not None else SampleLog()
    yield start_text
    stream = StreamDetokenizer(tokenizer)
    for token in start_tokens:
        stream.push(token)
    book = not (tokenizer.level == "char" or tokenizer.scheme == "whitespace")
    skip = 1 if book else 0  # the held start token's piece
    matcher = StopMatcher(stops)
    lstrip = start_text[-1:].isspace()  # no space after a start text ending in one
    starts = []  # where each generated token's piece begins in the generated text
    made = 0  # characters of generated text so far

    def take(piece: str) -> str:
        nonlocal made, lstrip
        if lstrip and piece:
            piece, lstrip = piece.lstrip(" "), False
        starts.append(made)
        made += len(piece)
        return matcher.push(piece)

    count = 0
    for record in records:
        log.tokens.append(record)
        count += 1
        piece = stream.push(record.token)
        if skip:
            skip -= 1
            continue
        out = take(piece)
        if out:
            yield out
        if matcher.matched is not None:
            break
    else:
        if count and book:  # the last token's piece, held back by the detokenizer
            out = take(stream.finish())
            if out:
                yield out
        out = matcher.finish()
        if out:
            yield out
    log.stop = matcher.matched
    if log.stop is not None:  # keep the tokens whose text was printed
        cut = matcher.printed
        del log.tokens[sum(1 for s in starts if s < cut) :]
