"""`rnngen train`: train a model and save the best one."""

import contextlib
import json
import signal
import threading
from dataclasses import asdict
from typing import Annotated

import typer

from .. import api
from ..core import backend
from ..core.model import CELLS, SOFTMAXES, ModelConfig
from ..core.optim import OPTIMIZERS
from ..errors import EXIT_INTERRUPTED, ConfigError
from ..text.corpus import TextOptions, read_text
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
            help="Wall-clock budget for the whole run (90s, 10m, 1.5h), validation included; "
            "the schedule is planned for it. With --resume, the new total.",
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
            help="Divide the learning rate by this after an epoch without gain.",
            rich_help_panel=TRAINING,
        ),
    ] = TrainConfig.lr_decay,
    patience: Annotated[
        int,
        typer.Option(
            help="Stop after this many epochs without gain (0: never).", rich_help_panel=TRAINING
        ),
    ] = TrainConfig.patience,
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
            help="Append a JSON line per logged step and per epoch's evaluation to this file.",
            rich_help_panel=OUTPUT,
        ),
    ] = None,
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
    with errors_to_exit(verbose):
        comm = distributed.world()  # under mpiexec: one rank of a data-parallel run
        lead = comm is None or comm.rank == 0
        if not lead:  # only rank 0 speaks and writes
            quiet, verbose, as_json, log_file = True, False, False, None
        say = Messages(quiet, verbose)
        backend.use_device(device)
        one_stdin(INPUT=input, **{"--valid": valid})
        model_out, checkpoint = train_outputs(
            out, checkpoint, log_file, (input, valid), resume, force, as_json
        )
        if sparse_embedding and dense_embedding:
            raise ConfigError("--sparse-embedding and --dense-embedding contradict; give one")
        if tie_weights and untie_weights:
            raise ConfigError("--tie-weights and --untie-weights contradict; give one")
        if zero_bias and unigram_bias:
            raise ConfigError("--zero-bias and --unigram-bias contradict; give one")
        options = TextOptions(encoding, errors)
        api.check_checkpoint_every(checkpoint_every)
        seconds = None if time_limit is None else parse_duration(time_limit)
        ckpt = None if resume is None else api.open_checkpoint(resume, epochs, seconds)
        if ckpt is not None:
            api.check_resume_options(ckpt, given_options(ctx))
        if ckpt is None:
            corpus = api.training_corpus(
                input,
                tokenizer_config(level, tokenizer, lowercase, lines),
                max_vocab,
                min_count,
                options,
            )
        else:
            corpus = api.training_corpus(input, ckpt.tokenizer, options=options, vocab=ckpt.vocab)
        val_ids = None if valid is None else api.encode_for(corpus, read_text(valid, options))
        if ckpt is not None:
            model_cfg, train_cfg = ckpt.model, ckpt.train
        else:
            model_cfg = api.model_config(
                corpus.vocab,
                softmax,
                classes,
                embed=embed,
                hidden=hidden,
                layers=layers,
                cell=cell,
                dropout=dropout,
                tie_weights=True if tie_weights else False if untie_weights else None,
            )
            train_cfg = TrainConfig(
                epochs=epochs if epochs is not None or seconds is not None else TrainConfig.epochs,
                batch_size=batch_size,
                seq_len=seq_len,
                optimizer=optimizer,
                lr=lr,
                lr_decay=lr_decay,
                patience=patience,
                clip=clip,
                state_reset=state_reset,
                unigram_bias=not zero_bias,
                lazy_adam=sparse_embedding and not dense_embedding,
                val_frac=val_frac,
                seed=seed,
                dtype=dtype,
                time_limit=seconds,
                val_every=val_every,
            )
        header = (
            f"{model_cfg.layers}x{model_cfg.hidden} {model_cfg.cell}, "
            f"vocabulary {len(corpus.vocab):,}"
        )
        model_settings = {k: v for k, v in model_cfg.to_dict().items() if k != "class_bounds"}
        say.detail(f"model: {json.dumps(model_settings)}")
        say.detail(f"training: {json.dumps(asdict(train_cfg))}")
        with contextlib.ExitStack() as stack:
            log = None
            if log_file is not None:
                settings = {
                    "input": input or "(bundled corpus)",
                    "out": out,
                    "model": model_settings,
                    "train": asdict(train_cfg),
                }
                lr0 = train_cfg.learning_rate(model_cfg.cell)
                log = stack.enter_context(runlog.RunLog(log_file, lr0, settings))
                say.detail(f"logging to {log_file} as run {log.run}")
            display = stack.enter_context(TrainingDisplay(header, quiet))
            stop = stack.enter_context(StopOnInterrupt(display.message))
            outcome = api.train_model(
                corpus,
                model_cfg,
                train_cfg,
                model_out.path,
                val_ids,
                runlog.combine(log, display),
                checkpoint=checkpoint,
                checkpoint_every=checkpoint_every,
                resume=ckpt,
                should_stop=stop.requested,
                comm=comm,
            )
            if not outcome.interrupted and lead:
                display.message(summary_line(out, outcome.model.history, display.width))
        if outcome.interrupted and not lead:
            raise typer.Exit(EXIT_INTERRUPTED)
        if outcome.interrupted:
            best = f"the best model so far in {out}" if outcome.model else "no epoch finished yet"
            again = api.resume_command(
                outcome.checkpoint,
                input,
                out,
                {
                    "--valid": valid,
                    "--checkpoint": None if checkpoint == api.default_checkpoint_path(out)
                    else checkpoint,
                    "--checkpoint-every": checkpoint_every or None,
                    "--log-file": log_file,
                    "--encoding": None if encoding == "utf-8" else encoding,
                    "--errors": None if errors == "strict" else errors,
                    "--device": None if device == "cpu" else device,
                    "--json": as_json,
                },
            )  # fmt: skip
            err(
                f"interrupted: checkpoint saved to {outcome.checkpoint}, {best}; "
                f"continue with: {again}"
            )
            raise typer.Exit(EXIT_INTERRUPTED)
        model_out.send()
        if as_json:
            print_json(api.training_summary(outcome.model, out))
