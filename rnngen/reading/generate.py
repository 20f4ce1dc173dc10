"""Generating text: feed a start text through the model, then sample one token at a time.

The start text goes through the model in one sequence forward (the forward pass training and
evaluation use); then each new token is drawn (sampling.py's chain, on the full softmax's logits
or, for the class softmax, through its factorisation) and fed back, one step at a time, the
state carried (no recomputation of the prefix).
"""

import numpy as np

from ..core import backend
from ..core.class_softmax import ClassDistribution
from ..core.model import init_state, output_weights, sequence_top
from ..text.start import read_start
from ..text.tokenize import EOS, NEWLINE, PARAGRAPH
from .sampling import SamplerSettings, sample_factored, sample_token


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


def next_id(params, cfg, top, settings: SamplerSettings, history, rng) -> int:
    """The next id after a position whose last-layer output is top (1, H)."""
    W, b = output_weights(params)
    if b is None:  # W is [W; b]
        W, b = W[:-1], W[-1]
    if cfg.softmax == "class":
        dist = ClassDistribution(top[0], params["cls.W"], params["cls.b"], W, b, cfg.class_bounds)
        return sample_factored(dist, settings, history, rng)
    return sample_token(backend.to_numpy(top @ W + b)[0], settings, history, rng)


def prime(params, cfg, prompt):
    """The start text in one sequence forward: prompt ids -> the last position's top (1, H) and
    the state (L, K, 1, H) after it."""
    ids = backend.xp.asarray(np.asarray(prompt, dtype=np.int32)[:, None])  # (T, 1)
    top, state = sequence_top(params, cfg, ids, init_state(cfg, 1, params["embed"].dtype))
    return top[-1:], state


def generate(params, cfg, prompt, length, rng, settings: SamplerSettings | None = None):
    """Yield `length` new ids continuing the prompt ids (at least one)."""
    settings = settings or SamplerSettings()
    xp = backend.xp
    history = list(prompt)
    top, state = prime(params, cfg, prompt)
    for i in range(length):
        current = next_id(params, cfg, top, settings, history, rng)
        history.append(current)
        yield current
        if i + 1 < length:
            top, state = sequence_top(params, cfg, xp.asarray([[current]], dtype=np.int32), state)
