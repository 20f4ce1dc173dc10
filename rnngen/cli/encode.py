"""`rnngen encode`: tokenize a text and build its vocabulary."""

import json
import os
from typing import Annotated

import typer

from ..files.storage import save_corpus
from ..text.corpus import TextOptions, encode_file
from ..text.tokenize import TokenizerConfig
from . import reports
from .common import Messages, Output, errors_to_exit, tokenizer_config
from .options import (
    Encoding,
    Errors,
    Force,
    Level,
    Lines,
    Lowercase,
    MaxVocab,
    MinCount,
    Quiet,
    Tokenizer,
    Verbose,
)


def encode(
    input: Annotated[str, typer.Argument(help="Text file to encode, or - for stdin.")],
    out: Annotated[
        str | None,
        typer.Option(
            "-o", "--out", help="Output .npz file, or - for stdout. [default: INPUT's name.npz]"
        ),
    ] = None,
    force: Force = False,
    level: Level = None,
    tokenizer: Tokenizer = None,
    lowercase: Lowercase = False,
    lines: Lines = None,
    max_vocab: MaxVocab = None,
    min_count: MinCount = 1,
    encoding: Encoding = "utf-8",
    errors: Errors = "strict",
    quiet: Quiet = False,
    verbose: Verbose = False,
):
    """Tokenize a text and build its vocabulary, for `rnngen train`. Any size of input: it is
    read in pieces, and memory holds only the vocabulary and the token ids.

    Example: rnngen encode book.txt -o book.npz --max-vocab 10000
    """
    with errors_to_exit(verbose):
        say = Messages(quiet, verbose)
        config = tokenizer_config(level, tokenizer, lowercase, lines) or TokenizerConfig()
        if out is None:
            out = (
                "corpus.npz"
                if input == "-"
                else os.path.splitext(os.path.basename(input))[0] + ".npz"
            )
        target = Output(out, "corpus", [input], force)  # checked before the work
        corpus = encode_file(input, config, max_vocab, min_count, TextOptions(encoding, errors))
        save_corpus(target.path, corpus)
        target.send()
        say.say(
            f"encoded {len(corpus.ids):,} tokens, vocabulary {len(corpus.vocab):,} "
            f"({1 - corpus.unk_rate:.2%} of tokens covered) -> {out}"
        )
        vocab = corpus.vocab
        say.detail(f"tokenizer: {json.dumps(corpus.tokenizer.to_dict(), ensure_ascii=False)}")
        top = vocab.tokens[vocab.n_specials : vocab.n_specials + 20]
        say.detail("most frequent: " + " ".join(reports.show_token(t) for t in top))
