"""The `rnngen` command line: parse options, call `rnngen.api`, print, map errors to exit codes.

Data (generated text, scores, evaluation results, model facts, charts) goes to stdout and nothing
else does; messages and progress go to stderr. Expected failures are one line on stderr and a
documented exit code; an unexpected one is one line calling it a bug, or with -v its traceback.
Every command takes -q/--quiet (nothing on stderr unless it fails) and -v/--verbose (more detail).
"""

import contextlib
import json
import os
import secrets
import shutil
import signal
import sys
import threading
import time
import traceback
from dataclasses import asdict
from typing import Annotated

import numpy as np
import typer

from .. import __version__, api
from ..core import backend
from ..core.backend import DEVICES
from ..core.model import CELLS, SOFTMAXES, ModelConfig
from ..core.optim import OPTIMIZERS
from ..errors import EXIT_INTERRUPTED, EXIT_UNEXPECTED, ConfigError, RnngenError
from ..files.storage import save_corpus
from ..reading import sampling
from ..reading.sampling import SamplerSettings
from ..text import layout
from ..text.corpus import TextOptions, decode_text, encode_file, read_text
from ..text.tokenize import LEVELS, LINES, SCHEMES, TokenizerConfig
from ..training import distributed, runlog
from ..training.schedule import parse_duration
from ..training.train import DTYPES, TrainConfig
from . import plot, reports
from .helptext import (
    ADAPT,
    CHECKPOINTS,
    DATA,
    INPUT,
    MODEL,
    OUTPUT,
    SAMPLING,
    SPEED,
    TRAINING,
    Command,
    Group,
    choices,
    in_panel,
)
from .progress import EvalDisplay, StepDisplay, TrainingDisplay, summary_line

app = typer.Typer(
    cls=Group,
    add_completion=True,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    help="Train a word-level recurrent neural network language model on a book, generate text "
    "in its voice, and score texts.\n\n"
    "Every input can be - for standard input. Data goes to stdout, messages to stderr; every "
    "command takes -q/--quiet and -v/--verbose. NO_COLOR and TERM=dumb are honoured.\n\n"
    "Exit codes: 0 ok, 1 unexpected error, 2 usage, 65 bad input data or model file, "
    "66 missing input, 69 optional package missing, 73 cannot write output, 130 interrupted.",
)


def err(message: str) -> None:
    print(f"rnngen: {message}", file=sys.stderr, flush=True)


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else ""


# Typer's exits, aborts and usage errors (its click base class, wherever typer takes click from:
# recent versions carry their own copy and no longer depend on click).
_ALREADY_HANDLED = (
    typer.Exit,
    typer.Abort,
    next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"),
)


@contextlib.contextmanager
def errors_to_exit(verbose: bool = False):
    """Turn expected failures into one stderr line and an exit code; stay quiet on a closed pipe;
    an unexpected exception is one line saying it is a bug (its traceback with -v)."""
    try:
        yield
    except RnngenError as e:
        err(f"error: {e}")
        raise typer.Exit(e.exit_code) from None
    except KeyboardInterrupt:
        err("interrupted")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python from complaining at exit.
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        raise typer.Exit(0) from None
    except _ALREADY_HANDLED:
        raise  # exits and usage errors are already what they should be
    except Exception as e:
        detail = f"{type(e).__name__}: {_first_line(e)}".rstrip(": ")
        if verbose:
            traceback.print_exc(file=sys.stderr)
            err(f"error: unexpected {detail}; this is a bug in rnngen, please report it")
        else:
            err(
                f"error: unexpected {detail}; this is a bug in rnngen: "
                "rerun with -v for the traceback and please report it"
            )
        raise typer.Exit(EXIT_UNEXPECTED) from None


class Messages:
    """Messages on stderr: `say` unless quiet, `detail` only when verbose."""

    def __init__(self, quiet: bool, verbose: bool):
        if quiet and verbose:
            raise ConfigError("-q/--quiet and -v/--verbose contradict each other; give one")
        self.quiet, self.verbose = quiet, verbose

    def say(self, message: str) -> None:
        if not self.quiet:
            err(message)

    def detail(self, message: str) -> None:
        if self.verbose:
            err(message)


def version_callback(value: bool):
    if value:
        print(f"rnngen {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=version_callback, is_eager=True, help="Show the version."
        ),
    ] = False,
):
    pass


Level = Annotated[
    str | None,
    typer.Option(metavar=choices(LEVELS), help="Token level: words or characters. [default: word]"),
]
Tokenizer = Annotated[
    str | None,
    typer.Option(
        metavar=choices(SCHEMES),
        help="Word splitting: book, or whitespace for pre-tokenised text. [default: book]",
    ),
]
Lowercase = Annotated[bool, typer.Option("--lowercase", help="Fold text to lower case.")]
Lines = Annotated[
    str | None,
    typer.Option(
        metavar=choices(LINES),
        help="Line breaks inside a paragraph of book text: auto joins the printer's wraps and "
        "keeps verse and lists. [default: auto]",
    ),
]
MaxVocab = Annotated[
    int | None, typer.Option(help="Keep only the N most frequent tokens; others become <unk>.")
]
MinCount = Annotated[int, typer.Option(help="Drop tokens seen fewer than N times.")]
ModelPath = Annotated[
    str, typer.Option("-m", "--model", help="Model file to use (- reads it from stdin).")
]
Quiet = Annotated[
    bool, typer.Option("-q", "--quiet", help="Nothing on stderr unless something fails.")
]
Verbose = Annotated[
    bool,
    typer.Option("-v", "--verbose", help="More detail on stderr; tracebacks of unexpected errors."),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
Device = Annotated[
    str,
    typer.Option(
        metavar=choices(DEVICES), help="cpu (NumPy), or gpu (CuPy: pip install 'rnngen[gpu]')."
    ),
]
Encoding = Annotated[
    str, typer.Option(help="Text encoding of the input (a UTF-8 byte-order mark is dropped).")
]
Errors = Annotated[
    str,
    typer.Option(
        metavar=choices(("strict", "replace")),
        help="strict: refuse undecodable bytes; replace: substitute U+FFFD.",
    ),
]


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


def tokenizer_config(level, tokenizer, lowercase, lines=None) -> TokenizerConfig | None:
    if level is None and tokenizer is None and not lowercase and lines is None:
        return None
    return TokenizerConfig(level or "word", tokenizer or "book", lowercase, lines or "auto")


def one_stdin(**paths) -> None:
    """Refuse two inputs that both say `-`: standard input can only be read once."""
    dashes = [name for name, path in paths.items() if path == "-"]
    if len(dashes) > 1:
        raise ConfigError(
            f"{' and '.join(dashes)} both read standard input; give a file for one of them"
        )


def print_json(value) -> None:
    print(json.dumps(value))


@app.command(cls=Command)
def encode(
    input: Annotated[str, typer.Argument(help="Text file to encode, or - for stdin.")],
    out: Annotated[
        str | None,
        typer.Option("-o", "--out", help="Output .npz file. [default: INPUT's name.npz]"),
    ] = None,
    level: Level = None,
    tokenizer: Tokenizer = None,
    lowercase: Lowercase = False,
    lines: Lines = None,
    max_vocab: MaxVocab = None,
    min_count: MinCount = 1,
    encoding: Encoding = "utf-8",
    errors: Errors = "strict",
    quiet: Quiet = False,
    verbose: Verbose = False,
):
    """Tokenize a text and build its vocabulary, for `rnngen train`. Any size of input: it is
    read in pieces, and memory holds only the vocabulary and the token ids.

    Example: rnngen encode book.txt -o book.npz --max-vocab 10000
    """
    with errors_to_exit(verbose):
        say = Messages(quiet, verbose)
        config = tokenizer_config(level, tokenizer, lowercase, lines) or TokenizerConfig()
        corpus = encode_file(input, config, max_vocab, min_count, TextOptions(encoding, errors))
        if out is None:
            out = (
                "corpus.npz"
                if input == "-"
                else os.path.splitext(os.path.basename(input))[0] + ".npz"
            )
        save_corpus(out, corpus)
        say.say(
            f"encoded {len(corpus.ids):,} tokens, vocabulary {len(corpus.vocab):,} "
            f"({1 - corpus.unk_rate:.2%} of tokens covered) -> {out}"
        )
        vocab = corpus.vocab
        say.detail(f"tokenizer: {json.dumps(corpus.tokenizer.to_dict(), ensure_ascii=False)}")
        top = vocab.tokens[vocab.n_specials : vocab.n_specials + 20]
        say.detail("most frequent: " + " ".join(reports.show_token(t) for t in top))


def given_options(ctx: typer.Context) -> dict:
    """Option name (its longest spelling) -> value, for the options the user gave rather than left
    to their defaults."""
    given = {}
    for param in ctx.command.params:
        source = ctx.get_parameter_source(param.name)
        if source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP"):
            given[max(param.opts, key=len)] = ctx.params[param.name]
    return given


@app.command("train", cls=Command)
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
        str, typer.Option("-o", "--out", help="Where to save the model.", rich_help_panel=OUTPUT)
    ] = "model.npz",
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
        checkpoint = checkpoint or api.default_checkpoint_path(out)
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
                out,
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
        if as_json:
            print_json(api.training_summary(outcome.model, out))


def _stdin_text() -> str | None:
    """The start text from a pipe, or None when stdin is a terminal or empty."""
    if sys.stdin is None or sys.stdin.isatty():
        return None
    data = sys.stdin.buffer.read()
    return decode_text(data, "standard input").strip() if data.strip() else None


def terminal_width() -> int | None:
    """The width of the terminal stdout is, or None when stdout is a pipe or a file."""
    return shutil.get_terminal_size((80, 24)).columns if sys.stdout.isatty() else None


def write_stream(pieces) -> None:
    """Write text pieces to stdout as they come, flushing each, ending with exactly one line
    break: the output equals "".join(pieces).rstrip("\\n") + "\\n". Line breaks at the end of
    what has come so far are held back until more text follows them."""
    held = ""
    for piece in pieces:
        text = held + piece
        body = text.rstrip("\n")
        held = text[len(body) :]
        if body:
            sys.stdout.write(body)
            sys.stdout.flush()
    sys.stdout.write("\n")
    sys.stdout.flush()


def _defaulted(ctx: typer.Context, name: str) -> bool:
    """Whether an option kept its default (was not on the command line)."""
    source = ctx.get_parameter_source(name)
    return source is None or source.name == "DEFAULT"


# Adapting to the text read (adapt.py): options of eval, score and sample. A value turns its part
# on; unset values come from the model file (`rnngen tune --write`), else from the defaults.
UseCache = Annotated[
    bool,
    typer.Option(
        "--cache", help="Neural cache: mix in words seen in the text so far.", rich_help_panel=ADAPT
    ),
]
CacheSize = Annotated[
    int | None,
    typer.Option(
        help="Positions the cache holds. [default: 2000, or the tuned value]",
        rich_help_panel=ADAPT,
    ),
]
CacheTheta = Annotated[
    float | None,
    typer.Option(
        help="Cache match sharpness, >= 0. [default: 1, or the tuned value]", rich_help_panel=ADAPT
    ),
]
CacheLambda = Annotated[
    float | None,
    typer.Option(
        help="Cache weight in [0, 1). [default: 0.1, or the tuned value]", rich_help_panel=ADAPT
    ),
]
UseDynamic = Annotated[
    bool,
    typer.Option(
        "--dynamic",
        help="Dynamic evaluation: adapt the weights to the text as read.",
        rich_help_panel=ADAPT,
    ),
]
DynamicLr = Annotated[
    float | None,
    typer.Option(
        help="Dynamic evaluation step, >= 0. [default: 0.0001, or the tuned value]",
        rich_help_panel=ADAPT,
    ),
]
DynamicDecay = Annotated[
    float | None,
    typer.Option(
        help="Pull back to the trained weights, in [0, 1]. [default: 0.0003, or the tuned value]",
        rich_help_panel=ADAPT,
    ),
]
DynamicLen = Annotated[
    int | None,
    typer.Option(
        help="Tokens read between weight updates. [default: 50, or the tuned value]",
        rich_help_panel=ADAPT,
    ),
]
DynamicStats = Annotated[
    str | None,
    typer.Option(
        help="Training text to compute gradient statistics from, for a model file without them.",
        rich_help_panel=ADAPT,
    ),
]


@app.command(cls=Command)
def sample(
    ctx: typer.Context,
    model: in_panel(ModelPath, INPUT) = "model.npz",
    start: Annotated[
        str | None,
        typer.Option(
            help="Start text (one or more words), or - to read it from stdin. "
            "[default: piped stdin, else a random word]",
            rich_help_panel=INPUT,
        ),
    ] = None,
    length: Annotated[
        int, typer.Option(rich_help_panel=SAMPLING, help="Tokens to generate.")
    ] = 200,
    temperature: Annotated[
        float,
        typer.Option(
            rich_help_panel=SAMPLING,
            help="Below 1: safer; above 1: wilder; 0: greedy. Applied last.",
        ),
    ] = SamplerSettings.temperature,
    top_k: Annotated[
        int,
        typer.Option(rich_help_panel=SAMPLING, help="Keep only the K likeliest tokens (0: all)."),
    ] = SamplerSettings.top_k,
    top_p: Annotated[
        float,
        typer.Option(
            rich_help_panel=SAMPLING,
            help="Keep the likeliest tokens whose probabilities first add up to P (nucleus; "
            "1: all).",
        ),
    ] = SamplerSettings.top_p,
    min_p: Annotated[
        float,
        typer.Option(
            rich_help_panel=SAMPLING,
            help="Keep tokens at least P times as likely as the likeliest (0: all).",
        ),
    ] = SamplerSettings.min_p,
    repeat_penalty: Annotated[
        float,
        typer.Option(
            rich_help_panel=SAMPLING,
            help="Make tokens among the last --repeat-last-n less likely (1: off).",
        ),
    ] = SamplerSettings.repeat_penalty,
    repeat_last_n: Annotated[
        int,
        typer.Option(
            rich_help_panel=SAMPLING, help="Tokens --repeat-penalty looks back on (-1: all)."
        ),
    ] = SamplerSettings.repeat_last_n,
    greedy: Annotated[
        bool,
        typer.Option(
            "--greedy",
            help="Always take the likeliest token (no other sampler option).",
            rich_help_panel=SAMPLING,
        ),
    ] = False,
    width: Annotated[
        int | None,
        typer.Option(
            rich_help_panel=OUTPUT,
            help="Wrap paragraphs to N columns (0: no wrapping). "
            "[default: the terminal's width; no wrapping into a pipe or file]",
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(rich_help_panel=SAMPLING, help="Random seed: same seed, same text."),
    ] = None,
    count: Annotated[
        int,
        typer.Option(
            rich_help_panel=OUTPUT, help="Print this many samples, separated by a blank line."
        ),
    ] = 1,
    no_stream: Annotated[
        bool,
        typer.Option(
            "--no-stream",
            rich_help_panel=OUTPUT,
            help="Print the whole text at the end, not each token as it is generated "
            "(--stream, the default).",
        ),
    ] = False,
    stream: Annotated[
        bool, typer.Option("--stream", hidden=True, help="The opposite of --no-stream.")
    ] = False,
    cache: UseCache = False,
    cache_size: CacheSize = None,
    cache_theta: CacheTheta = None,
    cache_lambda: CacheLambda = None,
    dynamic: UseDynamic = False,
    dynamic_lr: DynamicLr = None,
    dynamic_decay: DynamicDecay = None,
    dynamic_len: DynamicLen = None,
    dynamic_stats: DynamicStats = None,
    device: Device = "cpu",
    quiet: Quiet = False,
    verbose: Verbose = False,
):
    """Generate text that continues a start text, printed to stdout as it is generated.

    Example: rnngen sample --start games --length 200 --temperature 0.8 --count 3
    """
    with errors_to_exit(verbose):
        say = Messages(quiet, verbose)
        if stream and no_stream:
            raise ConfigError("--stream and --no-stream contradict; give one")
        backend.use_device(device)
        if length < 0:
            raise ConfigError(f"--length must not be negative, got {length}")
        chain = dict(
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            min_p=min_p,
            repeat_penalty=repeat_penalty,
            repeat_last_n=repeat_last_n,
        )
        given = {k: v for k, v in chain.items() if not _defaulted(ctx, k)}
        settings = sampling.sampler_settings(greedy, **given)
        if width is not None and width < 0:
            raise ConfigError(f"--width must be 0 (no wrapping) or more, got {width}")
        if width is None:
            width = terminal_width()
        if count < 1:
            raise ConfigError(f"--count must be at least 1, got {count}")
        one_stdin(**{"--model": model, "--start": start, "--dynamic-stats": dynamic_stats})
        trained = api.open_model(model)
        adaptation = api.adaptation_for(
            trained,
            cache,
            {"size": cache_size, "theta": cache_theta, "lam": cache_lambda},
            dynamic,
            {"lr": dynamic_lr, "decay": dynamic_decay, "length": dynamic_len},
            None if dynamic_stats is None else read_text(dynamic_stats),
        )
        if start == "-":
            start = decode_text(sys.stdin.buffer.read(), "standard input").strip()
        elif start is None and model != "-":
            start = _stdin_text()
        api.check_seed(seed)
        if seed is None:
            seed = secrets.randbelow(2**31)
        say.detail(f"seed {seed} (give --seed {seed} for the same text again)")
        rng = np.random.default_rng(seed)
        for i in range(count):
            if i:
                sys.stdout.write("\n")
            if not no_stream:
                pieces = api.sample_pieces(trained, start, length, rng, settings, adaptation)
                write_stream(layout.wrap_pieces(pieces, width))
            else:
                text = layout.wrap_text(
                    api.sample_text(trained, start, length, rng, settings, adaptation), width
                )
                sys.stdout.write(text.rstrip("\n") + "\n")
                sys.stdout.flush()


@app.command("eval", cls=Command)
def eval_command(
    input: Annotated[str, typer.Argument(help="Text file to score, or - for stdin.")],
    model: in_panel(ModelPath, INPUT) = "model.npz",
    as_json: AsJson = False,
    cache: UseCache = False,
    cache_size: CacheSize = None,
    cache_theta: CacheTheta = None,
    cache_lambda: CacheLambda = None,
    dynamic: UseDynamic = False,
    dynamic_lr: DynamicLr = None,
    dynamic_decay: DynamicDecay = None,
    dynamic_len: DynamicLen = None,
    dynamic_stats: DynamicStats = None,
    encoding: Encoding = "utf-8",
    errors: Errors = "strict",
    device: Device = "cpu",
    quiet: Quiet = False,
    verbose: Verbose = False,
):
    """Score a text: token count, out-of-vocabulary rate, cross-entropy and perplexity; with
    --cache or --dynamic, also as scored by the model adapting to the text as it reads it.

    Example: rnngen eval held_out.txt -m model.npz --json
    """
    with errors_to_exit(verbose):
        say = Messages(quiet, verbose)
        backend.use_device(device)
        one_stdin(INPUT=input, **{"--model": model, "--dynamic-stats": dynamic_stats})
        trained = api.open_model(model)
        options = TextOptions(encoding, errors)
        adaptation = api.adaptation_for(
            trained,
            cache,
            {"size": cache_size, "theta": cache_theta, "lam": cache_lambda},
            dynamic,
            {"lr": dynamic_lr, "decay": dynamic_decay, "length": dynamic_len},
            None if dynamic_stats is None else read_text(dynamic_stats, options),
        )
        began = time.perf_counter()
        text = read_text(input, options)
        with EvalDisplay(quiet) as display:
            if adaptation is None:
                values = api.evaluate_text(trained, text, on_progress=display).to_dict()
            else:
                values = api.evaluate_adapted(trained, text, adaptation, display).to_dict()
        if as_json:
            print_json(values)
        else:
            print("\n".join(reports.eval_lines(values)))
        say.detail(f"scored {values['tokens']:,} tokens in {time.perf_counter() - began:.2f}s")


@app.command(cls=Command)
def score(
    input: Annotated[str, typer.Argument(help="Text file whose lines to score, or - for stdin.")],
    model: in_panel(ModelPath, INPUT) = "model.npz",
    with_text: Annotated[
        bool, typer.Option("--with-text", help="Add the line itself as a fourth column.")
    ] = False,
    cache: UseCache = False,
    cache_size: CacheSize = None,
    cache_theta: CacheTheta = None,
    cache_lambda: CacheLambda = None,
    device: Device = "cpu",
    quiet: Quiet = False,
    verbose: Verbose = False,
):
    """Score each line on its own: log-probability, tokens and perplexity, tab-separated.

    One output line per input line, for n-best rescoring and filtering in pipelines.

    Example: rnngen sample --start games --length 100 --seed 1 | rnngen score -
    """
    with errors_to_exit(verbose):
        say = Messages(quiet, verbose)
        backend.use_device(device)
        one_stdin(INPUT=input, **{"--model": model})
        trained = api.open_model(model)
        began = time.perf_counter()
        lines = tokens = 0
        adaptation = api.adaptation_for(
            trained, cache, {"size": cache_size, "theta": cache_theta, "lam": cache_lambda}
        )
        if adaptation is None:
            scored = api.score_lines(trained, api.iter_lines(input))
        else:  # the cache holds the lines before, in input order
            scored = api.score_lines_cached(trained, api.iter_lines(input), adaptation.cache)
        for line, result in scored:
            row = f"{result.logprob:.6f}\t{result.tokens}\t{result.perplexity:.4f}"
            sys.stdout.write(row + (f"\t{line}\n" if with_text else "\n"))
            sys.stdout.flush()
            lines += 1
            tokens += result.tokens
        seconds = time.perf_counter() - began
        say.detail(f"scored {lines:,} lines, {tokens:,} tokens in {seconds:.2f}s")


@app.command("tune", cls=Command)
def tune_command(
    model: Annotated[str, typer.Argument(help="Model file to tune (- reads it from stdin).")],
    input: Annotated[
        str, typer.Argument(help="Held-out text to tune on (not the training text), or -.")
    ],
    write: Annotated[
        bool,
        typer.Option("--write", help="Store the best settings in the model file (weights kept)."),
    ] = False,
    as_json: AsJson = False,
    encoding: Encoding = "utf-8",
    errors: Errors = "strict",
    device: Device = "cpu",
    quiet: Quiet = False,
    verbose: Verbose = False,
):
    """Search the --cache and --dynamic settings on a held-out text (a small fixed grid) and print
    the best ones with their perplexities; --write stores them for eval and sample.

    Example: rnngen tune model.npz held_out.txt --write
    """
    with errors_to_exit(verbose):
        say = Messages(quiet, verbose)
        backend.use_device(device)
        one_stdin(MODEL=model, INPUT=input)
        if write and model == "-":
            raise ConfigError("--write needs a model file, not standard input")
        trained = api.open_model(model)
        text = read_text(input, TextOptions(encoding, errors))
        if trained.stats is None:
            say.say("this model file has no gradient statistics: tuning the cache only")
        with StepDisplay("tuning", quiet) as display:
            result = api.tune_text(trained, text, display.update)
        if write:
            api.write_adapt_settings(model, result.settings())
            say.say(f"stored the settings in {model}")
        if as_json:
            print_json(result.to_dict())
        else:
            print("\n".join(reports.tune_lines(result.to_dict())))


@app.command(cls=Command)
def info(
    model: Annotated[
        str, typer.Argument(help="Model file to describe, or - for stdin.")
    ] = "model.npz",
    as_json: AsJson = False,
    top: Annotated[int, typer.Option(help="How many of the most frequent tokens to list.")] = 10,
    quiet: Quiet = False,
    verbose: Verbose = False,
):
    """Describe a model file: cell, sizes, vocabulary, tokenizer and training history.

    Example: rnngen info model.npz --json
    """
    with errors_to_exit(verbose):
        Messages(quiet, verbose)
        facts = api.model_info(api.open_model(model), model, top)
        if as_json:
            print_json(facts)
            return
        lines = reports.info_lines(facts)
        if verbose and (facts["history"]["per_epoch"] or facts["history"]["validations"]):
            lines += ["", *reports.per_epoch_lines(facts["history"])]
        print("\n".join(lines))


def _colour_stdout() -> bool:
    """Colour only on a terminal, and never with NO_COLOR set or TERM=dumb."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM", "") in ("dumb", "unknown"):
        return False
    return sys.stdout.isatty()


def print_chart(chart: plot.Chart) -> None:
    if not _colour_stdout():
        print("\n".join(chart.lines))
        return
    from rich.console import Console
    from rich.text import Text

    styles = {plot.TRAIN_MARK: "cyan", plot.VAL_MARK: "bold magenta"}
    console = Console(highlight=False, soft_wrap=True)
    for row, line in enumerate(chart.lines):
        text = Text(line, style="bold" if row < chart.plot_top else "")
        if chart.plot_top <= row < chart.plot_top + chart.plot_rows:
            for col in range(chart.plot_left, len(line)):
                if line[col] in styles:
                    text.stylize(styles[line[col]], col, col + 1)
        console.print(text)


@app.command("plot", cls=Command)
def plot_command(
    log: Annotated[
        str, typer.Argument(help="Training log from `train --log-file`, or - for stdin.")
    ],
    png: Annotated[
        str | None,
        typer.Option(help="Write a PNG image here instead (needs the plot extra: matplotlib)."),
    ] = None,
    run: Annotated[int, typer.Option(help="Which run of the log: 1 the first, -1 the last.")] = -1,
    width: Annotated[
        int | None,
        typer.Option(help="Chart width in columns. [default: the terminal's, at most 80]"),
    ] = None,
    height: Annotated[int, typer.Option(help="Chart height in rows.")] = 16,
    quiet: Quiet = False,
    verbose: Verbose = False,
):
    """Draw the training and validation loss curves of a training log.

    Example: rnngen plot run.jsonl --png curves.png
    """
    with errors_to_exit(verbose):
        say = Messages(quiet, verbose)
        plot.check_chart_size(width, height)
        contents = runlog.read_runs(log)
        if contents.skipped:
            say.say(f"warning: skipped {contents.skipped} lines that are not training records")
        runs = contents.runs
        if run == 0 or not -len(runs) <= run <= len(runs):
            raise ConfigError(
                f"--run {run} is not in the log, which holds {len(runs)} "
                f"run{'s' if len(runs) != 1 else ''}; give 1 to {len(runs)}, or -1 for the last"
            )
        chosen = runs[run - 1 if run > 0 else run]
        say.detail(f"{len(runs)} runs in {log}; drawing {chosen.id or 'the unnamed run'}")
        curves = plot.run_curves(chosen)
        title = plot.run_title(chosen)
        if png is not None:
            plot.write_png(curves, png, title)
            say.say(f"wrote {png}")
            return
        if width is None:
            width = min(shutil.get_terminal_size((80, 24)).columns, 80)
        print_chart(plot.text_chart(curves, width, height, title))


def run() -> None:
    """Console-script entry point. Under mpiexec, a rank that fails ends the whole job (MPI_Abort)
    so the other ranks do not wait for it forever."""
    try:
        app(prog_name="rnngen")  # the same name, and completion variable, under `python -m`
    except KeyboardInterrupt:
        err("interrupted")
        _end_job(EXIT_INTERRUPTED)
    except SystemExit as e:
        _end_job(e.code)


def _end_job(code) -> None:
    if code not in (0, None) and distributed.launched_by_mpi():
        try:
            comm = distributed.world()
        except RnngenError:
            comm = None
        if comm is not None:
            comm.abort(code if isinstance(code, int) else EXIT_UNEXPECTED)
    sys.exit(code)


if __name__ == "__main__":
    run()
