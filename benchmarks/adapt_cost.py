"""What dynamic evaluation costs: each method's scoring time over a static pass of the same text.

Four models at a 10,000-word vocabulary (quality.py's War and Peace vocabulary): tanh RNN 1x256
and LSTM 2x200, each tied and untied. Their weights are freshly initialised and their gradient
statistics taken on 5,000 training tokens: the time of a pass does not depend on what the weights
learnt. For each model, --rounds times: a static pass (`rnngen eval`'s code, chunks of 128), then
each dynamic method on the same --tokens tokens of the test part, all in this process on --threads
threads; the table gives the median of each method's time over the static pass of its round.
With --old, the dynamic.py of commit 3a2aae3 (copied to rnngen/reading/_old_dynamic.py) as well.

    python benchmarks/adapt_cost.py --out benchmarks/results/adapt_cost_models.md
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
MODELS = {
    "rnn 1x256 tied": {"cell": "rnn", "hidden": 256, "embed": 256, "tie_weights": True},
    "rnn 1x256 untied": {"cell": "rnn", "hidden": 256, "embed": 256, "tie_weights": False},
    "lstm 2x200 tied": {"cell": "lstm", "layers": 2, "hidden": 200, "embed": 200,
                        "tie_weights": True},
    "lstm 2x200 untied": {"cell": "lstm", "layers": 2, "hidden": 200, "embed": 200,
                          "tie_weights": False},
}  # fmt: skip


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def methods(adapt, stats, old):
    """label -> a function (params, cfg, ids) -> per-token NLL."""
    from rnngen.reading.reader import Reader

    out = {}
    for params in ("all", "output"):
        settings = adapt.DynamicSettings(params=params)
        out[f"dynamic, params {params}"] = lambda p, c, ids, s=settings: Reader(
            p, c, adapt.Adaptation(None, s, stats)
        ).read(ids)
    settings = adapt.DynamicSettings()
    out["dynamic, no guard"] = lambda p, c, ids: run_plain(adapt, p, c, ids, settings, stats)
    if old:
        from rnngen.reading import _old_dynamic

        out["dynamic, before (3a2aae3)"] = lambda p, c, ids: run_plain(
            adapt, p, c, ids, settings, stats, _old_dynamic.DynamicWeights
        )
    return out


def run_plain(adapt, params, cfg, ids, settings, stats, cls=None):
    from rnngen.reading.reader import Reader

    if cls is None:
        weights = adapt.DynamicWeights(params, cfg, stats, settings, margin=None)
    else:
        weights = cls(params, cfg, stats, settings)
    Reader(params, cfg, weights=weights).read(ids)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--tokens", type=int, default=3000)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--old", action="store_true")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(HERE))
    import numpy as np
    from adapt_models import split_corpus

    from rnngen.core.model import ModelConfig, init_params, join_output
    from rnngen.reading import adapt
    from rnngen.reading.reader import Reader
    from rnngen.training.stats import gradient_stats

    vocab, _, ids = split_corpus(REPO.parent / "shared" / "corpora" / "war_and_peace.txt")
    text = ids["test"][: args.tokens + 1]
    rows = []
    for name in args.models.split(","):
        cfg = ModelConfig(len(vocab), dropout=0.0, **MODELS[name])
        params = join_output(init_params(cfg, np.random.default_rng(0)))
        stats = gradient_stats(params, cfg, ids["train"][:5000])
        ratios = {}
        for r in range(args.rounds):
            static = timed(lambda p=params, c=cfg: Reader(p, c).read(text))
            for label, fn in methods(adapt, stats, args.old).items():
                seconds = timed(lambda fn=fn, p=params, c=cfg: fn(p, c, text))
                ratios.setdefault(label, []).append(seconds / static)
                log(f"{name} round {r}: {label} {seconds:.2f} s, static {static:.2f} s")
        rows.append([name] + [f"{statistics.median(v):.2f}x" for v in ratios.values()])
    labels = list(ratios)
    lines = [
        f"| model | {' | '.join(labels)} |",
        "|---" * (len(labels) + 1) + "|",
        *("| " + " | ".join(r) + " |" for r in rows),
        "",
        f"{args.tokens:,} tokens of the War and Peace test part, vocabulary {len(vocab):,}, "
        f"{args.threads} threads, median of {args.rounds} rounds; the machine was shared.",
    ]
    text_out = "\n".join(lines) + "\n"
    print(text_out)
    if args.out is not None:
        args.out.write_text(text_out, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
