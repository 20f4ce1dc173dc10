"""`rnngen sample`: generate text that continues a start text."""

import secrets
import sys
from typing import Annotated

import numpy as np
import typer

from .. import api
from ..core import backend
from ..errors import ConfigError
from ..reading import sampling
from ..reading.sampling import SamplerSettings
from ..text import layout
from ..text.corpus import decode_text, read_text
from .common import (
    Messages,
    defaulted,
    errors_to_exit,
    one_stdin,
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
    CacheLambda,
    CacheSize,
    CacheTheta,
    Device,
    DynamicDecay,
    DynamicLen,
    DynamicLr,
    DynamicStats,
    ModelPath,
    Quiet,
    Threads,
    UseCache,
    UseDynamic,
    Verbose,
)


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
        given = {k: v for k, v in chain.items() if not defaulted(ctx, k)}
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
            start = stdin_text()
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
