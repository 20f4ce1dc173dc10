"""Adapting to the text read: neural cache and dynamic evaluation against static scoring.

Data: quality.py's War and Peace split (rnngen's default word tokenizer, 90/5/5 contiguous,
vocabulary the 10,000 most frequent train words plus <unk>). Models: quality.py's `lstm` (2x200)
and `rnn` (1x256), trained by adapt_models.py (default optimiser and learning rate, dropout 0,
--epochs epochs; reused from --dir when there). The settings are searched with rnngen.tune on the
first --tune-tokens tokens of the validation part and reported on the whole test part, one stream:
static, cache, dynamic, both, and the untuned defaults; then Alice in Wonderland scored by the
same War and Peace models with the same settings. Times are each scoring pass's wall time over
that of a static pass of the same text run just before it, in this process (the machine may be
shared: compare ratios, not seconds).

    nice -n 5 python benchmarks/adapt.py --dir /tmp/adapt-models --out benchmarks/results/adapt.md
"""

import argparse
import math
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
ALICE = REPO.parent / "shared" / "corpora" / "alice_in_wonderland.txt"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--dir", type=Path, required=True, help="folder of the trained models")
    p.add_argument("--epochs", type=int, default=2, help="training epochs, if models are trained")
    p.add_argument("--configs", default="lstm,rnn")
    p.add_argument("--tune-tokens", type=int, default=8000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(HERE))
    import numpy as np
    from adapt_models import split_corpus, train_models

    from rnngen.api import device_params
    from rnngen.files.storage import load_model
    from rnngen.reading import adapt
    from rnngen.reading.reader import Reader
    from rnngen.reading.tune import tune
    from rnngen.text.corpus import read_text
    from rnngen.text.tokenize import tokenize
    from rnngen.training.stats import gradient_stats

    names = args.configs.split(",")
    paths = train_models(args.dir, names, args.epochs)
    vocab, tok_cfg, ids = split_corpus(REPO.parent / "shared" / "corpora" / "war_and_peace.txt")
    alice = vocab.encode(tokenize(read_text(str(ALICE)), tok_cfg))
    lines = [
        "# Neural cache and dynamic evaluation on War and Peace",
        "",
        f"Test part: {len(ids['test']) - 1:,} tokens scored; Alice in Wonderland: "
        f"{len(alice) - 1:,} tokens ({float((alice == 0).mean()):.1%} outside the War and Peace "
        f"vocabulary). Settings tuned with `rnngen.tune` on the first {args.tune_tokens:,} "
        f"tokens of the validation part. Threads: {args.threads}. The machine was shared with "
        "other work: each time is a ratio to a static pass of the same text run just before it.",
        "",
    ]
    for name in names:
        model = load_model(paths[name])
        params, cfg = device_params(model), model.config
        stats = model.stats
        if stats is None:  # as `rnngen train` computes them at the end of training
            t0 = time.perf_counter()
            stats = gradient_stats(params, cfg, ids["train"])
            log(f"{name}: gradient statistics in {time.perf_counter() - t0:.0f} s")
        log(f"{name}: tuning on {args.tune_tokens:,} validation tokens")
        t0 = time.perf_counter()
        found = tune(
            params,
            cfg,
            ids["valid"][: args.tune_tokens + 1],
            stats,
            lambda d, t, w, name=name: log(f"  {name} tune {d}/{t} {w}"),
        )
        tune_seconds = time.perf_counter() - t0
        runs = {
            "static": adapt.Adaptation(),
            "cache (tuned)": adapt.Adaptation(found.cache),
            "dynamic (tuned)": adapt.Adaptation(None, found.dynamic, stats),
            "both (tuned)": adapt.Adaptation(found.both_cache, found.dynamic, stats),
            "cache (defaults)": adapt.Adaptation(adapt.CacheSettings()),
            "dynamic (defaults)": adapt.Adaptation(None, adapt.DynamicSettings(), stats),
        }
        lines += [
            f"## {name}: {cfg.layers}x{cfg.hidden} {cfg.cell}, embed {cfg.embed}, "
            f"{model.history.get('epochs')} epochs (best validation perplexity "
            f"{model.history.get('best_val_ppl', float('nan')):.1f})",
            "",
            f"Tuned ({tune_seconds:.0f} s): cache {found.cache.to_dict()}; dynamic "
            f"{found.dynamic.to_dict()}; cache with dynamic {found.both_cache.to_dict()}. "
            f"Validation perplexities: static {found.static:.1f}, cache {found.cache_ppl:.1f}, "
            f"dynamic {found.dynamic_ppl:.1f}, both {found.both_ppl:.1f}.",
            "",
            "| scoring | War and Peace test ppl | vs static | time vs static "
            "| Alice ppl | vs static | time vs static |",
            "|---|---|---|---|---|---|---|",
        ]
        base = {}
        for label, adaptation in runs.items():
            row = [label]
            for text_name, text in (("test", ids["test"]), ("alice", alice)):
                # a static pass just before each adapted one, as the reference for its time
                t0 = time.perf_counter()
                static = Reader(params, cfg, adapt.Adaptation()).read(text)
                s0 = time.perf_counter() - t0
                t0 = time.perf_counter()
                nll = Reader(params, cfg, adaptation).read(text)
                seconds = time.perf_counter() - t0
                ppl = math.exp(float(np.mean(nll)))
                if label == "static":
                    base[text_name] = math.exp(float(np.mean(static)))
                ppl0 = base[text_name]
                row += [f"{ppl:.1f}", f"{ppl / ppl0 - 1:+.1%}", f"{seconds / s0:.2f}x"]
                log(f"  {name} {label} {text_name}: ppl {ppl:.1f}, {seconds:.1f} s")
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    lines += [
        f"Defaults: cache {adapt.CacheSettings().to_dict()}, dynamic "
        f"{adapt.DynamicSettings().to_dict()}.",
        "",
        "Command: `nice -n 5 python benchmarks/adapt.py --dir DIR --out "
        "benchmarks/results/adapt.md` (models trained by `benchmarks/adapt_models.py --dir DIR "
        f"--epochs {args.epochs}`).",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out is not None:
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
