"""`rnngen info`: describe a model file."""

from typing import Annotated

import typer

from .. import api
from . import reports
from .common import Messages, errors_to_exit, print_json
from .options import AsJson, Quiet, Verbose


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
