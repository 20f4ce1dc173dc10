"""`rnngen score`: score each line of a text on its own."""

import json
import sys
import time
from typing import Annotated

import typer

from .. import api
from ..core import backend
from .common import Messages, errors_to_exit, one_stdin
from .helptext import (
    INPUT,
    in_panel,
)
from .options import (
    AdaptOptions,
    Device,
    ModelPath,
    Quiet,
    Threads,
    Verbose,
    cache_options,
)


@cache_options
def score(
    input: Annotated[str, typer.Argument(help="Text file whose lines to score, or - for stdin.")],
    model: in_panel(ModelPath, INPUT) = "model.npz",
    with_text: Annotated[
        bool, typer.Option("--with-text", help="Add the line itself as a fourth column.")
    ] = False,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="One JSON object per line (JSON Lines): line, logprob, tokens, perplexity.",
        ),
    ] = False,
    adapt: AdaptOptions = AdaptOptions(),
    device: Device = "cpu",
    threads: Threads = None,
    quiet: Quiet = False,
    verbose: Verbose = False,
):
    """Score each line on its own: log-probability, tokens and perplexity, tab-separated (or
    one JSON object per line with --json).

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
        adaptation = adapt.adaptation(trained)
        # with a cache, the cache holds the lines before, in input order
        scored = api.score_lines(trained, api.iter_lines(input), adaptation=adaptation)
        for line, result in scored:
            if as_json:
                sys.stdout.write(json.dumps(_line_json(line, result)) + "\n")
            else:
                row = f"{result.logprob:.6f}\t{result.tokens}\t{result.perplexity:.4f}"
                sys.stdout.write(row + (f"\t{line}\n" if with_text else "\n"))
            sys.stdout.flush()
            lines += 1
            tokens += result.tokens
        if lines == 0:
            say.say(f"note: {'standard input' if input == '-' else input} has no lines to score")
        seconds = time.perf_counter() - began
        say.detail(f"scored {lines:,} lines, {tokens:,} tokens in {seconds:.2f}s")


def _line_json(line: str, result) -> dict:
    """A line's score as JSON; a perplexity with no token to average over is null."""
    perplexity = result.perplexity if result.tokens else None
    return {"line": line, "logprob": result.logprob, "tokens": result.tokens,
            "perplexity": perplexity}  # fmt: skip
