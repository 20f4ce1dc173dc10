"""Do the --cache and --dynamic defaults pay on every book? The protocol of issue 22.

Each book in ../shared/corpora is cut at line ends into its first 80% (training), the next 10%
(tuning) and the last 10% (report). On the training part a tanh RNN and a GRU are trained as
`rnngen train PART --time 2m --cell rnn|gru` trains them (one at a time; a model already in
--dir is reused; --train-only stops there). On the tuning part a grid is searched: the cache
(size x theta x lambda, and off), dynamic evaluation (lr x decay, and off), and the best pair of
the two. The report part is scored static, with the tuned settings, and with every candidate
default (--candidates: the cache and dynamic evaluation alone, and each pair together). Every
setting of the cache costs no run of the model: it is mixed into the scores of the run it sits
on (as `rnngen tune` does), so a row costs one run per dynamic setting. Gains are relative drops
in perplexity, in percent. --tune-tokens and --test-tokens cap the parts (the machine's time).
Rows go to DIR/rows.jsonl and are reused; the tables are made from them, the new defaults being
rnngen/reading/settings.py's and the old ones the first cache and dynamic candidates.

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
sys.path.insert(0, str(REPO))
from rnngen.reading.settings import CacheSettings, DynamicSettings  # noqa: E402

CACHE_GRID = {"size": (500, 1000, 2000), "theta": (0.1, 0.2, 0.3, 0.6, 1.0),
              "lam": (0.05, 0.1, 0.15, 0.2, 0.3)}  # fmt: skip
DYNAMIC_GRID = {"lr": (3e-5, 1e-4, 3e-4, 1e-3), "decay": (1e-4, 3e-4, 1e-3), "length": (50,)}
# the defaults before issue 22 first, then what the first rows suggested
CANDIDATES = (
    "cache:2000:1:0.1,cache:2000:0.3:0.1,cache:2000:0.3:0.15,cache:2000:0.3:0.2,"
    "cache:2000:0.1:0.2,cache:2000:0.2:0.15,cache:1000:0.3:0.15,cache:2000:0.1:0.15,"
    "cache:2000:0.2:0.2,cache:2000:0.1:0.3,"
    "dynamic:0.0001:0.0003,dynamic:0.0003:0.001,dynamic:0.0003:0.0003,dynamic:0.0003:0.0001"
)


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


def cache_losses(run, settings: list, dtype) -> dict:
    """Mean -log p of one Reader run (tune._read) mixed with each cache setting (lambda 0: off);
    one product with the cache per window size, the thetas sharing it."""
    import numpy as np

    from rnngen.core import backend
    from rnngen.reading.cache import NeuralCache, mix

    nll, tops, targets = run
    out = {}
    for size in sorted({c.size for c in settings}):
        thetas = sorted({c.theta for c in settings if c.size == size})
        cache = NeuralCache(CacheSettings(size=size), tops.shape[1], dtype)
        rows = [backend.to_numpy(cache.target_log_probs(tops[i:i + 128], targets[i:i + 128],
                                                        thetas))
                for i in range(0, len(nll), 128)]  # fmt: skip
        logp = np.concatenate(rows, axis=1)  # (thetas, n)
        for c in settings:
            if c.size == size:
                out[c] = float(mix(nll, logp[thetas.index(c.theta)], c.lam).mean())
    return out


def cache_grid() -> list:
    return [CacheSettings(size, theta, lam) for size in CACHE_GRID["size"]
            for theta in CACHE_GRID["theta"] for lam in CACHE_GRID["lam"]]  # fmt: skip


def dynamic_grid() -> list:
    return [DynamicSettings(lr, decay, length) for lr in DYNAMIC_GRID["lr"]
            for decay in DYNAMIC_GRID["decay"] for length in DYNAMIC_GRID["length"]]  # fmt: skip


def label(c, d) -> str:
    """A (cache, dynamic) pair's name in results.jsonl: "c2000/1/0.1+d0.0001/0.0003/50"."""
    cs = "-" if c is None else f"c{c.size}/{c.theta:g}/{c.lam:g}"
    return cs + "+" + ("-" if d is None else f"d{d.lr:g}/{d.decay:g}/{d.length}")


def read_all(model, ids, stats, pairs: list) -> dict:
    """Mean -log p on ids of each (cache or None, dynamic or None) pair: one Reader run per
    dynamic setting (None: static), every cache setting mixed into it."""
    from rnngen.reading.settings import Adaptation
    from rnngen.reading.texts import device_params
    from rnngen.reading.tune import _read

    params = device_params(model)
    out = {}
    for d in dict.fromkeys(d for _, d in pairs):
        run = _read(params, model.config, ids, Adaptation(None, d, None if d is None else stats))
        out[(None, d)] = float(run[0].mean())
        caches = [c for c, d2 in pairs if d2 == d and c is not None]
        for c, loss in cache_losses(run, caches, params["embed"].dtype).items():
            out[(c, d)] = loss
    return out


def search(model, ids, stats) -> dict:
    """Tuned settings on ids: the best cache alone, dynamic alone, and pair (each may be off)."""
    grid = [(c, d) for d in [None, *dynamic_grid()] for c in [None, *cache_grid()]]
    loss = read_all(model, ids, stats, grid)
    best = lambda pairs: min(pairs, key=loss.__getitem__)  # noqa: E731
    return {"cache": best([(c, None) for c in [None, *cache_grid()]]),
            "dynamic": best([(None, d) for d in [None, *dynamic_grid()]]),
            "both": best(grid)}  # fmt: skip


def evaluate(book, cell, model_path, args):
    from rnngen import api
    from rnngen.reading.texts import device_arrays, text_ids

    model = api.open_model(str(model_path))
    stats = device_arrays(model.stats)

    def ids_of(part, cap):
        return text_ids(model, (args.dir / f"{book.stem}.{part}.txt").read_text("utf-8"))[: cap + 1]

    t0 = time.perf_counter()
    tuned = search(model, ids_of("tune", args.tune_tokens), stats)
    t1 = time.perf_counter()
    pairs = [(None, None), *tuned.values()]
    for c in dict.fromkeys([*args.cache_candidates, *cache_grid()]):  # mixes: no model run
        for d in args.dynamic_candidates:
            pairs += [(c, None), (None, d), (c, d)]
    test_ids = ids_of("test", args.test_tokens)
    loss = read_all(model, test_ids, stats, list(dict.fromkeys(pairs)))
    row = {"book": book.stem, "cell": cell, "tokens": len(test_ids) - 1,
           "seconds": {"tune": round(t1 - t0), "test": round(time.perf_counter() - t1)},
           "tuned": {k: label(*v) for k, v in tuned.items()},
           "ppl": {label(*k): math.exp(v) for k, v in loss.items()}}  # fmt: skip
    return row


def parse_candidates(text: str) -> tuple:
    """The (cache settings, dynamic settings) of "cache:SIZE:THETA:LAMBDA,dynamic:LR:DECAY"."""
    caches, dyns = [], []
    for item in filter(None, text.split(",")):
        kind, *values = item.split(":")
        if kind == "cache":
            caches.append(CacheSettings(int(values[0]), float(values[1]), float(values[2])))
        else:
            dyns.append(DynamicSettings(float(values[0]), float(values[1])))
    return caches, dyns


def gains(row, c, d) -> dict:
    """Gains in percent on one row of the pair's cache alone, dynamic alone and both together;
    None where the row lacks that setting."""
    ppl = row["ppl"]

    def g(key):
        return None if key not in ppl else 100 * (1 - ppl[key] / ppl["-+-"])

    return {"cache": g(label(c, None)), "dynamic": g(label(None, d)), "both": g(label(c, d))}


def tuned_gains(row) -> dict:
    return {k: 100 * (1 - row["ppl"][v] / row["ppl"]["-+-"]) for k, v in row["tuned"].items()}


def misses(row, c, d) -> list:
    """The floors of issue 22 this row misses at (c, d): each method lowers perplexity; each is
    within 2 points of tuning; both together never worse than either alone."""
    at, best = gains(row, c, d), tuned_gains(row)
    out = [f"{k} {at[k]:+.1f}" for k in ("cache", "dynamic") if at[k] <= 0]
    out += [f"{k} {best[k] - at[k]:.1f} below tuned" for k in at if best[k] - at[k] > 2]
    worse = max(at["cache"], at["dynamic"]) - at["both"]
    return out + ([f"both {worse:.1f} below one alone"] if worse > 0 else [])


def fmt(x) -> str:
    return "n/a" if x is None else f"{x:+.1f}"


def table(rows, old: tuple, new: tuple) -> list:
    """Per book and cell: static perplexity, then gains at the old defaults, tuned, and at the
    new defaults (cache, dynamic, both each), and the floors the new defaults miss."""
    head = [
        "book",
        "cell",
        "tokens",
        "static ppl",
        "old cache",
        "old dynamic",
        "old both",
        "tuned cache",
        "tuned dynamic",
        "tuned both",
        "cache",
        "dynamic",
        "both",
        "misses",
    ]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    cols = []
    for r in rows:
        nums = [*gains(r, *old).values(), *tuned_gains(r).values(), *gains(r, *new).values()]
        cols.append(nums)
        miss = "; ".join(misses(r, *new)) if None not in nums else "n/a"
        lines.append(f"| {r['book']} | {r['cell']} | {r['tokens']:,} | {r['ppl']['-+-']:.1f} | "
                     + " | ".join(map(fmt, nums)) + f" | {miss or '-'} |")  # fmt: skip
    if rows:
        means = [sum(v) / len(v) if None not in v else None for v in zip(*cols, strict=True)]
        lines.append("| **mean** | | | | " + " | ".join(map(fmt, means)) + " | |")
    return lines


def candidates(rows, caches, dyns, best=10) -> list:
    """Each candidate pair, then the best others of the cache grid (by rows meeting every floor,
    then mean gain together): mean gains, and on how many rows each method's floors hold."""
    head = ["cache", "dynamic", "mean cache", "mean dynamic", "mean both", "cache floors",
            "dynamic floors", "both floors", "all floors"]  # fmt: skip
    entries = []
    for c in dict.fromkeys([*caches, *cache_grid()]):
        for d in dyns:
            g = [gains(r, c, d) for r in rows]
            if any(None in x.values() for x in g):  # a row measured without this candidate
                continue
            means = [sum(x[k] for x in g) / len(g) for k in ("cache", "dynamic", "both")]
            miss = [" ".join(misses(r, c, d)) for r in rows]
            ok = [sum(k not in m for m in miss) for k in ("cache", "dynamic", "both")]
            ok.append(sum(not m for m in miss))
            entries.append((c in caches, ok[3], means[2], c, d, means, ok))
    listed = [e for e in entries if e[0]]
    others = sorted((e for e in entries if not e[0]), key=lambda e: (-e[1], -e[2]))[:best]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for *_, c, d, means, ok in listed + others:
        lines.append(f"| {label(c, None)[:-2]} | {label(None, d)[2:]} | "
                     + " | ".join(map(fmt, means)) + " | "
                     + " | ".join(f"{n} of {len(rows)}" for n in ok) + " |")  # fmt: skip
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--dir", type=Path, required=True, help="folder of the parts and models")
    p.add_argument("--books", default=",".join(sorted(b.stem for b in CORPORA.glob("*.txt"))))
    p.add_argument("--cells", default=",".join(CELLS))
    p.add_argument("--tune-tokens", type=int, default=3000)
    p.add_argument("--test-tokens", type=int, default=5000)
    p.add_argument("--no-train", action="store_true", help="only the models already in --dir")
    p.add_argument("--train-only", action="store_true", help="train the missing models, no rows")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--candidates",
        default=CANDIDATES,
        help="default settings to measure: "
        "cache:SIZE:THETA:LAMBDA and dynamic:LR:DECAY, comma-separated",
    )
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    args.cache_candidates, args.dynamic_candidates = parse_candidates(args.candidates)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    args.dir.mkdir(parents=True, exist_ok=True)
    rows = []
    results = args.dir / "rows.jsonl"
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
            if args.train_only:
                continue
            row = evaluate(book, cell, model, args)
            log(json.dumps(row))
            with results.open("a") as f:
                f.write(json.dumps(row) + "\n")
            rows.append(row)
    old = (args.cache_candidates[0], args.dynamic_candidates[0])
    lines = table(rows, old, (CacheSettings(), DynamicSettings()))
    lines += ["", *candidates(rows, args.cache_candidates, args.dynamic_candidates)]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out is not None:
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
