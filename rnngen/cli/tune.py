"""`rnngen tune`: search the adaptation settings on a held-out text."""

from typing import Annotated

import typer

from .. import api
from ..core import backend
from ..errors import ConfigError
from ..text.corpus import TextOptions, read_text
from . import reports
from .common import Messages, Output, errors_to_exit, one_stdin, print_json
from .options import AsJson, Device, Encoding, Errors, Quiet, Threads, Verbose
from .progress import StepDisplay


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
    threads: Threads = None,
    quiet: Quiet = False,
    verbose: Verbose = False,
):
    """Search the --cache and --dynamic settings, alone and together, on a held-out text (a small
    fixed grid) and print the best ones with their perplexities; --write stores them for eval,
    score and sample.

    Example: rnngen tune model.npz held_out.txt --write
    """
    with errors_to_exit(verbose):
        say = Messages(quiet, verbose)
        backend.use_device(device)
        one_stdin(MODEL=model, INPUT=input)
        if write and model == "-":
            raise ConfigError("--write needs a model file, not standard input")
        if write:
            Output(model, "model", [input])  # the model file is replaced by itself, tuned
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
