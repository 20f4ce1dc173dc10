"""The operations behind the CLI's subcommands, as plain functions a program can call too.

Each takes and returns data (never prints), so `cli.py` is left with parsing, printing and mapping
errors to exit codes.
"""

import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .core.class_softmax import make_class_bounds
from .core.model import (
    ModelConfig,
    count_params,
    split_output,
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
from .reading.evaluate import perplexity
from .reading.lm import LanguageModel
from .reading.reader import Reader
from .reading.settings import Adaptation

# The reading half of the API lives in reading/texts.py; its names are this module's too.
from .reading.texts import Adapted as Adapted
from .reading.texts import EvalReport as EvalReport
from .reading.texts import LineScore as LineScore
from .reading.texts import adaptation_settings, device_params
from .reading.texts import device_arrays as device_arrays
from .reading.texts import evaluate_text as evaluate_text
from .reading.texts import generate_records as generate_records
from .reading.texts import iter_lines as iter_lines
from .reading.texts import line_context_id as line_context_id
from .reading.texts import line_tokens as line_tokens
from .reading.texts import prompt_ids as prompt_ids
from .reading.texts import sample_pieces as sample_pieces
from .reading.texts import sample_text as sample_text
from .reading.texts import score_lines as score_lines
from .reading.texts import scored_characters as scored_characters
from .reading.texts import token_nll as token_nll
from .reading.texts import tune_text as tune_text
from .text.corpus import (
    STRICT_UTF8,
    Corpus,
    TextOptions,
    default_corpus_path,
    encode_file,
    read_text,
)
from .text.tokenize import (
    TokenizerConfig,
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
        reader = Reader(self.params, self.model.config)  # the reader `rnngen eval` reads with
        nll = reader.read(val_ids, lambda done, total: self.report("score", done, total))
        history = self.model.history
        history["val_loss"] = float(nll.mean())
        history["val_ppl"] = perplexity(history["val_loss"])
        history["val_tokens_scored_at_end"] = len(nll)

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


def adaptation_for(
    model: TrainedModel,
    cache: bool = False,
    cache_values: dict | None = None,
    dynamic: bool = False,
    dynamic_values: dict | None = None,
    stats_text: str | None = None,
) -> Adaptation | None:
    """texts.adaptation_settings, with the gradient statistics computed from stats_text (a
    training text) when given, else the model file's."""
    stats = None
    if stats_text is not None:
        ids = model.vocab.encode(tokenize(stats_text, model.tokenizer))
        if len(ids) < 2:
            raise InputDataError("the --dynamic-stats text has fewer than two tokens")
        stats = gradient_stats(device_params(model), model.config, ids)
    return adaptation_settings(model, cache, cache_values, dynamic, dynamic_values, stats)


def load(path: str = "model.npz") -> "LanguageModel":
    """A model file, ready to generate, score and adapt from a program (reading/lm.py)."""
    return LanguageModel(open_model(path))


def write_adapt_settings(path: str, settings: dict) -> None:
    """Store tuned settings in a model file, atomically; its weights and all else unchanged."""
    if path == "-":
        raise ConfigError("--write needs a model file, not standard input")
    model = load_model(path)
    model.adapt = settings
    save_model(path, model)
