"""Reading texts with a trained model: what `eval`, `score`, `sample` and `tune` do, on a loaded
model file (files.storage.TrainedModel, or anything with its fields: config, tokenizer, vocab,
params in the file layout, stats, adapt). Each tokenises as the model's training text was and
goes through one Reader (reader.py), static or adapted.
"""

import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from itertools import islice

import numpy as np

from ..core import backend
from ..core.model import check_memory, join_output
from ..errors import InputDataError
from ..text.corpus import open_input
from ..text.start import StartText
from ..text.start import read_start as start_text_of
from ..text.tokenize import (
    EOS,
    NEWLINE,
    PARAGRAPH,
    TokenizerConfig,
    normalize_book_text,
    tokenize,
)
from .continuation import Generated, SampleLog, generation_limit, printed_pieces
from .evaluate import EvalResult, perplexity
from .generate import generate, random_start_id, start_ids
from .reader import Reader, TokenRecord
from .sampling import SamplerSettings, bind
from .settings import Adaptation, CacheSettings, DynamicSettings
from .tune import TuneResult, tune


def device_arrays(arrays: dict) -> dict:
    """Arrays keyed like a model file's parameters, on the device, out.W and out.b joined."""
    return join_output({k: backend.xp.asarray(v) for k, v in arrays.items()})


def device_params(model) -> dict:
    """The model's parameters on the array module's device, in the layout the model computes
    with (out.Wb joined from the file's out.W and out.b). On a GPU the weights are copied to a
    memory that may be too small: checked before the copy, not after."""
    if backend.xp is not np:
        check_memory(model.config, 1, 1, training=False)
    return device_arrays(model.params)


def reader(model, adaptation: Adaptation | None = None) -> Reader:
    """A Reader of the model, adapting as `adaptation` says (None: the trained model alone)."""
    return Reader(device_params(model), model.config, adaptation)


def text_ids(model, text: str) -> np.ndarray:
    """The ids of a text under the model's tokenizer and vocabulary."""
    return model.vocab.encode(tokenize(text, model.tokenizer))


# --- eval ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Adapted:
    """A text as scored by the model adapting to it as it reads."""

    result: EvalResult
    adaptation: Adaptation
    seconds: float
    static_seconds: float
    dropped_steps: int = 0  # dynamic evaluation's steps undone by its divergence guard

    def to_dict(self) -> dict:
        a, r = self.adaptation, self.result
        return {
            "cache": None if a.cache is None else a.cache.to_dict(),
            "dynamic": None if a.dynamic is None else a.dynamic.to_dict(),
            "cross_entropy": r.cross_entropy,
            "bits_per_token": r.bits_per_token,
            "perplexity": r.perplexity,
            "seconds": self.seconds,
            "static_seconds": self.static_seconds,
            "dropped_steps": self.dropped_steps,
        }


@dataclass(frozen=True)
class EvalReport:
    result: EvalResult
    oov_rate: float  # share of the text's tokens outside the model's vocabulary
    characters: int = 0  # characters the scored tokens cover (see scored_characters)
    adapted: Adapted | None = None  # the same tokens read adapting, when asked for

    @property
    def bits_per_character(self) -> float:
        """The summed NLL over the scored characters, in bits."""
        return self.result.nll / math.log(2) / self.characters if self.characters else math.nan

    def to_dict(self) -> dict:
        """eval --json: the static figures, and the adapted ones under "adapted"."""
        r = self.result
        out = {
            "tokens": r.tokens,
            "oov_rate": self.oov_rate,
            "cross_entropy": r.cross_entropy,
            "bits_per_token": r.bits_per_token,
            "perplexity": r.perplexity,
            "characters": self.characters,
            "bits_per_character": self.bits_per_character,
        }
        if self.adapted is not None:
            out["adapted"] = self.adapted.to_dict()
        return out


def scored_characters(text: str, tokens: list, tokenizer: TokenizerConfig) -> int:
    """The characters of a text that evaluation predicts: the text as the tokenizer reads it
    (lowercased if it lowercases; line ends as LF; for book rules, its whitespace normalised:
    `tokenize.normalize_book_text`; for whitespace rules, each line's tokens one space apart and
    a line end for each `<eos>`), less the characters of the first token, which is context and
    not predicted. Every character the tokens stand for is counted, spaces and line breaks too,
    so bits per character compare models with different tokenizers on the same text."""
    if not tokens:
        return 0
    if tokenizer.lowercase:
        text = text.lower()
    if tokenizer.level == "char":
        return len(tokens) - 1
    if tokenizer.scheme == "whitespace":
        total = sum(len(" ".join(line.split())) + 1 for line in text.splitlines())
        return total - (1 if tokens[0] == EOS else len(tokens[0]))
    normalized = normalize_book_text(text)
    return len(normalized) - (normalized.index(tokens[0]) + len(tokens[0]))


def token_nll(model, ids, adaptation: Adaptation | None = None, on_progress=None) -> tuple:
    """-log p of ids[1:] as `eval` scores them (one stream, each token after all before it), and
    the Reader that read them: ((n-1,) float64, Reader)."""
    r = reader(model, adaptation)
    return r.read(ids, on_progress), r


def evaluate_text(
    model, text: str, adaptation: Adaptation | None = None, on_progress: Callable | None = None
) -> EvalReport:
    """Score a text with the model, tokenised exactly as the model's training text was; with an
    adaptation, the same tokens again as read adapting (report.adapted; without dynamic
    evaluation one reading gives both). on_progress(done, total) hears the tokens scored."""
    tokens = tokenize(text, model.tokenizer)
    oov = sum(1 for t in tokens if t not in model.vocab) / max(len(tokens), 1)
    ids = model.vocab.encode(tokens)
    if len(ids) < 2:  # the first token is context only: nothing would be scored
        count = "1 token" if len(ids) == 1 else f"{len(ids)} tokens"
        raise InputDataError(
            f"the text has {count}, too few: at least 2 are needed; give a longer text"
        )
    characters = scored_characters(text, tokens, model.tokenizer)
    began = time.perf_counter()
    adapted = None
    if adaptation is None or adaptation.dynamic is not None:
        static = token_nll(model, ids, None, None if adaptation else on_progress)[0]
    static_seconds = time.perf_counter() - began
    if adaptation is not None:
        began = time.perf_counter()
        r = reader(model, adaptation)
        chunks = list(r.chunks(ids, on_progress))
        nll = np.concatenate([c.nll for c in chunks]) if chunks else np.zeros(0)
        if adaptation.dynamic is None:  # the model's own scores are the static ones
            static = np.concatenate([backend.to_numpy(c.model_nll) for c in chunks] or [nll])
        result = EvalResult(tokens=len(nll), nll=float(nll.sum()))
        adapted = Adapted(result, adaptation, time.perf_counter() - began, static_seconds,
                          r.dropped_steps)  # fmt: skip
    report = EvalResult(tokens=len(static), nll=float(static.sum()))
    return EvalReport(report, oov, characters, adapted)


# --- sample ---------------------------------------------------------------------------------------


def read_start(model, start: str, strict: bool = False) -> StartText:
    """A start text as the model reads it (text/start.py: unknown words read as <unk> where the
    model learned it, else left out; with strict, an UnknownWordError)."""
    return start_text_of(start, model.tokenizer, model.vocab, strict)


def _start(model, start, rng: np.random.Generator) -> StartText:
    """The start text (a StartText, or a string read without strict), or for None a start word
    drawn by frequency, printed as itself."""
    if isinstance(start, StartText):
        return start
    if start is not None:
        return read_start(model, start)
    i = random_start_id(model.vocab, rng)
    return StartText(model.vocab.tokens[i], (model.vocab.tokens[i],), (i,), (), False)


def prompt_ids(model, start: str | None, rng: np.random.Generator) -> list:
    """The start text's ids, or a start word drawn by frequency (start None); an unknown word
    is an error naming close known ones."""
    if start is None:
        return [random_start_id(model.vocab, rng)]
    return start_ids(start, model.tokenizer, model.vocab)


def generate_records(
    model, prompt: list, length: int, rng: np.random.Generator,
    settings: SamplerSettings | None = None, adaptation: Adaptation | None = None,
) -> Iterator[TokenRecord]:  # fmt: skip
    """`length` tokens continuing the prompt ids, each a TokenRecord (its id and log-probability
    under the model as adapted when it was drawn): the start text is read first (dynamic
    evaluation steps on its whole segments, as eval would), then each token is drawn and read."""
    settings = bind(settings or SamplerSettings(), model.vocab)
    yield from generate(device_params(model), model.config, prompt, length, rng, settings,
                        adaptation, records=True)  # fmt: skip


def sample_text(
    model, start, length: int, rng: np.random.Generator,
    settings: SamplerSettings | None = None, adaptation: Adaptation | None = None,
    log: SampleLog | None = None, stops=(), top_probs: int = 0,
) -> str:  # fmt: skip
    """The whole text of sample_pieces."""
    return "".join(sample_pieces(model, start, length, rng, settings, adaptation, log, stops,
                                 top_probs))  # fmt: skip


def sample_pieces(
    model, start, length: int, rng: np.random.Generator,
    settings: SamplerSettings | None = None, adaptation: Adaptation | None = None,
    log: SampleLog | None = None, stops=(), top_probs: int = 0,
) -> Iterator[str]:  # fmt: skip
    """The start text as given (a string, or a StartText from read_start; None: a start word
    drawn by frequency), then `length` generated tokens (0 with stops: until one matches, at
    most continuation.UNTIL_STOP_CAP), detokenised and yielded a piece at a time as they are
    generated, cut after the first of `stops` (stops.Stop) to match. `settings`: the sampler
    chain (default: plain sampling at temperature 1). With an adaptation, generation adapts to
    the start text and to what it writes. `log` (a SampleLog) collects each printed token as a
    Generated (id, token, log-probability before the chain, and with top_probs the likeliest
    tokens at its position) and the stop that matched."""
    begin = _start(model, start, rng)
    settings = bind(settings or SamplerSettings(), model.vocab)
    r = reader(model, adaptation)
    for _ in r.chunks(list(begin.ids), scores=False):  # the state after the start (the cache)
        pass
    limit = generation_limit(length, stops)
    records = _generated(r, model.vocab, limit, rng, settings, top_probs)
    yield from printed_pieces(begin.text, begin.tokens, records, model.tokenizer, stops, log)


def _generated(r: Reader, vocab, limit: int, rng, settings, top_probs: int):
    """Up to `limit` tokens drawn by the reader, each a Generated."""
    for _ in range(limit):
        top = ()
        if top_probs:  # every token's log p: (V,), before the chain
            logp = r.next_log_probs()
            best = np.argsort(-logp, kind="stable")[:top_probs]
            top = tuple((vocab.tokens[i], float(logp[i])) for i in best)
        record = r.sample(rng, settings)
        yield Generated(record.id, vocab.tokens[record.id], record.logprob, top)


def token_log_probs(model, text: str, adaptation: Adaptation | None = None, on_progress=None):
    """The text's tokens (as tokenised for the model) and the log-probability of each after all
    before it, as `eval` scores them (one stream; adapting as it reads with an adaptation):
    (tokens, (n-1,) float64 for tokens[1:])."""
    tokens = tokenize(text, model.tokenizer)
    nll, _ = token_nll(model, model.vocab.encode(tokens), adaptation, on_progress)
    return tokens, -nll


# --- score --------------------------------------------------------------------------------------


def iter_lines(path: str) -> Iterator[str]:
    """The lines of a text file (or of standard input for `-`) without their line ends, read
    lazily; bytes that are not UTF-8 or a NUL byte are an InputDataError naming the line. An
    empty input has no lines (not an error: a filter that gets nothing prints nothing)."""
    name = "standard input" if path == "-" else path
    with open_input(path, spool=False) as f:
        yield from _decode_lines(f, name)


def _decode_lines(f, name: str) -> Iterator[str]:
    for number, raw in enumerate(f, 1):
        if b"\0" in raw:
            raise InputDataError(
                f"{name} line {number} has a NUL byte, so it looks like a binary file; "
                "give a plain-text file"
            )
        try:
            line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as e:
            raise InputDataError(
                f"{name} line {number} is not valid UTF-8 (byte 0x{raw[e.start]:02x} at byte "
                f"{e.start + 1} of the line); convert it to UTF-8, e.g. with iconv"
            ) from None
        if line.endswith("\n"):
            line = line[:-1]
        yield line.removesuffix("\r")


@dataclass(frozen=True)
class LineScore:
    tokens: int  # tokens predicted
    nll: float  # their summed negative log-likelihood, nats

    @property
    def logprob(self) -> float:
        """Total natural-log probability of the line's tokens."""
        return 0.0 - self.nll  # 0.0, not -0.0, for a line with no tokens

    @property
    def perplexity(self) -> float:
        """exp(nll / tokens); NaN for a line with no tokens."""
        return perplexity(self.nll / self.tokens) if self.tokens else math.nan


def line_context_id(model) -> int:
    """The token a line is predicted after: `<eos>` for whitespace tokenizing (as a sentence
    follows the previous sentence's end in PTB text); a paragraph break when the book tokenizer
    joins wrapped lines (a line of running text then starts where a paragraph does); else a line
    break. The other break, or `<unk>`, when the vocabulary lacks that one."""
    vocab = model.vocab
    tokenizer = model.tokenizer
    if tokenizer.scheme == "whitespace" and tokenizer.level == "word":
        return vocab.id(EOS)
    order = (PARAGRAPH, NEWLINE) if tokenizer.joins_lines else (NEWLINE, PARAGRAPH)
    for token in order:
        if token in vocab:
            return vocab.id(token)
    return 0


def line_tokens(model, line: str) -> list:
    """The tokens of one line that `score_lines` predicts. Whitespace tokenizing ends them with
    `<eos>` (the line's end is scored, as in PTB perplexity); book and char tokenizing do not
    score the line's end (in a book a line break falls wherever the printer wrapped the line, and
    with joined lines a line given to score may be a sentence or a whole paragraph)."""
    if model.tokenizer.scheme == "whitespace" and model.tokenizer.level == "word":
        return tokenize(line, model.tokenizer) if line.strip() else []
    return tokenize(line, model.tokenizer)


def score_lines(
    model, lines: Iterable[str], chunk=4096, adaptation: Adaptation | None = None
) -> Iterator[tuple]:
    """Score each line on its own, from the zero state after the context token of
    `line_context_id`; yields (line, LineScore) per line, in order. Lines are read and scored
    `chunk` at a time (batched by length inside a chunk), so output starts before input ends.
    With a cache (adaptation.cache), the cache holds the lines before each line, in input
    order, so the scores depend on the order of the lines."""
    r = reader(model, adaptation)
    context = line_context_id(model)
    lines = iter(lines)
    while batch := list(islice(lines, chunk)):
        sequences = []
        for line in batch:
            ids = model.vocab.encode(line_tokens(model, line))
            inputs = np.concatenate([[context], ids[:-1]]).astype(np.int32) if len(ids) else ids
            sequences.append((inputs, ids))
        for line, nll in zip(batch, r.lines(sequences), strict=True):
            yield line, LineScore(len(nll), float(nll.sum()))


# --- adapting and tuning ----------------------------------------------------------------------


def adaptation_settings(
    model,
    cache: bool = False,
    cache_values: dict | None = None,
    dynamic: bool = False,
    dynamic_values: dict | None = None,
    stats: dict | None = None,
) -> Adaptation | None:
    """The adaptation asked for: each part's settings are the model file's tuned ones (`tune
    --write`; when both are asked for, the pair tuned together), else the defaults, with the
    values given (not None) on top. A value turns its part on. stats: the gradient statistics
    on the device (None: the model file's). None when nothing is asked for."""
    cache_values = {k: v for k, v in (cache_values or {}).items() if v is not None}
    dynamic_values = {k: v for k, v in (dynamic_values or {}).items() if v is not None}
    tuned = model.adapt or {}
    cache_settings = dynamic_settings = None
    dynamic = dynamic or bool(dynamic_values) or stats is not None
    cache = cache or bool(cache_values)
    together = cache and dynamic and "both" in tuned
    if cache:
        part = "both" if together else "cache"  # tuned on the adapted model
        base = CacheSettings.from_dict(tuned[part]) if part in tuned else CacheSettings()
        cache_settings = replace(base, **cache_values)
    if dynamic:
        part = "both_dynamic" if together and "both_dynamic" in tuned else "dynamic"
        base = DynamicSettings.from_dict(tuned[part]) if part in tuned else DynamicSettings()
        dynamic_settings = replace(base, **dynamic_values)
        if stats is None and model.stats is not None:
            stats = device_arrays(model.stats)
    if cache_settings is None and dynamic_settings is None:
        return None
    return Adaptation(cache_settings, dynamic_settings, stats)


def tune_text(model, text: str, on_progress=None) -> TuneResult:
    """Search the adaptation settings on a held-out text (tune.py)."""
    ids = text_ids(model, text)
    if len(ids) < 2:
        raise InputDataError("the text to tune on has fewer than two tokens; give a longer one")
    stats = None if model.stats is None else device_arrays(model.stats)
    return tune(device_params(model), model.config, ids, stats, on_progress)
