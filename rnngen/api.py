"""The operations behind the CLI's subcommands, as plain functions a program can call too.

Each takes and returns data (never prints), so `cli.py` is left with parsing, printing and mapping
errors to exit codes.
"""

import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from itertools import islice
from pathlib import Path

import numpy as np

from .core import backend
from .core.class_softmax import make_class_bounds
from .core.model import (
    ModelConfig,
    check_memory,
    count_params,
    init_state,
    join_output,
    split_output,
    token_scores,
)
from .errors import ConfigError, InputDataError, OutputError
from .files.checkpoint import Checkpoint, data_fingerprint, load_checkpoint, save_checkpoint
from .files.storage import (
    MODEL_FORMAT,
    VERSION,
    TrainedModel,
    is_npz,
    load_corpus,
    load_model,
    save_model,
)
from .reading import adapt
from .reading.evaluate import EvalResult, evaluate, perplexity, score_sequences
from .reading.generate import generate, random_start_id, start_ids
from .reading.sampling import SamplerSettings
from .reading.tune import TuneResult, tune
from .text.corpus import (
    STRICT_UTF8,
    Corpus,
    TextOptions,
    default_corpus_path,
    encode_file,
    open_input,
    read_text,
)
from .text.tokenize import (
    EOS,
    NEWLINE,
    PARAGRAPH,
    StreamDetokenizer,
    TokenizerConfig,
    detokenize,
    normalize_book_text,
    tokenize,
)
from .text.vocab import Vocab
from .training.events import EpochEnd, Finishing, Sampled, Validated
from .training.schedule import END_MARGIN, EndWork
from .training.stats import gradient_stats, stats_tokens
from .training.train import TrainConfig, split_data, train


def training_corpus(
    path: str | None,
    tokenizer: TokenizerConfig | None = None,
    max_vocab: int | None = None,
    min_count: int = 1,
    options: TextOptions = STRICT_UTF8,
    vocab: Vocab | None = None,
) -> Corpus:
    """The corpus to train on: an `encode` output (its ids memory-mapped), a text file (encoded in
    streaming passes), `-` for stdin, or (path None) the bundled default corpus. Tokenizer settings
    only apply to text; an encoded corpus has its own. With `vocab` (resuming), text is encoded
    with that vocabulary and an encoded corpus must have it."""
    if path is not None and path != "-" and is_npz(path):
        if tokenizer is not None and vocab is None or max_vocab is not None or min_count != 1:
            raise ConfigError(
                f"{path} is already encoded, with its own tokenizer and vocabulary; "
                "drop the tokenizer options or give the text instead"
            )
        corpus = load_corpus(path, mmap=True)
        if vocab is not None and (corpus.vocab != vocab or corpus.tokenizer != tokenizer):
            raise ConfigError(f"{path} was encoded with another vocabulary than the checkpoint's")
        return corpus
    source = str(default_corpus_path()) if path is None else path
    return encode_file(
        source, tokenizer or TokenizerConfig(), max_vocab, min_count, options, vocab=vocab
    )


def model_config(
    vocab,
    softmax: str = "full",
    classes: int | None = None,
    embed: int | None = None,
    tie_weights: bool | None = None,
    **sizes,
) -> ModelConfig:
    """The model config for a vocabulary; for the class softmax the classes are cut from the
    vocabulary's counts (about sqrt(V) of them unless `classes` says otherwise).

    `train`'s defaults: the embedding as wide as the hidden state (embed None), and the output
    layer sharing the embedding's weights wherever the two sizes are equal (tie_weights None).
    Tying took 4% off the test perplexity of a GRU and 2% off a tanh RNN trained for 5 minutes on
    War and Peace, with V x H fewer weights (benchmarks/results/recipes.md)."""
    if classes is not None and softmax != "class":
        raise ConfigError(
            f"--classes is for --softmax class (the softmax is {softmax}); "
            "add --softmax class or drop --classes"
        )
    if classes is not None and not 1 <= classes <= len(vocab):
        raise ConfigError(
            f"--classes must be between 1 and the vocabulary size, {len(vocab):,}, got {classes}; "
            "leave it out for about the square root of the vocabulary size"
        )
    bounds = make_class_bounds(vocab.counts, classes) if softmax == "class" else ()
    if embed is None:
        embed = sizes.get("hidden", ModelConfig.hidden)
    if tie_weights is None:
        tie_weights = embed == sizes.get("hidden", ModelConfig.hidden)
    return ModelConfig(
        len(vocab),
        softmax=softmax,
        class_bounds=bounds,
        embed=embed,
        tie_weights=tie_weights,
        **sizes,
    )


def check_writable(path) -> None:
    """Fail before hours of training, not after, when the output cannot be written."""
    folder = Path(path).parent
    if not folder.is_dir():
        raise OutputError(f"cannot write {path}: folder {folder} does not exist")
    if Path(path).is_dir():
        raise OutputError(f"cannot write {path}: it is a folder; give a file name")


def encode_for(corpus: Corpus, text: str):
    """Ids of another text (a validation file) under the corpus's tokenizer and vocabulary."""
    return corpus.vocab.encode(tokenize(text, corpus.tokenizer))


def default_checkpoint_path(out) -> str:
    """`model.npz` -> `model.ckpt.npz`, beside the model."""
    stem = str(out)[: -len(".npz")] if str(out).endswith(".npz") else str(out)
    return stem + ".ckpt.npz"


def check_seed(seed: int | None) -> None:
    if seed is not None and seed < 0:
        raise ConfigError(f"--seed must not be negative, got {seed}")


def check_checkpoint_every(steps: int) -> None:
    if steps < 0:
        raise ConfigError(
            f"--checkpoint-every must not be negative (0: only on Ctrl-C), got {steps}"
        )


@dataclass
class TrainOutcome:
    model: TrainedModel | None  # the best model (None if stopped before any validation)
    interrupted: bool  # stopped by should_stop(); a checkpoint was written
    checkpoint: str | None  # where the checkpoint is, if one was written


@dataclass(frozen=True)
class TrainRequest:
    """What a `train` run is asked to do, from reading the text to saving the model."""

    input: str | None = None  # text, `-`, an `encode` output, or None: the bundled corpus
    out: str = "model.npz"
    valid: str | None = None  # a separate validation text (default: the input's tail)
    tokenizer: TokenizerConfig | None = None
    max_vocab: int | None = None
    min_count: int = 1
    text_options: TextOptions = STRICT_UTF8
    model: dict = field(default_factory=dict)  # model_config's keyword arguments
    train: TrainConfig = field(default_factory=TrainConfig)
    checkpoint: str | None = None  # default: beside `out` (default_checkpoint_path)
    checkpoint_every: int = 0
    resume: Checkpoint | None = None  # its settings replace model, train and tokenizer
    show_samples: int = 0  # tokens of text generated after each validation (0: none)


def run_training(
    request: TrainRequest, on_event=None, should_stop=None, comm=None, started=None,
    clock=time.monotonic,
) -> TrainOutcome:  # fmt: skip
    """A whole `rnngen train` run: read and encode the text, train, score the saved model on the
    whole validation text, compute the gradient statistics, save. With a time budget, all of it
    counts against the budget from `started` (a `clock()` reading taken when the command began;
    default: now). The CLI and benchmarks/time_to_quality.py both run this."""
    started = clock() if started is None else started
    ckpt = request.resume
    tokenizer = request.tokenizer if ckpt is None else ckpt.tokenizer
    vocab = None if ckpt is None else ckpt.vocab
    if ckpt is None:
        corpus = training_corpus(request.input, tokenizer, request.max_vocab,
                                 request.min_count, request.text_options)  # fmt: skip
    else:
        corpus = training_corpus(request.input, tokenizer, options=request.text_options,
                                 vocab=vocab)  # fmt: skip
    val_ids = None
    if request.valid is not None:
        val_ids = encode_for(corpus, read_text(request.valid, request.text_options))
    if ckpt is None:
        model_cfg, train_cfg = model_config(corpus.vocab, **request.model), request.train
    else:
        model_cfg, train_cfg = ckpt.model, ckpt.train
    if request.show_samples and on_event is not None:
        on_event = _with_samples(on_event, model_cfg, corpus, request.show_samples)
    return train_model(corpus, model_cfg, train_cfg, request.out, val_ids, on_event,
                       request.checkpoint or default_checkpoint_path(request.out),
                       request.checkpoint_every, ckpt, should_stop, comm, started,
                       clock)  # fmt: skip


SAMPLE_SEED = 0  # every sample a run shows starts from the same random state


def _with_samples(on_event, model_cfg: ModelConfig, corpus: Corpus, length: int):
    """on_event, and after each validation a Sampled event: `length` tokens generated from the
    current weights (plain sampling, the same seed each time)."""

    def on_validated(event):
        on_event(event)
        if isinstance(event, EpochEnd | Validated) and event.params is not None:
            params = split_output(event.params)
            model = TrainedModel(model_cfg, corpus.tokenizer, corpus.vocab, params, {})
            rng = np.random.default_rng(SAMPLE_SEED)
            on_event(Sampled(sample_text(model, None, length, rng)))

    return on_validated


def train_model(
    corpus: Corpus,
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    out,
    val_ids=None,
    on_event=None,
    checkpoint: str | None = None,
    checkpoint_every: int = 0,
    resume: Checkpoint | None = None,
    should_stop=None,
    comm=None,
    started: float | None = None,
    clock=time.monotonic,
) -> TrainOutcome:
    """Train on the corpus, saving the best model to `out` whenever validation improves; at the
    end (not after should_stop() ended the run) score it on the whole validation text and save
    it again with its gradient statistics, in what is left of the time budget (run_training).

    Validation uses val_ids when given, else the tail of the corpus. A checkpoint goes to
    `checkpoint` every `checkpoint_every` steps and when should_stop() ends the run early;
    `resume` continues from a loaded checkpoint, which must come from the same data. With `comm`
    (a distributed.Communicator) this is one rank of a data-parallel run; only rank 0 writes."""
    started = clock() if started is None else started
    check_checkpoint_every(checkpoint_every)
    check_writable(out)
    train_ids, held_out = split_data(corpus.ids, train_cfg, val_ids)
    fingerprint = data_fingerprint(train_ids, held_out)
    if resume is not None and resume.data != fingerprint:
        raise ConfigError(
            "the checkpoint was made on other training or validation data; give the same input "
            "(and --valid) as the run that wrote it"
        )
    if checkpoint is not None:
        check_writable(checkpoint)
    origin = started - (0.0 if resume is None else resume.state.elapsed)  # the run's clock zero
    written = []

    def save_best(params, history):
        save_model(out, TrainedModel(model_cfg, corpus.tokenizer, corpus.vocab, params, history))

    def save_state(state):
        if checkpoint is not None:
            ckpt = Checkpoint(
                model_cfg, train_cfg, corpus.tokenizer, corpus.vocab, state, fingerprint
            )
            save_checkpoint(checkpoint, ckpt)
            written.append(checkpoint)

    end_work = EndWork(len(held_out), stats_tokens(len(train_ids)))
    result = train(corpus.ids, model_cfg, train_cfg, val_ids, on_event, save_best,
                   None if resume is None else resume.state, save_state, checkpoint_every,
                   should_stop, comm, clock, started, end_work)  # fmt: skip
    model = None
    if result.params is not None and (comm is None or comm.rank == 0):
        params = split_output(result.params)  # a TrainedModel holds the file layout
        model = TrainedModel(model_cfg, corpus.tokenizer, corpus.vocab, params, result.history)
        if not result.interrupted:  # on Ctrl-C: no more than the step and the saves it made
            ending = _Ending(model, result.params, train_cfg.time_limit, origin, clock, on_event)
            st = result.state
            per_token = st.val_seconds / max(st.validations * max(st.val_limit, 1), 1)
            ending.score(held_out, per_token if st.validations and st.val_limit else None)
            ending.gradient_stats(train_ids, should_stop)
            model.history["seconds"] = clock() - origin  # the whole run, saving aside
            save_model(out, model)  # the best parameters again, with the figures and statistics
    return TrainOutcome(model, result.interrupted, written[-1] if written else None)


EVAL_SEQ_LEN = 128  # evaluate_text's segment length: the end-of-run figure is scored as `eval`


@dataclass
class _Ending:
    """The work after a run's last step, inside its time budget (if it has one)."""

    model: TrainedModel
    params: dict  # the best parameters, on the device, in the training layout
    time_limit: float | None
    origin: float  # the clock's reading when the run began
    clock: object
    on_event: object

    def time_left(self) -> float | None:
        if self.time_limit is None:
            return None
        return self.time_limit - (self.clock() - self.origin)

    def report(self, what: str, done: int, total: int) -> None:
        if self.on_event:
            left = self.time_left()
            self.on_event(Finishing(what, done, total, self.clock() - self.origin,
                                    None if left is None else max(left, 0.0)))  # fmt: skip

    def score(self, val_ids, per_token: float | None) -> None:
        """The saved model's perplexity on the whole validation text, one stream, the state
        carried throughout: the figure `rnngen eval` gives for that text. Skipped (and the
        history says so) where, at the validations' measured cost per token, it would overrun
        the budget: the plan reserved it, but a slow machine may have spent the reserve."""
        if len(val_ids) < 2:
            return
        left = self.time_left()
        if left is not None and per_token and per_token * len(val_ids) > left - END_MARGIN:
            self.model.history["val_ppl_skipped"] = "time"
            return
        result = evaluate(self.params, self.model.config, val_ids, 1, EVAL_SEQ_LEN,
                          lambda done, total: self.report("score", done, total))  # fmt: skip
        history = self.model.history
        history["val_loss"], history["val_ppl"] = result.cross_entropy, result.perplexity
        history["val_tokens_scored_at_end"] = result.tokens

    def gradient_stats(self, train_ids, should_stop) -> None:
        """Dynamic evaluation's statistics, cut short when the budget is spent or on Ctrl-C;
        the history says how many tokens they cover (0: none)."""
        history = self.model.history
        done, segments, began = [0], [0], self.clock()
        total = stats_tokens(len(train_ids))

        def keep_going() -> bool:
            if should_stop is not None and should_stop():
                history["stats_stopped"] = "interrupted"
                return False
            left = self.time_left()
            if left is None:
                return True
            per_segment = (self.clock() - began) / max(segments[0], 1)
            if left - END_MARGIN < per_segment:
                history["stats_stopped"] = "time"
                return False
            return True

        def progress(tokens, whole):
            done[0] = tokens
            segments[0] += 1
            self.report("stats", tokens, whole)

        left = self.time_left()
        if total < 1 or (left is not None and left < END_MARGIN):
            history["stats_tokens"] = 0
            history["stats_stopped"] = "time" if total else "no text"
            return
        stats = gradient_stats(self.params, self.model.config, train_ids, keep_going=keep_going,
                               on_progress=progress)  # fmt: skip
        self.model.stats = split_output(stats)
        history["stats_tokens"] = done[0]


def open_checkpoint(
    path: str, epochs: int | None = None, time_limit: float | None = None
) -> Checkpoint:
    """A checkpoint to resume from; `epochs` (if given) replaces the number of epochs to run, and
    `time_limit` the whole run's time budget in seconds (the time already spent counts)."""
    ckpt = load_checkpoint(path)
    st = ckpt.state
    if epochs is not None:
        ckpt.train = replace(ckpt.train, epochs=epochs)
        st.done = st.done and st.epoch > epochs
    if time_limit is not None:
        # a run by epochs resumed with a budget runs to the budget's end, as a timed run does;
        # its best model is scored again on the part its validations score (train.py)
        patience = ckpt.train.patience if ckpt.train.time_limit is not None else 0
        ckpt.train = replace(ckpt.train, time_limit=time_limit, patience=patience)
        st.done = st.done and st.elapsed >= time_limit
        if not st.done and "validations" not in st.history:
            st.history["validations"] = []
    return ckpt


@dataclass(frozen=True)
class EvalReport:
    result: EvalResult
    oov_rate: float  # share of the text's tokens outside the model's vocabulary
    characters: int = 0  # characters the scored tokens cover (see scored_characters)

    @property
    def bits_per_character(self) -> float:
        """The summed NLL over the scored characters, in bits."""
        return self.result.nll / math.log(2) / self.characters if self.characters else math.nan

    def to_dict(self) -> dict:
        r = self.result
        return {
            "tokens": r.tokens,
            "oov_rate": self.oov_rate,
            "cross_entropy": r.cross_entropy,
            "bits_per_token": r.bits_per_token,
            "perplexity": r.perplexity,
            "characters": self.characters,
            "bits_per_character": self.bits_per_character,
        }


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


def evaluate_text(
    model: TrainedModel, text: str, n_streams=1, seq_len=128, on_progress=None
) -> EvalReport:
    """Score a text with the model, tokenised exactly as the model's training text was;
    on_progress(done, total) hears the tokens scored as it goes."""
    tokens = tokenize(text, model.tokenizer)
    oov = sum(1 for t in tokens if t not in model.vocab)
    ids = model.vocab.encode(tokens)
    params = _device_params(model)
    result = evaluate(params, model.config, ids, n_streams, seq_len, on_progress)
    characters = scored_characters(text, tokens, model.tokenizer)
    return EvalReport(result, oov / max(len(tokens), 1), characters)


def open_model(path: str) -> TrainedModel:
    """load_model, where `-` reads the model file from standard input."""
    if path != "-":
        return load_model(path)
    with tempfile.TemporaryDirectory(prefix="rnngen-") as folder:
        spool = Path(folder) / "standard-input.npz"
        with open(spool, "wb") as f:
            shutil.copyfileobj(sys.stdin.buffer, f)
        if spool.stat().st_size == 0:
            raise InputDataError("standard input is empty; pipe a model file into `-m -`")
        return load_model(spool, "standard input")


def _prompt_ids(model: TrainedModel, start: str | None, rng: np.random.Generator) -> list:
    if start is None:
        return [random_start_id(model.vocab, rng)]
    return start_ids(start, model.tokenizer, model.vocab)


def _device_params_of(arrays: dict) -> dict:
    """Arrays keyed like a model file's parameters, on the device, out.W and out.b joined."""
    return join_output({k: backend.xp.asarray(v) for k, v in arrays.items()})


def _device_params(model: TrainedModel) -> dict:
    """The model's parameters on the array module's device, in the layout the model computes
    with (out.Wb joined from the file's out.W and out.b)."""
    if backend.xp is not np:  # on the CPU the weights are in memory already, read from the file
        check_memory(model.config, 1, 1, training=False)
    return _device_params_of(model.params)


def _continue(params, cfg, prompt, length, rng, settings, adaptation):
    """The generated ids: generate.generate, or adapt.generate_adapted with an adaptation."""
    if adaptation is None:
        return generate(params, cfg, prompt, length, rng, settings)
    return adapt.generate_adapted(params, cfg, prompt, length, rng, adaptation, settings)


def sample_text(
    model: TrainedModel,
    start: str | None,
    length: int,
    rng: np.random.Generator,
    settings: SamplerSettings | None = None,
    adaptation: adapt.Adaptation | None = None,
) -> str:
    """The start text (or a start word drawn by frequency) followed by `length` generated tokens,
    detokenised; `settings` is the sampler chain (default: plain sampling at temperature 1). With
    an adaptation, generation adapts to the start text and what it writes."""
    prompt = _prompt_ids(model, start, rng)
    params = _device_params(model)
    new = _continue(params, model.config, prompt, length, rng, settings, adaptation)
    return detokenize(model.vocab.decode(prompt + list(new)), model.tokenizer)


def sample_pieces(
    model: TrainedModel,
    start: str | None,
    length: int,
    rng: np.random.Generator,
    settings: SamplerSettings | None = None,
    adaptation: adapt.Adaptation | None = None,
) -> Iterator[str]:
    """The text of `sample_text`, yielded a piece at a time as the tokens are generated: the
    pieces joined are exactly sample_text's result for the same arguments and random state."""
    prompt = _prompt_ids(model, start, rng)
    params = _device_params(model)
    stream = StreamDetokenizer(model.tokenizer)
    for token_id in prompt:
        piece = stream.push(model.vocab.tokens[token_id])
        if piece:
            yield piece
    for token_id in _continue(params, model.config, prompt, length, rng, settings, adaptation):
        piece = stream.push(model.vocab.tokens[token_id])
        if piece:
            yield piece
    tail = stream.finish()
    if tail:
        yield tail


# --- scoring lines ------------------------------------------------------------------------------


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


def line_context_id(model: TrainedModel) -> int:
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


def line_tokens(model: TrainedModel, line: str) -> list:
    """The tokens of one line that `score_lines` predicts. Whitespace tokenizing ends them with
    `<eos>` (the line's end is scored, as in PTB perplexity); book and char tokenizing do not
    score the line's end (in a book a line break falls wherever the printer wrapped the line, and
    with joined lines a line given to score may be a sentence or a whole paragraph)."""
    if model.tokenizer.scheme == "whitespace" and model.tokenizer.level == "word":
        return tokenize(line, model.tokenizer) if line.strip() else []
    return tokenize(line, model.tokenizer)


def score_lines(model: TrainedModel, lines: Iterable[str], chunk=4096) -> Iterator[tuple]:
    """Score each line on its own, from the zero state after the context token of
    `line_context_id`; yields (line, LineScore) per line, in order. Lines are read and scored
    `chunk` at a time (batched by length inside a chunk), so output starts before input ends."""
    params = _device_params(model)
    context = line_context_id(model)
    lines = iter(lines)
    while batch := list(islice(lines, chunk)):
        sequences = []
        for line in batch:
            ids = model.vocab.encode(line_tokens(model, line))
            inputs = np.concatenate([[context], ids[:-1]]).astype(np.int32) if len(ids) else ids
            sequences.append((inputs, ids))
        nll = score_sequences(params, model.config, sequences)
        for line, (_, ids), value in zip(batch, sequences, nll, strict=True):
            yield line, LineScore(len(ids), float(value))


# --- describing a model -------------------------------------------------------------------------


def history_summary(history: dict) -> dict:
    """The headline numbers of a training history (None where the history lacks them)."""
    per_epoch = history.get("per_epoch") or []
    last = (per_epoch or history.get("validations") or [{}])[-1]  # a timed run: its validations
    settings = history.get("train") or {}
    return {
        "epochs": history.get("epochs", 0),
        "max_epochs": settings.get("epochs"),
        "steps": history.get("steps"),
        "time_limit": settings.get("time_limit"),
        "stopped": history.get("stopped"),
        "best_epoch": history.get("best_epoch"),
        "best_step": history.get("best_step"),
        "best_val_ppl": history.get("best_val_ppl"),  # in-run: see val_tokens_scored
        "val_ppl": history.get("val_ppl"),  # the saved model on the whole validation text
        "stats_tokens": history.get("stats_tokens"),  # None: the run saved none (interrupted)
        "stats_stopped": history.get("stats_stopped"),
        "unigram_val_ppl": history.get("unigram_val_ppl"),
        "final_train_loss": last.get("train_loss"),
        "final_lr": last.get("lr"),
        "seconds": history.get("seconds"),
        "tokens_per_second": history.get("tokens_per_second"),
        "train_tokens": history.get("train_tokens"),
        "val_tokens": history.get("val_tokens"),
        "settings": settings,
        "per_epoch": per_epoch,
        "validations": history.get("validations"),
        "val_tokens_scored": history.get("val_tokens_scored"),
    }


def model_info(model: TrainedModel, path: str | None = None, top: int = 10) -> dict:
    """Everything `rnngen info` shows, as one JSON-ready dict."""
    if top < 0:
        raise ConfigError(f"--top must not be negative (0: list none), got {top}")
    cfg, vocab = model.config, model.vocab
    dtypes = sorted({str(np.asarray(p).dtype) for p in model.params.values()})
    info = {
        "file": path,
        "bytes": os.path.getsize(path) if path not in (None, "-") else None,
        "format": MODEL_FORMAT,
        "version": VERSION,  # load_model refuses any other version
        "model": {
            "cell": cfg.cell,
            "layers": cfg.layers,
            "embed": cfg.embed,
            "hidden": cfg.hidden,
            "softmax": cfg.softmax,
            "classes": cfg.n_classes if cfg.softmax == "class" else None,
            "dropout": cfg.dropout,
            "tie_weights": cfg.tie_weights,
        },
        "parameters": count_params(model.params),
        "dtype": dtypes[0] if len(dtypes) == 1 else dtypes,
        "vocabulary": {
            "size": len(vocab),
            "specials": list(vocab.tokens[: vocab.n_specials]),
            "top": list(vocab.tokens[vocab.n_specials : vocab.n_specials + max(top, 0)]),
        },
        "tokenizer": model.tokenizer.to_dict(),
        "history": history_summary(model.history),
        "gradient_statistics": model.stats is not None,  # for --dynamic
    }
    return info


def training_summary(model: TrainedModel, out) -> dict:
    """What `train --json` prints at the end: where the model went and its history summary."""
    return {
        "model": str(out),
        "parameters": count_params(model.params),
        **history_summary(model.history),
    }


# --- adapting to the text read: neural cache and dynamic evaluation (adapt.py, tune.py) ---------


def adaptation_for(
    model: TrainedModel,
    cache: bool = False,
    cache_values: dict | None = None,
    dynamic: bool = False,
    dynamic_values: dict | None = None,
    stats_text: str | None = None,
) -> adapt.Adaptation | None:
    """The adaptation asked for: each part's settings are the model file's tuned ones (`tune
    --write`; the cache's as tuned together with dynamic evaluation when both are asked for),
    else adapt's defaults, with the values given (not None) on top. A value turns its part on.
    Statistics come from the model file, or are computed from stats_text (a training text) when
    given. None when nothing is asked for."""
    cache_values = {k: v for k, v in (cache_values or {}).items() if v is not None}
    dynamic_values = {k: v for k, v in (dynamic_values or {}).items() if v is not None}
    tuned = model.adapt or {}
    cache_settings = dynamic_settings = stats = None
    dynamic = dynamic or bool(dynamic_values) or stats_text is not None
    if cache or cache_values:
        part = "both" if dynamic and "both" in tuned else "cache"  # tuned on the adapted model
        base = adapt.CacheSettings.from_dict(tuned[part]) if part in tuned else None
        cache_settings = replace(base or adapt.CacheSettings(), **cache_values)
    if dynamic:
        base = adapt.DynamicSettings.from_dict(tuned["dynamic"]) if "dynamic" in tuned else None
        dynamic_settings = replace(base or adapt.DynamicSettings(), **dynamic_values)
        stats = None if model.stats is None else _device_params_of(model.stats)
        if stats_text is not None:
            ids = model.vocab.encode(tokenize(stats_text, model.tokenizer))
            if len(ids) < 2:
                raise InputDataError("the --dynamic-stats text has fewer than two tokens")
            stats = gradient_stats(_device_params(model), model.config, ids)
    if cache_settings is None and dynamic_settings is None:
        return None
    return adapt.Adaptation(cache_settings, dynamic_settings, stats)


@dataclass(frozen=True)
class AdaptedReport:
    static: EvalReport  # the model as trained
    adapted: EvalResult  # the same tokens, scored by the model adapting as it reads
    adaptation: adapt.Adaptation
    static_seconds: float
    adapted_seconds: float

    def to_dict(self) -> dict:
        """The static figures under eval --json's usual keys, the adapted ones beside them."""
        a = self.adaptation
        r = self.adapted
        return {
            **self.static.to_dict(),
            "adapted": {
                "cache": None if a.cache is None else a.cache.to_dict(),
                "dynamic": None if a.dynamic is None else a.dynamic.to_dict(),
                "cross_entropy": r.cross_entropy,
                "bits_per_token": r.bits_per_token,
                "perplexity": r.perplexity,
                "seconds": self.adapted_seconds,
                "static_seconds": self.static_seconds,
            },
        }


def evaluate_adapted(
    model: TrainedModel, text: str, adaptation: adapt.Adaptation, on_progress=None
) -> AdaptedReport:
    """Score a text as evaluate_text does (one stream), and again adapting as it reads. Both
    sum per-token scores in the same order, so dynamic evaluation at learning rate 0 with
    segments of adapt.EVAL_CHUNK tokens reports exactly the static figures."""
    import time

    tokens = tokenize(text, model.tokenizer)
    oov = sum(1 for t in tokens if t not in model.vocab) / max(len(tokens), 1)
    ids = model.vocab.encode(tokens)
    params = _device_params(model)
    began = time.perf_counter()
    static = adapt.adapted_token_nll(params, model.config, ids, adapt.Adaptation())
    static_seconds = time.perf_counter() - began
    began = time.perf_counter()
    nll = adapt.adapted_token_nll(params, model.config, ids, adaptation, on_progress)
    seconds = time.perf_counter() - began
    characters = scored_characters(text, tokens, model.tokenizer)
    report = EvalReport(EvalResult(tokens=len(static), nll=float(static.sum())), oov, characters)
    result = EvalResult(tokens=len(nll), nll=float(nll.sum()))
    return AdaptedReport(report, result, adaptation, static_seconds, seconds)


def score_lines_cached(
    model: TrainedModel, lines: Iterable[str], settings: adapt.CacheSettings
) -> Iterator[tuple]:
    """score_lines with a neural cache: each line still runs from the zero state after the context
    token, but the cache holds the positions of the lines before it (in input order) and its own
    earlier ones, so the scores depend on the order of the lines."""
    xp = backend.xp
    params = _device_params(model)
    cfg = model.config
    context = line_context_id(model)
    cache = adapt.NeuralCache(settings, cfg.hidden, params["embed"].dtype)
    for line in lines:
        ids = model.vocab.encode(line_tokens(model, line))
        if not len(ids):
            yield line, LineScore(0, 0.0)
            continue
        x = xp.asarray(np.concatenate([[context], ids[:-1]]).astype(np.int32)[:, None])
        y = xp.asarray(np.asarray(ids, dtype=np.int32)[:, None])
        scores = token_scores(params, cfg, x, y, init_state(cfg, 1, params["embed"].dtype))
        nll = adapt.mix(
            scores.token_nll[:, 0], cache.target_log_probs(scores.top, y[:, 0])[0], settings.lam
        )
        yield line, LineScore(len(ids), float(nll.sum()))


def tune_text(model: TrainedModel, text: str, on_progress=None) -> TuneResult:
    """Search the adaptation settings on a held-out text (tune.py)."""
    ids = model.vocab.encode(tokenize(text, model.tokenizer))
    if len(ids) < 2:
        raise InputDataError("the text to tune on has fewer than two tokens; give a longer one")
    stats = None if model.stats is None else _device_params_of(model.stats)
    return tune(_device_params(model), model.config, ids, stats, on_progress)


def write_adapt_settings(path: str, settings: dict) -> None:
    """Store tuned settings in a model file, atomically; its weights and all else unchanged."""
    if path == "-":
        raise ConfigError("--write needs a model file, not standard input")
    model = load_model(path)
    model.adapt = settings
    save_model(path, model)
