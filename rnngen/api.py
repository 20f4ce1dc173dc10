"""The operations behind the CLI's subcommands, as plain functions a program can call too.

Each takes and returns data (never prints), so `cli.py` is left with parsing, printing and mapping
errors to exit codes.
"""

import os
import shlex
import shutil
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .core.class_softmax import make_class_bounds
from .core.model import ModelConfig, count_params, split_output
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
from .reading.lm import LanguageModel
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
)
from .text.tokenize import TokenizerConfig, tokenize
from .text.vocab import Vocab
from .training.stats import gradient_stats
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


def checkpoint_options(ckpt: Checkpoint) -> dict:
    """The value each `train` option that sets the model, the training or the tokenizer has in a
    checkpoint, keyed by the option's name: a resumed run takes these from the checkpoint."""
    m, t, tok = ckpt.model, ckpt.train, ckpt.tokenizer
    return {
        "--cell": m.cell,
        "--hidden": m.hidden,
        "--embed": m.embed,
        "--layers": m.layers,
        "--dropout": m.dropout,
        "--tie-weights": m.tie_weights,
        "--untie-weights": not m.tie_weights,
        "--softmax": m.softmax,
        "--classes": m.n_classes if m.softmax == "class" else None,
        "--seq-len": t.seq_len,
        "--batch-size": t.batch_size,
        "--optimizer": t.optimizer,
        "--lr": t.learning_rate(m.cell),
        "--lr-decay": t.lr_decay,
        "--patience": t.patience,
        "--val-every": t.val_every,
        "--clip": t.clip,
        "--state-reset": t.state_reset,
        "--unigram-bias": t.unigram_bias,
        "--zero-bias": not t.unigram_bias,
        "--sparse-embedding": t.lazy_adam,
        "--dense-embedding": not t.lazy_adam,
        "--val-frac": t.val_frac,
        "--seed": t.seed,
        "--dtype": t.dtype,
        "--level": tok.level,
        "--tokenizer": tok.scheme,
        "--lowercase": tok.lowercase,
        "--lines": tok.lines,
    }


def check_resume_options(ckpt: Checkpoint, given: dict) -> None:
    """Refuse options given with --resume that contradict the checkpoint: `given` maps the options
    the user gave (by name, as checkpoint_options keys them) to their values; options the
    checkpoint settles are fine when they equal its values, other options are not looked at."""
    held = checkpoint_options(ckpt)
    differ = [
        f"{name} {given[name]} (the checkpoint's: {held[name]})"
        for name in held
        if name in given and given[name] != held[name]
    ]
    if differ:
        raise ConfigError(
            "--resume takes the model and training settings from the checkpoint, but "
            f"{'; '.join(differ)}; drop {'this option' if len(differ) == 1 else 'these options'} "
            "or train a new model without --resume"
        )


def check_seed(seed: int | None) -> None:
    if seed is not None and seed < 0:
        raise ConfigError(f"--seed must not be negative, got {seed}")


def check_checkpoint_every(steps: int) -> None:
    if steps < 0:
        raise ConfigError(
            f"--checkpoint-every must not be negative (0: only on Ctrl-C), got {steps}"
        )


def resume_command(
    checkpoint: str, input: str | None = None, out: str = "model.npz", options: dict | None = None
) -> str:
    """The shell command that continues an interrupted `rnngen train` run from `checkpoint`, each
    word quoted for a POSIX shell: the same input (None: the bundled corpus), -o out, and
    `options` (option name -> value; True: a flag given; None or False: left out), which must
    hold every other option the resumed run needs (--valid, --checkpoint, --log-file ...)."""
    words = ["rnngen", "train"]
    if input is not None:  # a file named like an option is given as ./-name
        words.append(f"./{input}" if input.startswith("-") and input != "-" else input)
    words += ["-o", str(out)]
    for name, value in (options or {}).items():
        if value is True:
            words.append(name)
        elif value is not None and value is not False:
            words += [name, str(value)]
    return shlex.join([*words, "--resume", str(checkpoint)])


@dataclass
class TrainOutcome:
    model: TrainedModel | None  # the best model (None if stopped before any epoch ended)
    interrupted: bool  # stopped by should_stop(); a checkpoint was written
    checkpoint: str | None  # where the checkpoint is, if one was written


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
) -> TrainOutcome:
    """Train on the corpus, saving the best model to `out` whenever validation improves.

    Validation uses val_ids when given, else the tail of the corpus. A checkpoint goes to
    `checkpoint` every `checkpoint_every` steps and when should_stop() ends the run early;
    `resume` continues from a loaded checkpoint, which must come from the same data. With `comm`
    (a distributed.Communicator) this is one rank of a data-parallel run; only rank 0 writes."""
    check_checkpoint_every(checkpoint_every)
    check_writable(out)
    fingerprint = data_fingerprint(*split_data(corpus.ids, train_cfg, val_ids))
    if resume is not None and resume.data != fingerprint:
        raise ConfigError(
            "the checkpoint was made on other training or validation data; give the same input "
            "(and --valid) as the run that wrote it"
        )
    if checkpoint is not None:
        check_writable(checkpoint)
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

    result = train(
        corpus.ids,
        model_cfg,
        train_cfg,
        val_ids,
        on_event,
        save_best,
        resume=None if resume is None else resume.state,
        on_checkpoint=save_state,
        checkpoint_every=checkpoint_every,
        should_stop=should_stop,
        comm=comm,
    )
    model = None
    if result.params is not None and (comm is None or comm.rank == 0):
        params = split_output(result.params)  # a TrainedModel holds the file layout
        model = TrainedModel(model_cfg, corpus.tokenizer, corpus.vocab, params, result.history)
        # dynamic evaluation's gradient statistics, from the training part (adapt.py)
        train_ids = split_data(corpus.ids, train_cfg, val_ids)[0]
        model.stats = split_output(gradient_stats(result.params, model_cfg, train_ids))
        save_model(out, model)  # the best parameters again, with the history and the statistics
    return TrainOutcome(model, result.interrupted, written[-1] if written else None)


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
        ckpt.train = replace(ckpt.train, time_limit=time_limit)
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
        return load_model(spool)


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
        "best_val_ppl": history.get("best_val_ppl"),
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
