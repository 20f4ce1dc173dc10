"""The `rnngen` command line: parse options, call `rnngen.api`, print, map errors to exit codes.

Data (generated text, evaluation results) goes to stdout and nothing else does; messages and
progress go to stderr. Expected failures are one line on stderr and a documented exit code.
"""

import contextlib
import json
import os
import sys
from typing import Annotated

import numpy as np
import typer

from . import __version__, api
from .corpus import decode_text, encode_text, read_text
from .errors import EXIT_INTERRUPTED, ConfigError, RnngenError
from .model import CELLS, ModelConfig
from .optim import OPTIMIZERS
from .progress import TrainingDisplay, summary_line
from .storage import load_model, save_corpus
from .tokenize import TokenizerConfig
from .train import TrainConfig

app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    help="Train a word-level recurrent neural network language model on a book, generate text "
    "in its voice, and score texts.\n\n"
    "Exit codes: 0 ok, 1 unexpected error, 2 usage, 65 bad input data or model file, "
    "66 missing input, 73 cannot write output, 130 interrupted.",
)


def err(message: str) -> None:
    print(f"rnngen: {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def errors_to_exit():
    """Turn expected failures into one stderr line and an exit code; stay quiet on a closed pipe."""
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


Level = Annotated[str | None, typer.Option(help="Token level: word (default) or char.")]
Tokenizer = Annotated[
    str | None,
    typer.Option(help="Word splitting: book (default) or whitespace (pre-tokenised text)."),
]
Lowercase = Annotated[bool, typer.Option("--lowercase", help="Fold text to lower case.")]
MaxVocab = Annotated[
    int | None, typer.Option(help="Keep only the N most frequent tokens; others become <unk>.")
]
MinCount = Annotated[int, typer.Option(help="Drop tokens seen fewer than N times.")]
ModelPath = Annotated[str, typer.Option("-m", "--model", help="Model file to use.")]


def tokenizer_config(level, tokenizer, lowercase) -> TokenizerConfig | None:
    if level is None and tokenizer is None and not lowercase:
        return None
    return TokenizerConfig(level or "word", tokenizer or "book", lowercase)


@app.command()
def encode(
    input: Annotated[str, typer.Argument(help="Text file to encode, or - for stdin.")],
    out: Annotated[
        str | None, typer.Option("-o", "--out", help="Output .npz (default: INPUT's name.npz).")
    ] = None,
    level: Level = None,
    tokenizer: Tokenizer = None,
    lowercase: Lowercase = False,
    max_vocab: MaxVocab = None,
    min_count: MinCount = 1,
):
    """Tokenize a text and build its vocabulary, for `rnngen train`.

    Example: rnngen encode book.txt -o book.npz --max-vocab 10000
    """
    with errors_to_exit():
        config = tokenizer_config(level, tokenizer, lowercase) or TokenizerConfig()
        corpus = encode_text(read_text(input), config, max_vocab, min_count)
        if out is None:
            out = (
                "corpus.npz"
                if input == "-"
                else os.path.splitext(os.path.basename(input))[0] + ".npz"
            )
        save_corpus(out, corpus)
        err(
            f"encoded {len(corpus.ids):,} tokens, vocabulary {len(corpus.vocab):,} "
            f"({1 - corpus.unk_rate:.2%} of tokens covered) -> {out}"
        )


@app.command("train")
def train_command(
    input: Annotated[
        str | None,
        typer.Argument(
            help="Text file, - for stdin, or an `rnngen encode` output. "
            "Default: the bundled corpus (Peter Pan)."
        ),
    ] = None,
    out: Annotated[str, typer.Option("-o", "--out", help="Where to save the model.")] = "model.npz",
    valid: Annotated[
        str | None,
        typer.Option(help="Separate validation text (default: the tail of the training text)."),
    ] = None,
    epochs: Annotated[
        int, typer.Option(help="Passes over the training text (at most).")
    ] = TrainConfig.epochs,
    cell: Annotated[str, typer.Option(help=f"Recurrent cell: {', '.join(CELLS)}.")] = "rnn",
    hidden: Annotated[int, typer.Option(help="Hidden state size H.")] = ModelConfig.hidden,
    embed: Annotated[int, typer.Option(help="Word vector size E.")] = ModelConfig.embed,
    layers: Annotated[int, typer.Option(help="Stacked recurrent layers.")] = ModelConfig.layers,
    dropout: Annotated[
        float, typer.Option(help="Dropout on non-recurrent connections.")
    ] = ModelConfig.dropout,
    tie_weights: Annotated[
        bool, typer.Option("--tie-weights", help="Output layer shares the embedding (E = H).")
    ] = False,
    softmax: Annotated[
        str, typer.Option(help="full, or class: Mikolov's class-factorised softmax (faster).")
    ] = "full",
    classes: Annotated[
        int | None, typer.Option(help="Word classes for --softmax class (default: sqrt(V)).")
    ] = None,
    seq_len: Annotated[
        int, typer.Option(help="Steps of backpropagation through time.")
    ] = TrainConfig.seq_len,
    batch_size: Annotated[
        int, typer.Option(help="Parallel streams per batch.")
    ] = TrainConfig.batch_size,
    optimizer: Annotated[
        str, typer.Option(help=f"{', '.join(OPTIMIZERS)}.")
    ] = TrainConfig.optimizer,
    lr: Annotated[
        float | None,
        typer.Option(help="Learning rate (default: one that suits the optimizer and cell)."),
    ] = None,
    lr_decay: Annotated[
        float, typer.Option(help="Divide the learning rate by this after an epoch without gain.")
    ] = TrainConfig.lr_decay,
    patience: Annotated[
        int, typer.Option(help="Stop after this many epochs without gain (0: never).")
    ] = TrainConfig.patience,
    clip: Annotated[float, typer.Option(help="Maximum gradient norm (0: off).")] = TrainConfig.clip,
    val_frac: Annotated[
        float, typer.Option(help="Share of the text, from its end, held out for validation.")
    ] = TrainConfig.val_frac,
    seed: Annotated[
        int, typer.Option(help="Random seed: same seed, same model.")
    ] = TrainConfig.seed,
    dtype: Annotated[str, typer.Option(help="float32 (fast) or float64.")] = TrainConfig.dtype,
    level: Level = None,
    tokenizer: Tokenizer = None,
    lowercase: Lowercase = False,
    max_vocab: MaxVocab = None,
    min_count: MinCount = 1,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="No progress or summary.")] = False,
):
    """Train a model and save the one with the best validation perplexity.

    Example: rnngen train book.txt -o book.npz --cell lstm --layers 2 --dropout 0.5
    """
    with errors_to_exit():
        corpus = api.training_corpus(
            input, tokenizer_config(level, tokenizer, lowercase), max_vocab, min_count
        )
        val_ids = None if valid is None else api.encode_for(corpus, read_text(valid))
        model_cfg = api.model_config(
            corpus.vocab,
            softmax,
            classes,
            embed=embed,
            hidden=hidden,
            layers=layers,
            cell=cell,
            dropout=dropout,
            tie_weights=tie_weights,
        )
        train_cfg = TrainConfig(
            epochs=epochs,
            batch_size=batch_size,
            seq_len=seq_len,
            optimizer=optimizer,
            lr=lr,
            lr_decay=lr_decay,
            patience=patience,
            clip=clip,
            val_frac=val_frac,
            seed=seed,
            dtype=dtype,
        )
        header = (
            f"{model_cfg.layers}x{model_cfg.hidden} {model_cfg.cell}, "
            f"vocabulary {len(corpus.vocab):,}"
        )
        with TrainingDisplay(header, quiet) as display:
            model = api.train_model(corpus, model_cfg, train_cfg, out, val_ids, display)
            display.message(summary_line(out, model.history))


def _stdin_text() -> str | None:
    """The start text from a pipe, or None when stdin is a terminal or empty."""
    if sys.stdin is None or sys.stdin.isatty():
        return None
    data = sys.stdin.buffer.read()
    return decode_text(data, "standard input").strip() if data.strip() else None


@app.command()
def sample(
    model: ModelPath = "model.npz",
    start: Annotated[
        str | None,
        typer.Option(
            help="Start text (one or more words). Default: piped stdin, else a random word."
        ),
    ] = None,
    length: Annotated[int, typer.Option(help="Tokens to generate.")] = 200,
    temperature: Annotated[float, typer.Option(help="Below 1: safer; above 1: wilder.")] = 1.0,
    top_k: Annotated[
        int, typer.Option(help="Sample only among the k likeliest tokens (0: all).")
    ] = 0,
    greedy: Annotated[
        bool, typer.Option("--greedy", help="Always take the likeliest token.")
    ] = False,
    seed: Annotated[int | None, typer.Option(help="Random seed: same seed, same text.")] = None,
):
    """Generate text that continues a start text, printed to stdout.

    Example: rnngen sample --start games --length 200 --temperature 0.8
    """
    with errors_to_exit():
        if length < 0 or temperature < 0 or top_k < 0:
            raise ConfigError("--length, --temperature and --top-k must not be negative")
        trained = load_model(model)
        if start is None:
            start = _stdin_text()
        text = api.sample_text(
            trained, start, length, np.random.default_rng(seed), temperature, top_k, greedy
        )
        sys.stdout.write(text.rstrip("\n") + "\n")
        sys.stdout.flush()


@app.command("eval")
def eval_command(
    input: Annotated[str, typer.Argument(help="Text file to score, or - for stdin.")],
    model: ModelPath = "model.npz",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
):
    """Score a text: token count, out-of-vocabulary rate, cross-entropy and perplexity.

    Example: rnngen eval held_out.txt -m model.npz --json
    """
    with errors_to_exit():
        trained = load_model(model)
        report = api.evaluate_text(trained, read_text(input))
        values = report.to_dict()
        if as_json:
            print(json.dumps(values))
            return
        print(f"tokens         {values['tokens']}")
        print(f"oov rate       {values['oov_rate']:.4f}")
        print(f"cross-entropy  {values['cross_entropy']:.4f} nats/token")
        print(f"bits           {values['bits_per_token']:.4f} bits/token")
        print(f"perplexity     {values['perplexity']:.2f}")


def run() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        err("interrupted")
        sys.exit(EXIT_INTERRUPTED)


if __name__ == "__main__":
    run()
