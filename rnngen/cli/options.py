"""Option declarations that more than one command takes, declared once; and FLAGS, the flag that
sets each library setting, for naming the settings in error messages."""

import functools
import inspect
from dataclasses import dataclass, fields
from typing import Annotated

import typer

from .. import api
from ..core import backend
from ..core.backend import DEVICES
from ..text.corpus import STRICT_UTF8, TextOptions, read_text
from ..text.tokenize import LEVELS, LINES, SCHEMES
from .helptext import (
    ADAPT,
    choices,
)

# The library names a setting by its field (errors.ConfigError); the command line by its flag.
FLAGS = {
    "cache.size": "--cache-size",
    "cache.theta": "--cache-theta",
    "cache.lambda": "--cache-lambda",
    "dynamic": "--dynamic",
    "dynamic.lr": "--dynamic-lr",
    "dynamic.decay": "--dynamic-decay",
    "dynamic.length": "--dynamic-len",
    "dynamic.stats": "--dynamic-stats",
    "model.vocab_size": "the vocabulary size",
    "model.cell": "--cell",
    "model.hidden": "--hidden",
    "model.embed": "--embed",
    "model.layers": "--layers",
    "model.dropout": "--dropout",
    "model.softmax": "--softmax",
    "model.tie_weights": "--tie-weights",
    "train.optimizer": "--optimizer",
    "train.dtype": "--dtype",
    "train.val_frac": "--val-frac",
    "train.epochs": "--epochs",
    "train.batch_size": "--batch-size",
    "train.seq_len": "--seq-len",
    "train.time_limit": "--time",
    "train.val_every": "--val-every",
    "train.lr": "--lr",
    "train.lr_decay": "--lr-decay",
    "train.clip": "--clip",
    "train.seed": "--seed",
    "train.patience": "--patience",
    "train.state_reset": "--state-reset",
    "sampling.greedy": "--greedy",
    "sampling.temperature": "--temperature",
    "sampling.top_k": "--top-k",
    "sampling.top_p": "--top-p",
    "sampling.min_p": "--min-p",
    "sampling.repeat_penalty": "--repeat-penalty",
    "sampling.repeat_last_n": "--repeat-last-n",
    "sampling.dry_multiplier": "--dry-multiplier",
    "sampling.dry_base": "--dry-base",
    "sampling.dry_allowed_length": "--dry-allowed-length",
    "sampling.dry_last_n": "--dry-last-n",
    "sampling.dry_sequence_breakers": "--dry-sequence-breaker",
    "tokenizer.level": "--level",
    "tokenizer.scheme": "--tokenizer",
    "tokenizer.lines": "--lines",
    "output.force": "--force",
    "threads": "--threads",
}


def flag(field: str) -> str:
    """The flag that sets a library setting (the field itself where no flag does)."""
    return FLAGS.get(field, field)


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
    str,
    typer.Option(
        "-m",
        "--model",
        help="Model file, or a training checkpoint, to use (- reads it from stdin).",
    ),
]
Quiet = Annotated[
    bool, typer.Option("-q", "--quiet", help="Nothing on stderr unless something fails.")
]
Verbose = Annotated[
    bool,
    typer.Option("-v", "--verbose", help="More detail on stderr; tracebacks of unexpected errors."),
]
Force = Annotated[
    bool,
    typer.Option(
        "--force",
        help="Replace an existing output file that is not an rnngen file of the kind written.",
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
Device = Annotated[
    str,
    typer.Option(
        metavar=choices(DEVICES), help="cpu (NumPy), or gpu (CuPy: pip install 'rnngen[gpu]')."
    ),
]


def _use_threads(value: int | None) -> int | None:
    backend.set_threads(value)  # before the command runs: it sets how all of its work runs
    return value


Threads = Annotated[
    int | None,
    typer.Option(
        "-t",
        "--threads",
        min=1,
        metavar="N",
        callback=_use_threads,
        help="CPU cores to use, for matrix products and the optimiser. [default: all]",
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
        help="Positions the cache holds. [default: 1000, or the tuned value]",
        rich_help_panel=ADAPT,
    ),
]
CacheTheta = Annotated[
    float | None,
    typer.Option(
        help="Cache match sharpness, >= 0. [default: 0.2, or the tuned value]",
        rich_help_panel=ADAPT,
    ),
]
CacheLambda = Annotated[
    float | None,
    typer.Option(
        help="Cache weight in [0, 1). [default: 0.2, or the tuned value]", rich_help_panel=ADAPT
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
        help="Dynamic evaluation step, >= 0. [default: 0.0003, or the tuned value]",
        rich_help_panel=ADAPT,
    ),
]
DynamicDecay = Annotated[
    float | None,
    typer.Option(
        help="Pull back to the trained weights, in [0, 1]. [default: 0.001, or the tuned value]",
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


@dataclass(frozen=True)
class AdaptOptions:
    """The adaptation options a command was given (None: not given; see api.adaptation_for)."""

    cache: bool = False
    cache_size: int | None = None
    cache_theta: float | None = None
    cache_lambda: float | None = None
    dynamic: bool = False
    dynamic_lr: float | None = None
    dynamic_decay: float | None = None
    dynamic_len: int | None = None
    dynamic_stats: str | None = None

    def cache_values(self) -> dict:
        return {"size": self.cache_size, "theta": self.cache_theta, "lam": self.cache_lambda}

    def dynamic_values(self) -> dict:
        return {"lr": self.dynamic_lr, "decay": self.dynamic_decay, "length": self.dynamic_len}

    def adaptation(self, model, text_options: TextOptions = STRICT_UTF8):
        """The Adaptation these options ask of `model` (None: none); a --dynamic-stats text is
        read with `text_options`."""
        stats = self.dynamic_stats
        stats_text = None if stats is None else read_text(stats, text_options)
        return api.adaptation_for(
            model, self.cache, self.cache_values(), self.dynamic, self.dynamic_values(), stats_text
        )


ADAPT_OPTIONS = {
    "cache": UseCache,
    "cache_size": CacheSize,
    "cache_theta": CacheTheta,
    "cache_lambda": CacheLambda,
    "dynamic": UseDynamic,
    "dynamic_lr": DynamicLr,
    "dynamic_decay": DynamicDecay,
    "dynamic_len": DynamicLen,
    "dynamic_stats": DynamicStats,
}


def option_group(name: str, group: type, options: dict):
    """A decorator for a command: its parameter `name` (annotated with the dataclass `group`)
    becomes the options (field name -> Annotated option; defaults from the dataclass) in the
    command's signature, which Typer reads, and the command is called with them gathered into
    one `group` object. So a group of options shared by several commands is declared once."""
    defaults = {f.name: f.default for f in fields(group)}

    def decorate(command):
        signature = inspect.signature(command)
        added = [
            inspect.Parameter(field, inspect.Parameter.KEYWORD_ONLY, default=defaults[field],
                              annotation=option)
            for field, option in options.items()
        ]  # fmt: skip
        params = []
        for param in signature.parameters.values():
            if param.name != name:
                params.append(param.replace(kind=inspect.Parameter.KEYWORD_ONLY))
            else:
                params += added

        @functools.wraps(command)
        def run(*args, **kwargs):
            values = {field: kwargs.pop(field) for field in options}
            return command(*args, **kwargs, **{name: group(**values)})

        run.__signature__ = signature.replace(parameters=params)
        run.__annotations__ = {p.name: p.annotation for p in params}
        del run.__wrapped__  # Typer should read the signature above, not the command's
        return run

    return decorate


# The adaptation options of eval and sample (all of them) and score (the cache's).
adaptation_options = option_group("adapt", AdaptOptions, ADAPT_OPTIONS)
cache_options = option_group(
    "adapt", AdaptOptions, {k: v for k, v in ADAPT_OPTIONS.items() if k.startswith("cache")}
)
