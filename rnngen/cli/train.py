"""`rnngen train`: train a model and save the best one."""

import contextlib
import signal
import threading
import time
from dataclasses import replace
from types import SimpleNamespace
from typing import Annotated

import typer

from .. import api
from ..core import backend
from ..core.model import CELLS, SOFTMAXES, ModelConfig
from ..core.optim import OPTIMIZERS
from ..errors import EXIT_INTERRUPTED, ConfigError
from ..text.corpus import TextOptions
from ..training import distributed, runlog
from ..training.schedule import parse_duration
from ..training.train import DTYPES, TrainConfig
from .common import (
    Messages,
    err,
    errors_to_exit,
    given_options,
    one_stdin,
    print_json,
    tokenizer_config,
    train_outputs,
)
from .helptext import (
    CHECKPOINTS,
    DATA,
    MODEL,
    OUTPUT,
    SPEED,
    TRAINING,
    choices,
    in_panel,
)
from .options import (
    Device,
    Encoding,
    Errors,
    Force,
    Level,
    Lines,
    Lowercase,
    MaxVocab,
    MinCount,
    Threads,
    Tokenizer,
    Verbose,
)
from .progress import TrainingDisplay, summary_line
from .resume import check_resume_options, resume_command


class StopOnInterrupt:
    """The first Ctrl-C asks training to stop after the current step (it then saves a checkpoint
    and the best model); a second one interrupts at once."""

    def __init__(self, message):
        self.message = message
        self._stop = False
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum, frame):
        self._stop = True
        signal.signal(signal.SIGINT, signal.default_int_handler)  # the next Ctrl-C quits now
        self.message("stopping after this step to save a checkpoint (Ctrl-C again to quit now)")

    def requested(self) -> bool:
        return self._stop


def train_command(
    ctx: typer.Context,
    input: Annotated[
        str | None,
        typer.Argument(
            help="Text file, - for stdin, or an `rnngen encode` output. "
            "[default: the bundled corpus, Peter Pan]"
        ),
    ] = None,
    out: Annotated[
        str,
        typer.Option(
            "-o", "--out", help="Where to save the model (- for stdout).", rich_help_panel=OUTPUT
        ),
    ] = "model.npz",
    force: in_panel(Force, OUTPUT) = False,
    valid: Annotated[
        str | None,
        typer.Option(
            help="Separate validation text. [default: the tail of the training text]",
            rich_help_panel=DATA,
        ),
    ] = None,
    epochs: Annotated[
        int | None,
        typer.Option(
            help="Passes over the training text, at most; with --resume, the new total. "
            f"[default: {TrainConfig.epochs}; with --time: no limit]",
            rich_help_panel=TRAINING,
        ),
    ] = None,
    time_limit: Annotated[
        str | None,
        typer.Option(
            "--time",
            metavar="DURATION",
            help="Wall-clock budget for the whole run (90s, 10m, 1.5h), from reading the text "
            "to the saved model; the schedule is planned for it. With --resume, the new "
            "total. [default: no limit]",
            show_default=False,
            rich_help_panel=TRAINING,
        ),
    ] = None,
    val_every: Annotated[
        int,
        typer.Option(
            help="With --time: validate every N steps. [default: about 8 times a run]",
            show_default=False,
            rich_help_panel=TRAINING,
        ),
    ] = 0,
    cell: Annotated[
        str,
        typer.Option(
            metavar=choices(CELLS),
            help="Recurrent cell: plain RNN, LSTM or GRU.",
            rich_help_panel=MODEL,
        ),
    ] = "rnn",
    hidden: Annotated[
        int, typer.Option(help="Hidden state size H.", rich_help_panel=MODEL)
    ] = ModelConfig.hidden,
    embed: Annotated[
        int | None,
        typer.Option(help="Word vector size E. [default: as --hidden]", rich_help_panel=MODEL),
    ] = None,
    layers: Annotated[
        int, typer.Option(help="Stacked recurrent layers.", rich_help_panel=MODEL)
    ] = ModelConfig.layers,
    dropout: Annotated[
        float, typer.Option(help="Dropout on non-recurrent connections.", rich_help_panel=MODEL)
    ] = ModelConfig.dropout,
    untie_weights: Annotated[
        bool,
        typer.Option(
            "--untie-weights",
            help="Give the output layer weights of its own; by default it shares the "
            "embedding's where --embed equals --hidden.",
            rich_help_panel=MODEL,
        ),
    ] = False,
    tie_weights: Annotated[
        bool,
        typer.Option("--tie-weights", hidden=True, help="The opposite of --untie-weights."),
    ] = False,
    softmax: Annotated[
        str,
        typer.Option(
            metavar=choices(SOFTMAXES),
            help="full, or class: Mikolov's class-factorised softmax (faster).",
            rich_help_panel=MODEL,
        ),
    ] = "full",
    classes: Annotated[
        int | None,
        typer.Option(
            help="Word classes for --softmax class. [default: sqrt(vocabulary size)]",
            rich_help_panel=MODEL,
        ),
    ] = None,
    seq_len: Annotated[
        int, typer.Option(help="Steps of backpropagation through time.", rich_help_panel=TRAINING)
    ] = TrainConfig.seq_len,
    batch_size: Annotated[
        int, typer.Option(help="Parallel streams per batch.", rich_help_panel=TRAINING)
    ] = TrainConfig.batch_size,
    optimizer: Annotated[
        str,
        typer.Option(
            metavar=choices(OPTIMIZERS),
            help="Update rule for the weights.",
            rich_help_panel=TRAINING,
        ),
    ] = TrainConfig.optimizer,
    lr: Annotated[
        float | None,
        typer.Option(
            help="Learning rate. [default: one that suits the optimizer and cell]",
            rich_help_panel=TRAINING,
        ),
    ] = None,
    lr_decay: Annotated[
        float,
        typer.Option(
            help="Divide the learning rate by this after an epoch without gain (not with --time).",
            rich_help_panel=TRAINING,
        ),
    ] = TrainConfig.lr_decay,
    patience: Annotated[
        int | None,
        typer.Option(
            help="Stop after this many validations without gain (0: never). "
            "[default: 3; with --time: 0, the run lasts its budget]",
            show_default=False,
            rich_help_panel=TRAINING,
        ),
    ] = None,
    clip: Annotated[
        float | None,
        typer.Option(
            help="Maximum gradient norm (0: off). [default: 0.25 for sgd, 1 otherwise]",
            rich_help_panel=TRAINING,
        ),
    ] = None,
    state_reset: Annotated[
        float,
        typer.Option(
            help="Share of streams whose state restarts from zero after each step.",
            rich_help_panel=TRAINING,
        ),
    ] = TrainConfig.state_reset,
    zero_bias: Annotated[
        bool,
        typer.Option(
            "--zero-bias",
            help="Start the output bias at zero, not at the training text's log word "
            "frequencies (--unigram-bias, the default).",
            rich_help_panel=TRAINING,
        ),
    ] = False,
    unigram_bias: Annotated[
        bool, typer.Option("--unigram-bias", hidden=True, help="The opposite of --zero-bias.")
    ] = False,
    sparse_embedding: Annotated[
        bool,
        typer.Option(
            "--sparse-embedding",
            help="Update only the embedding rows of each batch's words: lazy Adam, faster on "
            "large vocabularies, a different optimiser (sgd and adagrad do so anyway). "
            "--dense-embedding, the default, updates every row.",
            rich_help_panel=SPEED,
        ),
    ] = TrainConfig.lazy_adam,
    dense_embedding: Annotated[
        bool,
        typer.Option("--dense-embedding", hidden=True, help="The opposite of --sparse-embedding."),
    ] = False,
    val_frac: Annotated[
        float,
        typer.Option(
            help="Share of the text, from its end, held out for validation.", rich_help_panel=DATA
        ),
    ] = TrainConfig.val_frac,
    seed: Annotated[
        int, typer.Option(help="Random seed: same seed, same model.", rich_help_panel=TRAINING)
    ] = TrainConfig.seed,
    dtype: Annotated[
        str,
        typer.Option(
            metavar=choices(DTYPES),
            help="Number type of the weights: float32 is faster.",
            rich_help_panel=SPEED,
        ),
    ] = TrainConfig.dtype,
    level: in_panel(Level, DATA) = None,
    tokenizer: in_panel(Tokenizer, DATA) = None,
    lowercase: in_panel(Lowercase, DATA) = False,
    lines: in_panel(Lines, DATA) = None,
    max_vocab: in_panel(MaxVocab, DATA) = None,
    min_count: in_panel(MinCount, DATA) = 1,
    encoding: in_panel(Encoding, DATA) = "utf-8",
    errors: in_panel(Errors, DATA) = "strict",
    checkpoint: Annotated[
        str | None,
        typer.Option(
            help="Checkpoint file, for --resume. [default: OUT's name.ckpt.npz]",
            rich_help_panel=CHECKPOINTS,
        ),
    ] = None,
    checkpoint_every: Annotated[
        int,
        typer.Option(
            help="Write a checkpoint every N steps (0: only on Ctrl-C).",
            rich_help_panel=CHECKPOINTS,
        ),
    ] = 0,
    resume: Annotated[
        str | None,
        typer.Option(
            help="Continue exactly from a checkpoint; give the same INPUT (and --valid). "
            "Its model and training settings are used; --epochs may raise the total.",
            rich_help_panel=CHECKPOINTS,
        ),
    ] = None,
    log_file: Annotated[
        str | None,
        typer.Option(
            help="Append a JSON line per logged step and per validation to this file.",
            rich_help_panel=OUTPUT,
        ),
    ] = None,
    show_samples: Annotated[
        int,
        typer.Option(
            metavar="N",
            help="After each validation, print N tokens generated from the current weights "
            "on stderr (the same seed each time), to watch the text improve. [default: none]",
            show_default=False,
            rich_help_panel=OUTPUT,
        ),
    ] = 0,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="At the end, print a JSON summary on stdout.", rich_help_panel=OUTPUT
        ),
    ] = False,
    device: in_panel(Device, SPEED) = "cpu",
    threads: in_panel(Threads, SPEED) = None,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="No progress or summary.")] = False,
    verbose: Verbose = False,
):
    """Train a model and save the one with the best validation perplexity.

    Ctrl-C finishes the current step, saves a checkpoint and the best model so far, and exits with
    code 130; a second Ctrl-C quits at once.

    Example: rnngen train book.txt -o book.npz --cell gru --layers 2 --dropout 0.5
    """
    started = time.monotonic()  # the budget counts from here: reading the text is the run's
    opts = SimpleNamespace(**{k: v for k, v in locals().items() if k != "ctx"})
    with errors_to_exit(verbose):
        _train(ctx, opts)


def _train(ctx: typer.Context, o: SimpleNamespace) -> None:
    """train_command's work, its options in `o`."""
    comm = distributed.world()  # under mpiexec: one rank of a data-parallel run
    lead = comm is None or comm.rank == 0
    if not lead:  # only rank 0 speaks and writes
        o.quiet, o.verbose, o.as_json, o.log_file = True, False, False, None
    say = Messages(o.quiet, o.verbose)
    backend.use_device(o.device)
    one_stdin(INPUT=o.input, **{"--valid": o.valid})
    model_out, o.checkpoint = train_outputs(
        o.out, o.checkpoint, o.log_file, (o.input, o.valid), o.resume, o.force, o.as_json
    )
    _check_pairs(o)
    if o.show_samples < 0:
        raise ConfigError(f"--show-samples must not be negative, got {o.show_samples}")
    api.check_checkpoint_every(o.checkpoint_every)
    seconds = None if o.time_limit is None else parse_duration(o.time_limit)
    ckpt = None if o.resume is None else api.open_checkpoint(o.resume, o.epochs, seconds)
    if ckpt is not None:
        check_resume_options(ckpt, given_options(ctx))
    request = replace(_request(o, ckpt, seconds), out=model_out.path)  # -o -: a stand-in
    with contextlib.ExitStack() as stack:
        log = None
        if o.log_file is not None:
            settings = {"input": o.input or "(bundled corpus)", "out": o.out}
            log = stack.enter_context(runlog.RunLog(o.log_file, settings))
            say.detail(f"logging to {o.log_file} as run {log.run}")
        display = stack.enter_context(TrainingDisplay(quiet=o.quiet, verbose=o.verbose))
        stop = stack.enter_context(StopOnInterrupt(display.message))
        outcome = api.run_training(request, runlog.combine(log, display), stop.requested, comm,
                                   o.started)  # fmt: skip
        display.close()  # the bar goes before the last line
        if not outcome.interrupted and lead:
            display.message(summary_line(o.out, outcome.model.history, display.width))
    if outcome.interrupted:
        _interrupted(o, outcome, request, lead)
    model_out.send()
    if o.as_json:
        print_json(api.training_summary(outcome.model, o.out))


def _check_pairs(o) -> None:
    """Flags given with their opposites."""
    for one, other, name, opposite in (
        (o.sparse_embedding, o.dense_embedding, "--sparse-embedding", "--dense-embedding"),
        (o.tie_weights, o.untie_weights, "--tie-weights", "--untie-weights"),
        (o.zero_bias, o.unigram_bias, "--zero-bias", "--unigram-bias"),
    ):
        if one and other:
            raise ConfigError(f"{name} and {opposite} contradict; give one")


def _request(o, ckpt, seconds) -> api.TrainRequest:
    """The run the options ask for."""
    model = {
        "softmax": o.softmax, "classes": o.classes, "embed": o.embed, "hidden": o.hidden,
        "layers": o.layers, "cell": o.cell, "dropout": o.dropout,
        "tie_weights": True if o.tie_weights else False if o.untie_weights else None,
    }  # fmt: skip
    train_cfg = None
    if ckpt is None:
        train_cfg = TrainConfig(
            epochs=o.epochs if o.epochs is not None or seconds is not None else TrainConfig.epochs,
            batch_size=o.batch_size, seq_len=o.seq_len, optimizer=o.optimizer, lr=o.lr,
            lr_decay=o.lr_decay, patience=o.patience, clip=o.clip, state_reset=o.state_reset,
            unigram_bias=not o.zero_bias, lazy_adam=o.sparse_embedding and not o.dense_embedding,
            val_frac=o.val_frac, seed=o.seed, dtype=o.dtype, time_limit=seconds,
            val_every=o.val_every,
        )  # fmt: skip
    return api.TrainRequest(
        o.input, o.out, o.valid, tokenizer_config(o.level, o.tokenizer, o.lowercase, o.lines),
        o.max_vocab, o.min_count, TextOptions(o.encoding, o.errors), model,
        train_cfg or TrainConfig(), o.checkpoint, o.checkpoint_every, ckpt, o.show_samples,
    )  # fmt: skip


def _interrupted(o, outcome, request, lead) -> None:
    """After Ctrl-C: where the checkpoint and the best model are, how to continue; exit 130."""
    if not lead:
        raise typer.Exit(EXIT_INTERRUPTED)
    best = f"the best model so far in {o.out}" if outcome.model else "no validation yet"
    default = api.default_checkpoint_path(o.out)
    again = resume_command(
        outcome.checkpoint, o.input, o.out,
        {
            "--valid": o.valid,
            "--checkpoint": None if request.checkpoint in (None, default) else o.checkpoint,
            "--checkpoint-every": o.checkpoint_every or None,
            "--log-file": o.log_file,
            "--encoding": None if o.encoding == "utf-8" else o.encoding,
            "--errors": None if o.errors == "strict" else o.errors,
            "--device": None if o.device == "cpu" else o.device,
            "--json": o.as_json,
        },
    )  # fmt: skip
    err(f"interrupted: checkpoint saved to {outcome.checkpoint}, {best}; continue with: {again}")
    raise typer.Exit(EXIT_INTERRUPTED)
