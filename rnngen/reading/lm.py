"""The Python API for programs and notebooks: a loaded model (LanguageModel, from rnngen.load)
that generates, scores texts and lines, and hands out readers (TextReader) that read a text a
piece at a time, adapting as they go, and say what comes next. Everything goes through
texts.py's functions and the Reader (reader.py), as the command line does.
"""

import math
from dataclasses import replace

import numpy as np

from ..text.tokenize import detokenize, tokenize
from .evaluate import perplexity
from .reader import Reader, TokenRecord
from .sampling import DEFAULT, bind
from .settings import Adaptation
from .texts import (
    EvalReport,
    LineScore,
    adaptation_settings,
    evaluate_text,
    prompt_ids,
    reader,
    sample_text,
    score_lines,
)


class TextReader:
    """A Reader over text: tokens in the model's tokenizer, log-probabilities in nats."""

    def __init__(self, model, reader: Reader):
        self.model, self.reader = model, reader
        self.nll = 0.0  # summed -log p of the tokens predicted so far
        self.records: list[TokenRecord] = []  # the tokens generated, with their log-probs

    def read(self, text: str) -> np.ndarray:
        """Read a piece of text; the log-probability of each of its tokens (the first token
        ever read is context, not predicted). Unknown words read as <unk>."""
        ids = self.model.vocab.encode(tokenize(text, self.model.tokenizer))
        nll = self.reader.read(ids)
        self.nll += float(nll.sum())
        return -nll

    @property
    def perplexity(self) -> float:
        """Of every token predicted so far, generated ones included."""
        n = self.reader.predicted
        return perplexity(self.nll / n) if n else math.nan

    def next(self, k: int = 10) -> list:
        """The k likeliest next tokens after what has been read: (token, probability) pairs."""
        logp = self.reader.next_log_probs()
        best = np.argsort(-logp, kind="stable")[:k]
        return [(self.model.vocab.tokens[i], float(np.exp(logp[i]))) for i in best]

    def generate(self, length: int = 50, seed: int | None = None, **sampler) -> str:
        """`length` tokens drawn after what has been read (each read in turn, so the reader
        adapts to them), detokenised. sampler: SamplerSettings' fields (temperature, top_k ...)."""
        rng = np.random.default_rng(seed)
        settings = bind(replace(DEFAULT, **sampler), self.model.vocab)  # as `rnngen sample`
        records = list(self.reader.generate(length, rng, settings))
        self.records += records
        self.nll -= sum(r.logprob for r in records)
        return detokenize(self.model.vocab.decode([r.id for r in records]), self.model.tokenizer)


class LanguageModel:
    """A trained model from a model file (rnngen.load): `model` is the loaded file
    (files.storage.TrainedModel). cache/dynamic: adapt as `rnngen eval --cache --dynamic` does,
    with the settings tuned into the file, or the defaults."""

    def __init__(self, model):
        self.model = model

    @property
    def vocab(self):
        return self.model.vocab

    def adaptation(self, cache: bool = False, dynamic: bool = False) -> Adaptation | None:
        return adaptation_settings(self.model, cache, None, dynamic)

    def reader(self, cache: bool = False, dynamic: bool = False) -> TextReader:
        """A TextReader starting from nothing read."""
        return TextReader(self.model, reader(self.model, self.adaptation(cache, dynamic)))

    def generate(
        self, start: str | None = None, length: int = 50, seed: int | None = None,
        cache: bool = False, dynamic: bool = False, **sampler,
    ) -> str:  # fmt: skip
        """The start text (None: a word drawn by frequency) and `length` tokens after it, as
        `rnngen sample --seed` prints them. sampler: SamplerSettings' fields."""
        rng = np.random.default_rng(seed)
        settings = replace(DEFAULT, **sampler)  # `rnngen sample`'s defaults (DRY on)
        return sample_text(self.model, start, length, rng, settings,
                           self.adaptation(cache, dynamic))  # fmt: skip

    def evaluate(self, text: str, cache: bool = False, dynamic: bool = False) -> EvalReport:
        """`rnngen eval`'s figures (report.to_dict() is its --json)."""
        return evaluate_text(self.model, text, self.adaptation(cache, dynamic))

    def perplexity(self, text: str, cache: bool = False, dynamic: bool = False) -> float:
        """The text's perplexity (the adapted one with cache or dynamic)."""
        report = self.evaluate(text, cache, dynamic)
        return (report.result if report.adapted is None else report.adapted.result).perplexity

    def score_lines(self, lines, cache: bool = False) -> list[LineScore]:
        """Each line scored on its own, as `rnngen score` does: LineScore(tokens, nll) with
        .logprob and .perplexity."""
        return [s for _, s in score_lines(self.model, lines, adaptation=self.adaptation(cache))]

    def prompt(self, start: str) -> list:
        """The ids of a start text (an unknown word is an error naming close known ones)."""
        return prompt_ids(self.model, start, np.random.default_rng(0))
