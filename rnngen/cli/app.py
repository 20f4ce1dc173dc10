"""The `rnngen` command line: parse options, call `rnngen.api`, print, map errors to exit codes.

Data (generated text, scores, evaluation results, model facts, charts) goes to stdout and nothing
else does; messages and progress go to stderr. Expected failures are one line on stderr and a
documented exit code; an unexpected one is one line calling it a bug, or with -v its traceback.
Every command takes -q/--quiet (nothing on stderr unless it fails) and -v/--verbose (more detail).
"""

import sys
from typing import Annotated

import typer

from .. import __version__
from ..errors import EXIT_INTERRUPTED, EXIT_UNEXPECTED, RnngenError
from ..training import distributed
from . import encode, eval, info, plot, sample, score, train, tune
from .common import err
from .helptext import (
    Command,
    Group,
)

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


for _command in (
    encode.encode,
    train.train_command,
    sample.sample,
    eval.eval_command,
    score.score,
    tune.tune_command,
    info.info,
    plot.plot_command,
):
    _name = _command.__name__.removesuffix("_command")
    app.command(_name, cls=Command)(_command)


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
