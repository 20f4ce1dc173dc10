"""`rnngen sample`: generate text that continues a start text."""

import math
import secrets
import sys
from typing import Annotated

import numpy as np
import typer

from .. import api
from ..core import backend
from ..errors import ConfigError
from ..reading import sampling
from ..reading.continuation import UNTIL_STOP_CAP, SampleLog
from ..reading.sampling import DEFAULT, SamplerSettings
from ..reading.stops import parse_stop, unescape
from ..text import layout
from ..text.corpus import decode_text
from .common import (
    Messages,
    defaulted,
    errors_to_exit,
    one_stdin,
    print_json,
    stdin_text,
    terminal_width,
    write_stream,
)
from .helptext import (
    INPUT,
    OUTPUT,
    SAMPLING,
    in_panel,
)
from .options import (
    AdaptOptions,
    Device,
    ModelPath,
    Quiet,
    Threads,
    Verbose,
    adaptation_options,
)


@adaptation_options
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
        int,
        typer.Option(
            rich_help_panel=SAMPLING,
            help=f"Tokens to generate; 0: until a --stop condition (at most {UNTIL_STOP_CAP:,}).",
        ),
    ] = 200,
    stop: Annotated[
        list[str] | None,
        typer.Option(
            rich_help_panel=SAMPLING,
            help="End the sample at a sentence's end (sentence), a paragraph break (paragraph) "
            "or this TEXT (\\n: a line break); repeatable: the first match ends it.",
            metavar="TEXT",
        ),
    ] = None,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            rich_help_panel=INPUT,
            help="Refuse a start text with words the model does not know (by default they are "
            "read as <unk> where the model was trained with it, else left out, with a warning).",
        ),
    ] = False,
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
    dry_multiplier: Annotated[
        float,
        typer.Option(
            rich_help_panel=SAMPLING,
            help="DRY: lower the score of a token that would extend a repeated sequence by "
            "M * base^(length - allowed) (0: off).",
        ),
    ] = DEFAULT.dry_multiplier,
    dry_base: Annotated[
        float, typer.Option(rich_help_panel=SAMPLING, help="DRY's growth per repeated token.")
    ] = DEFAULT.dry_base,
    dry_allowed_length: Annotated[
        int,
        typer.Option(rich_help_panel=SAMPLING, help="DRY: repeats this long go unpenalised."),
    ] = DEFAULT.dry_allowed_length,
    dry_last_n: Annotated[
        int,
        typer.Option(rich_help_panel=SAMPLING, help="Tokens DRY looks back on (-1: all)."),
    ] = DEFAULT.dry_last_n,
    dry_sequence_breaker: Annotated[
        list[str] | None,
        typer.Option(
            rich_help_panel=SAMPLING,
            help="A token no DRY match runs across and DRY never penalises (\\n\\n: the "
            "paragraph break); repeatable.",
            metavar="TOKEN",
            show_default=", ".join(repr(t) for t in DEFAULT.dry_sequence_breakers) or "none",
        ),
    ] = None,
    greedy: Annotated[
        bool,
        typer.Option(
            "--greedy",
            help="Always take the likeliest token (after DRY; DRY's are the only sampler "
            "options it takes).",
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
        typer.Option(
            rich_help_panel=SAMPLING, help="Random seed: same seed, same text. [default: random]"
        ),
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
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            rich_help_panel=OUTPUT,
            help="Print one JSON object per sample (JSON Lines): the text, and each generated "
            "token with its probability under the model before the sampler chain.",
        ),
    ] = False,
    top_probs: Annotated[
        int,
        typer.Option(
            rich_help_panel=OUTPUT,
            help="With --json: also the N likeliest tokens at each position, with their "
            "probabilities.",
        ),
    ] = 0,
    adapt: AdaptOptions = AdaptOptions(),
    device: Device = "cpu",
    threads: Threads = None,
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
        stops = [parse_stop(value) for value in stop or ()]
        _check_counts(length, stops, count, width, top_probs, as_json)
        chain = dict(
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            min_p=min_p,
            repeat_penalty=repeat_penalty,
            repeat_last_n=repeat_last_n,
            dry_multiplier=dry_multiplier,
            dry_base=dry_base,
            dry_allowed_length=dry_allowed_length,
            dry_last_n=dry_last_n,
        )
        given = {k: v for k, v in chain.items() if not defaulted(ctx, k)}
        given.setdefault("dry_multiplier", dry_multiplier)  # on by default here: DEFAULT
        if dry_sequence_breaker is not None:
            given["dry_sequence_breakers"] = [unescape(t) for t in dry_sequence_breaker]
        settings = sampling.sampler_settings(greedy, **given)
        if width is None:
            width = terminal_width()
        one_stdin(**{"--model": model, "--start": start, "--dynamic-stats": adapt.dynamic_stats})
        trained = api.open_model(model)
        adaptation = adapt.adaptation(trained)
        if start == "-":
            start = decode_text(sys.stdin.buffer.read(), "standard input").strip()
        elif start is None and model != "-":
            start = stdin_text()
        start_text = None if start is None else api.read_start(trained, start, strict)
        if start_text is not None and start_text.unknown:
            say.say(f"warning: {start_text.warning(trained.vocab)}")
        api.check_seed(seed)
        if seed is None:
            seed = secrets.randbelow(2**31)
        say.detail(f"seed {seed} (give --seed {seed} for the same text again)")
        rng = np.random.default_rng(seed)
        run = dict(settings=settings, adaptation=adaptation, stops=stops, top_probs=top_probs)
        for i in range(count):
            log = SampleLog()
            pieces = api.sample_pieces(trained, start_text, length, rng, **run, log=log)
            if as_json:
                print_json(_sample_json(start_text, "".join(pieces), log))
                continue
            if i:
                sys.stdout.write("\n")
            _print_text(pieces, width, not no_stream)
            if length == 0 and log.stop is None:
                say.say(f"warning: no --stop condition met in {UNTIL_STOP_CAP:,} tokens")


def _check_counts(length, stops, count, width, top_probs, as_json) -> None:
    if length < 0:
        raise ConfigError(f"--length must not be negative, got {length}")
    if length == 0 and not stops:
        raise ConfigError("--length 0 generates until a --stop condition; give --stop sentence")
    if count < 1:
        raise ConfigError(f"--count must be at least 1, got {count}")
    if width is not None and width < 0:
        raise ConfigError(f"--width must be 0 (no wrapping) or more, got {width}")
    if top_probs < 0:
        raise ConfigError(f"--top-probs must be 0 or more, got {top_probs}")
    if top_probs and not as_json:
        raise ConfigError("--top-probs is printed in the JSON output; add --json")


def _print_text(pieces, width, streaming: bool) -> None:
    """The sample on stdout, wrapped: each piece as it comes, or the whole at the end."""
    if streaming:
        write_stream(layout.wrap_pieces(pieces, width))
        return
    text = layout.wrap_text("".join(pieces), width)
    sys.stdout.write(text.rstrip("\n") + "\n")
    sys.stdout.flush()


def _sample_json(start_text, text: str, log: SampleLog) -> dict:
    """One sample as a JSON object: its text, how it ended, and each generated token with its
    probability under the model (before the sampler chain) and the likeliest alternatives."""

    def token(t, logprob):
        return {"token": t, "prob": math.exp(logprob), "logprob": logprob}

    tokens = []
    for record in log.tokens:
        entry = {"id": record.id, **token(record.token, record.logprob)}
        if record.top:
            entry["top"] = [token(u, lp) for u, lp in record.top]
        tokens.append(entry)
    return {
        "text": text.rstrip("\n"),  # as printed: the output ends with one line break
        "start": None if start_text is None else start_text.text,
        "unknown": [] if start_text is None else list(start_text.unknown),
        "stop": None if log.stop is None else str(log.stop),
        "tokens": tokens,
    }
