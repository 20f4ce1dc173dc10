"""What every command shares: one-line errors and exit codes, messages on stderr, stdin and
stdout helpers."""

import contextlib
import json
import os
import shutil
import sys
import tempfile
import traceback

import typer

from ..api import default_checkpoint_path
from ..errors import EXIT_INTERRUPTED, EXIT_UNEXPECTED, ConfigError, RnngenError
from ..files.outputs import check_output
from ..text.corpus import decode_text
from ..text.tokenize import TokenizerConfig
from .options import flag


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
    except ConfigError as e:
        err(f"error: {e.named(flag)}")  # the settings named by the flags that set them
        raise typer.Exit(e.exit_code) from None
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


class Output:
    """Where a command writes a file (`kind`: see files/outputs.py), checked before anything is
    done: a path, or `-` for standard output, where a temporary file stands in (written as often
    as the command likes) until send() copies it to stdout. `shares` names an option that also
    writes to stdout (--json), which `-` contradicts."""

    def __init__(self, path, kind, inputs=(), force=False, shares=None, outputs=()):
        self._folder = None
        self.path = path
        if path != "-":
            check_output(path, kind, inputs, force, outputs)
            return
        if shares:
            raise ConfigError(f"-o - and {shares} both write to standard output; give one")
        if sys.stdout.isatty():
            raise ConfigError(
                f"-o - writes the {kind} file to standard output, which is a terminal here; "
                f"redirect it (> {kind}.npz) or pipe it into another command"
            )
        self._folder = tempfile.TemporaryDirectory(prefix="rnngen-")
        self.path = os.path.join(self._folder.name, f"standard-output.{kind}.npz")

    @property
    def to_stdout(self) -> bool:
        return self._folder is not None

    def send(self) -> None:
        """With `-`: copy what was written to stdout (nothing, if nothing was), and clean up."""
        if self._folder is None:
            return
        if os.path.exists(self.path):
            with open(self.path, "rb") as f:
                shutil.copyfileobj(f, sys.stdout.buffer)
            sys.stdout.buffer.flush()
        self._folder.cleanup()


def train_outputs(
    out, checkpoint, log_file, texts, resume, force, as_json
) -> tuple[Output, str | None]:
    """`train`'s outputs, checked against its input `texts` and the checkpoint it resumes: the
    model (`-o -`: stdout), and the checkpoint path, the one given, else beside the model (none
    with `-o -`: there is nothing beside it). A resumed run writes back to its checkpoint."""
    shares = "--json" if as_json else None
    model = Output(out, "model", [*texts, resume], force, shares)
    if checkpoint is None and not model.to_stdout:
        checkpoint = default_checkpoint_path(out)
    written = [] if model.to_stdout else [out]
    Output(checkpoint, "checkpoint", texts, force, outputs=written)
    Output(log_file, "log", [*texts, resume], force, outputs=[*written, checkpoint])
    return model, checkpoint


def print_json(value) -> None:
    print(json.dumps(value))


def given_options(ctx: typer.Context) -> dict:
    """Option name (its longest spelling) -> value, for the options the user gave rather than left
    to their defaults."""
    given = {}
    for param in ctx.command.params:
        source = ctx.get_parameter_source(param.name)
        if source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP"):
            given[max(param.opts, key=len)] = ctx.params[param.name]
    return given


def stdin_text() -> str | None:
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


def defaulted(ctx: typer.Context, name: str) -> bool:
    """Whether an option kept its default (was not on the command line)."""
    source = ctx.get_parameter_source(name)
    return source is None or source.name == "DEFAULT"
