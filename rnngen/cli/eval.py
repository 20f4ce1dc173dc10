"""`rnngen eval`: score a text."""

import math
import time
from typing import Annotated

import typer

from .. import api
from ..core import backend
from ..errors import ConfigError
from ..text.corpus import TextOptions, read_text
from . import reports
from .common import Messages, errors_to_exit, one_stdin, print_json
from .helptext import (
    INPUT,
    in_panel,
)
from .options import (
    AdaptOptions,
    AsJson,
    Device,
    Encoding,
    Errors,
    ModelPath,
    Quiet,
    Threads,
    Verbose,
    adaptation_options,
)
from .progress import EvalDisplay


@adaptation_options
def eval_command(
    input: Annotated[str, typer.Argument(help="Text file to score, or - for stdin.")],
    model: in_panel(ModelPath, INPUT) = "model.npz",
    as_json: AsJson = False,
    tokens: Annotated[
        bool,
        typer.Option(
            "--tokens",
            help="Instead of the report, one JSON object per token scored (JSON Lines): its "
            "position in the text's tokens, the token, its log-probability and probability.",
        ),
    ] = False,
    adapt: AdaptOptions = AdaptOptions(),
    encoding: Encoding = "utf-8",
    errors: Errors = "strict",
    device: Device = "cpu",
    threads: Threads = None,
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
        one_stdin(INPUT=input, **{"--model": model, "--dynamic-stats": adapt.dynamic_stats})
        trained = api.open_model(model)
        options = TextOptions(encoding, errors)
        adaptation = adapt.adaptation(trained, options)
        began = time.perf_counter()
        text = read_text(input, options)
        if tokens:
            if as_json:
                raise ConfigError("--tokens prints JSON Lines already; drop --json")
            with EvalDisplay(quiet) as display:
                words, logprobs = api.token_log_probs(trained, text, adaptation, display)
            _print_tokens(words, logprobs, trained.vocab)
            return
        with EvalDisplay(quiet) as display:
            values = api.evaluate_text(trained, text, adaptation, display).to_dict()
        if "adapted" in values and adaptation.dynamic is not None:
            dropped = values["adapted"]["dropped_steps"]
            say.detail(f"dynamic evaluation: {dropped:,} steps undone by the divergence guard")
        if as_json:
            print_json(values)
        else:
            print("\n".join(reports.eval_lines(values)))
        say.detail(f"scored {values['tokens']:,} tokens in {time.perf_counter() - began:.2f}s")


def _print_tokens(words, logprobs, vocab) -> None:
    """One JSON line per scored token (words[1:]; the first is context only)."""
    for position, (word, logprob) in enumerate(zip(words[1:], logprobs, strict=True), 1):
        row = {"position": position, "token": word, "logprob": float(logprob),
               "prob": math.exp(logprob)}  # fmt: skip
        if word not in vocab:
            row["unk"] = True  # scored as <unk>
        print_json(row)
