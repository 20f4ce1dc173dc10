"""Do the --cache and --dynamic defaults pay on every book? The protocol of issue 22.

Each book in ../shared/corpora is cut at line ends into its first 80% (training), the next 10%
(tuning) and the last 10% (report). On the training part a tanh RNN and a GRU are trained as
`rnngen train PART --time 2m --cell rnn|gru` trains them (one at a time; a model already in
--dir is reused). On the tuning part a grid is searched: the cache (size x theta x lambda, and
off) and dynamic evaluation (lr x decay x length, and off), then the cache again on the best
dynamic run. The report part is scored static, with each method at its defaults, together, and
with the tuned settings. Gains are relative drops in perplexity, in percent. --tune-tokens and
--test-tokens cap the parts (the machine's time).

    nice -n 5 python benchmarks/adapt_books.py --dir /tmp/adapt-books --out \
        benchmarks/results/adapt_books.md
"""

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CORPORA = REPO.parent / "shared" / "corpora"
CELLS = ("rnn", "gru")
CACHE_GRID = {"size": (500, 2000), "theta": (0.1, 0.3, 0.6, 1.0), "lam": (0.05, 0.1, 0.2)}
DYNAMIC_GRID = {"lr": (3e-5, 1e-4, 3e-4, 1e-3), "decay": (1e-4, 1e-3), "length": (50,)}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def cut(text: str, frac: float) -> int:
    c = int(len(text) * frac)
    return text.rfind("\n", 0, c) + 1 or c


def split_book(book: Path, folder: Path) -> None:
    text = book.read_text(encoding="utf-8")
    a, b = cut(text, 0.8), cut(text, 0.9)
    for part, piece in (("train", text[:a]), ("tune", text[a:b]), ("test", text[b:])):
        path = folder / f"{book.stem}.{part}.txt"
        if not path.exists():
            path.write_text(piece, encoding="utf-8")


def train(book: Path, cell: str, folder: Path) -> Path:
    model = folder / f"{book.stem}.{cell}.npz"
    done = folder / f"{book.stem}.{cell}.done"
    if not done.exists():
        log(f"training {book.stem} {cell}")
        cmd = [sys.executable, "-m", "rnngen", "train", str(folder / f"{book.stem}.train.txt"),
               "--time", "2m", "--cell", cell, "-o", str(model), "-q"]  # fmt: skip
        subprocess.run(cmd, check=True, env={**os.environ, "PYTHONPATH": str(REPO)})
        done.touch()
    return model


def search(nll_of, adapt, stats, ids):
    """Tuned (cache, dynamic, both-cache) on ids: the grids above, each method's off included."""
    import numpy as np

    from rnngen.reading.cache import NeuralCache, mix
    from rnngen.reading.tune import _run

    def best_cache(run):
        nll, tops, targets = run
        best = (float(nll.mean()), None)
        for size in CACHE_GRID["size"]:
            cache = NeuralCache(adapt.CacheSettings(size=size), tops.shape[1], tops.dtype)
            logp = np.concatenate([cache.target_log_probs(tops[i:i + 128], targets[i:i + 128],
                                                          CACHE_GRID["theta"])
                                   for i in range(0, len(nll), 128)], axis=1)  # fmt: skip
            for k, theta in enumerate(CACHE_GRID["theta"]):
                for lam in CACHE_GRID["lam"]:
                    loss = float(mix(nll, logp[k], lam).mean())
                    if loss < best[0]:
                        best = (loss, adapt.CacheSettings(size, theta, lam))
        return best

    params, cfg = nll_of
    static = _run(params, cfg, ids)
    cache = best_cache(static)[1]
    dyn, dyn_loss, dyn_run = None, float(static[0].mean()), static
    for lr in DYNAMIC_GRID["lr"]:
        for decay in DYNAMIC_GRID["decay"]:
            for length in DYNAMIC_GRID["length"]:
                s = adapt.DynamicSettings(lr, decay, length)
                run = _run(params, cfg, ids, adapt.DynamicWeights(params, cfg, stats, s))
                if float(run[0].mean()) < dyn_loss:
                    dyn, dyn_loss, dyn_run = s, float(run[0].mean()), run
    both = best_cache(dyn_run)[1]
    return cache, dyn, both


def evaluate(book, cell, model_path, args):
    import numpy as np

    from rnngen import api
    from rnngen.reading import adapt

    model = api.open_model(str(model_path))
    params, stats = api._device_params(model), api._device_params_of(model.stats)

    def ids_of(part, cap):
        text = (args.dir / f"{book.stem}.{part}.txt").read_text(encoding="utf-8")
        return model.vocab.encode(api.tokenize(text, model.tokenizer))[: cap + 1]

    tune_ids, test_ids = ids_of("tune", args.tune_tokens), ids_of("test", args.test_tokens)
    cache, dyn, both = search((params, model.config), adapt, stats, tune_ids)

    def ppl(c, d):
        a = adapt.Adaptation(c, d, stats if d is not None else None)
        return math.exp(float(np.mean(adapt.adapted_token_nll(params, model.config, test_ids, a))))

    c, d = adapt.CacheSettings(), adapt.DynamicSettings()
    out = adapt.DynamicSettings(params="output")
    row = {"book": book.stem, "cell": cell, "tokens": len(test_ids) - 1, "static": ppl(None, None)}
    row.update(cache=ppl(c, None), dynamic=ppl(None, d), both=ppl(c, d), output=ppl(None, out))
    row.update(
        cache_tuned=ppl(cache, None), dynamic_tuned=ppl(None, dyn), both_tuned=ppl(both, dyn)
    )
    row["tuned"] = {"cache": cache and cache.to_dict(), "dynamic": dyn and dyn.to_dict(),
                    "both": both and both.to_dict()}  # fmt: skip
    return row


def table(rows) -> list:
    keys = ("cache", "dynamic", "both", "output", "cache_tuned", "dynamic_tuned", "both_tuned")
    lines = ["| book | cell | tokens | static ppl | " + " | ".join(keys) + " |",
             "|---" * (len(keys) + 4) + "|"]  # fmt: skip
    gains = {k: [] for k in keys}
    for r in rows:
        cells = []
        for k in keys:
            g = 100 * (1 - r[k] / r["static"])
            gains[k].append(g)
            cells.append(f"{g:+.1f}")
        lines.append(f"| {r['book']} | {r['cell']} | {r['tokens']:,} | {r['static']:.1f} | "
                     + " | ".join(cells) + " |")  # fmt: skip
    if rows:
        lines.append("| **mean** | | | | " + " | ".join(
            f"{sum(v) / len(v):+.1f}" for v in gains.values()) + " |")  # fmt: skip
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--dir", type=Path, required=True, help="folder of the parts and models")
    p.add_argument("--books", default=",".join(sorted(b.stem for b in CORPORA.glob("*.txt"))))
    p.add_argument("--cells", default=",".join(CELLS))
    p.add_argument("--tune-tokens", type=int, default=3000)
    p.add_argument("--test-tokens", type=int, default=5000)
    p.add_argument("--no-train", action="store_true", help="only the models already in --dir")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    sys.path.insert(0, str(REPO))
    args.dir.mkdir(parents=True, exist_ok=True)
    rows = []
    results = args.dir / "results.jsonl"
    done = {}
    if results.exists():
        for line in results.read_text().splitlines():
            r = json.loads(line)
            done[(r["book"], r["cell"])] = r
    for name in args.books.split(","):
        book = CORPORA / f"{name}.txt"
        split_book(book, args.dir)
        for cell in args.cells.split(","):
            if (name, cell) in done:
                rows.append(done[(name, cell)])
                continue
            model = args.dir / f"{name}.{cell}.npz"
            if args.no_train and not (args.dir / f"{name}.{cell}.done").exists():
                continue
            model = train(book, cell, args.dir)
            row = evaluate(book, cell, model, args)
            log(json.dumps(row))
            with results.open("a") as f:
                f.write(json.dumps(row) + "\n")
            rows.append(row)
    text = "\n".join(table(rows)) + "\n"
    print(text)
    if args.out is not None:
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
