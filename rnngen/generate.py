"""Generating text: feed a start text through the model, then sample one token at a time.

The state is advanced one token per step (no recomputation of the prefix); each new token is drawn
from softmax(logits / temperature), optionally restricted to the top k, or taken greedily.
"""

import numpy as np

from . import backend
from .errors import UnknownWordError
from .model import init_state, step
from .tokenize import EOS, NEWLINE, PARAGRAPH, tokenize
from .vocab import closest_known, keyboard_tokens


def start_ids(text: str, tokenizer, vocab) -> list:
    """Ids of a start text; a token outside the vocabulary is an UnknownWordError naming the
    closest known tokens."""
    tokens = tokenize(text, tokenizer)
    if tokenizer.scheme == "whitespace" and tokenizer.level == "word" and not text.endswith("\n"):
        tokens = tokens[:-1]  # the line is not finished: no end-of-sentence yet
    if not tokens:
        raise UnknownWordError("the start text has no tokens; give a word such as --start games")
    tokens = keyboard_tokens(tokens, vocab)  # `"Oh,` -> `“Oh,` in a book printed with curly quotes
    for token in tokens:
        if token not in vocab:
            close = closest_known(token, vocab)
            hint = f"closest known: {', '.join(close)}" if close else "try a common word"
            raise UnknownWordError(f"{token!r} is not in the model's vocabulary; {hint}")
    return [vocab.id(t) for t in tokens]


def random_start_id(vocab, rng: np.random.Generator) -> int:
    """A start token drawn by frequency, never a special token or a line break."""
    ids = [
        i
        for i in range(vocab.n_specials, len(vocab))
        if vocab.tokens[i] not in (NEWLINE, PARAGRAPH, EOS) and vocab.counts[i] > 0
    ]
    weights = np.array([vocab.counts[i] for i in ids], dtype=np.float64)
    return ids[int(np.searchsorted(np.cumsum(weights), rng.random() * weights.sum(), side="right"))]


def pick(logits: np.ndarray, rng, temperature=1.0, top_k=0, greedy=False) -> int:
    """Choose the next id from (V,) logits."""
    if greedy or temperature <= 0:
        return int(np.argmax(logits))
    z = logits.astype(np.float64) / temperature
    if 0 < top_k < len(z):
        kth = np.partition(z, -top_k)[-top_k]
        z = np.where(z >= kth, z, -np.inf)
    p = np.exp(z - z.max())
    cdf = np.cumsum(p)
    return int(min(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"), len(z) - 1))


def generate(params, cfg, prompt, length, rng, temperature=1.0, top_k=0, greedy=False):
    """Yield `length` new ids continuing the prompt ids."""
    xp = backend.xp
    h = init_state(cfg, 1, params["embed"].dtype)
    for token_id in prompt[:-1]:
        _, h = step(params, cfg, xp.asarray([token_id]), h)
    current = prompt[-1]
    for _ in range(length):
        logits, h = step(params, cfg, xp.asarray([current]), h)
        current = pick(backend.to_numpy(logits[0]), rng, temperature, top_k, greedy)
        yield current
