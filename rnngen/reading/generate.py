"""Generating text: the start text's ids, then a Reader (reader.py) reads them and draws one
token at a time (sampling.py's chain on log-probabilities, or for the class softmax without a
cache through its factorisation), each fed back with the state carried.
"""

from collections.abc import Iterator

import numpy as np

from ..text.start import read_start
from ..text.tokenize import EOS, NEWLINE, PARAGRAPH
from .reader import Reader
from .sampling import SamplerSettings
from .settings import Adaptation


def start_ids(text: str, tokenizer, vocab) -> list:
    """Ids of a start text; a token outside the vocabulary is an UnknownWordError naming the
    closest known tokens (text.start.read_start with strict; without, unknown words are read
    as <unk> or left out)."""
    return list(read_start(text, tokenizer, vocab, strict=True).ids)


def random_start_id(vocab, rng: np.random.Generator) -> int:
    """A start token drawn by frequency, never a special token or a line break."""
    ids = [
        i
        for i in range(vocab.n_specials, len(vocab))
        if vocab.tokens[i] not in (NEWLINE, PARAGRAPH, EOS) and vocab.counts[i] > 0
    ]
    weights = np.array([vocab.counts[i] for i in ids], dtype=np.float64)
    return ids[int(np.searchsorted(np.cumsum(weights), rng.random() * weights.sum(), side="right"))]


def generate(
    params, cfg, prompt, length, rng, settings: SamplerSettings | None = None,
    adaptation: Adaptation | None = None, records: bool = False,
) -> Iterator:  # fmt: skip
    """Yield `length` ids continuing the prompt ids (at least one), or with records their
    TokenRecords (id and log-probability), drawn by a Reader: adapted to the prompt and to what
    it writes as `adaptation` says."""
    reader = Reader(params, cfg, adaptation)
    for _ in reader.chunks(prompt, scores=False):  # the state after the prompt (and the cache)
        pass
    for record in reader.generate(length, rng, settings):
        yield record if records else record.id
