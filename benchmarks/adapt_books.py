"""Do the untuned --cache and --dynamic defaults help on every book, at several model sizes?

For each book in ../shared/corpora (War and Peace excepted: adapt.py covers it) and each size, a
model is trained as `rnngen train` trains it (rnngen.api.train_model: the default tokenizer and
validation split, the gradient statistics stored at the end) on the first 90% of the book (of
its first --max-chars characters), and the last 10% is scored static, with the default cache,
and with default dynamic evaluation (the code of `rnngen eval --cache` / `--dynamic` without
values).

    nice -n 5 python benchmarks/adapt_books.py --out benchmarks/results/adapt_books.md
"""

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CORPORA = REPO.parent / "shared" / "corpora"
BOOKS = ("peter_pan.txt", "alice_in_wonderland.txt", "tiny_shakespeare.txt")
SIZES = {
    "rnn 1x256 (train's defaults)": {"cell": "rnn", "hidden": 256, "embed": 128},
    "lstm 1x128": {"cell": "lstm", "hidden": 128, "embed": 128},
}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--max-chars", type=int, default=400_000, help="use each book's start only")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    sys.path.insert(0, str(REPO))
    import numpy as np

    from rnngen import api
    from rnngen.reading import adapt
    from rnngen.text.corpus import read_text
    from rnngen.training.train import TrainConfig

    rows = []
    folder = Path(tempfile.mkdtemp(prefix="adapt-books-"))
    for book in BOOKS:
        text = read_text(str(CORPORA / book))[: args.max_chars]
        cut = int(len(text) * 0.9)
        cut = text.rfind("\n", 0, cut) + 1 or cut
        train_path = folder / "train.txt"
        train_path.write_text(text[:cut], encoding="utf-8")
        held = text[cut:]
        corpus = api.training_corpus(str(train_path))
        for size, settings in SIZES.items():
            model_cfg = api.model_config(corpus.vocab, **settings)
            out = folder / "model.npz"
            t0 = time.perf_counter()
            outcome = api.train_model(corpus, model_cfg, TrainConfig(epochs=args.epochs), out)
            model = outcome.model
            log(f"{book} {size}: trained in {time.perf_counter() - t0:.0f} s")
            row = [book, size]
            ids = model.vocab.encode(api.tokenize(held, model.tokenizer))
            params = api._device_params(model)
            stats = api._device_params_of(model.stats)
            ppls = []
            for adaptation in (
                adapt.Adaptation(),
                adapt.Adaptation(adapt.CacheSettings()),
                adapt.Adaptation(None, adapt.DynamicSettings(), stats),
            ):
                nll = adapt.adapted_token_nll(params, model.config, ids, adaptation)
                ppls.append(math.exp(float(np.mean(nll))))
            row += [f"{len(ids) - 1:,}", f"{ppls[0]:.1f}"]
            row += [f"{x:.1f} ({x / ppls[0] - 1:+.1%})" for x in ppls[1:]]
            log("  " + " | ".join(row))
            rows.append(row)
    lines = [
        "# Untuned --cache and --dynamic defaults on every book",
        "",
        f"Each book (its first {args.max_chars:,} characters at most): the first 90% (cut at a "
        f"line end) trained for {args.epochs} epochs with "
        "`rnngen train`'s settings (its own validation tail, dropout 0.3, Adam), the last 10% "
        f"scored as one stream. Defaults: cache {adapt.CacheSettings().to_dict()}, dynamic "
        f"{adapt.DynamicSettings().to_dict()}. Threads: {args.threads}; the machine was shared.",
        "",
        "| book | model | tokens scored | static ppl | --cache | --dynamic |",
        "|---|---|---|---|---|---|",
        *("| " + " | ".join(r) + " |" for r in rows),
        "",
        "Command: `nice -n 5 python benchmarks/adapt_books.py --out "
        "benchmarks/results/adapt_books.md`.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out is not None:
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
