"""Recipe search: what a wall-clock budget buys under different training recipes, on the data of
time_to_quality.py (War and Peace, 90/5/5, 10,000 words + <unk>), so a default is kept only
where it measurably wins in the time a user gives it.

Each run is `rnngen.train.train` with `TrainConfig(time_limit=B)` (what `rnngen train --time B`
runs; with --epochs N, `TrainConfig(epochs=N)` instead) and the settings of one recipe over the
cell's defaults, scored on the test part by one stream. A recipe is `name:key=value,key=value`,
the keys being fields of ModelConfig (cell, hidden, embed, layers, dropout, tie_weights) or
TrainConfig (optimizer, lr, clip, batch_size, seq_len, state_reset, ...). Runs follow one
another; each row says the load it saw. Note: with the model's own defaults (ModelConfig), not
train's: give embed and tie_weights explicitly.

    python benchmarks/recipe_search.py --budget 5 --jsonl runs.jsonl \\
        'gru-adam:cell=gru' 'gru-tied:cell=gru,tie_weights=1' 'lstm-sgd:cell=lstm,layers=2,\\
        hidden=200,embed=200,optimizer=sgd'
"""

import argparse
import json
import math
import os
import sys
import time
from dataclasses import fields
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "war_and_peace.txt"


def parse_recipe(text: str) -> tuple[str, dict]:
    name, _, body = text.partition(":")
    settings = {}
    for item in filter(None, body.split(",")):
        key, _, value = item.partition("=")
        settings[key.strip()] = value.strip()
    return name, settings


def convert(value: str, like):
    """A recipe's string value as the type of the field's default (None defaults: float)."""
    if isinstance(like, bool):
        return value.lower() in ("1", "true", "yes")
    if isinstance(like, int):
        return int(value)
    if isinstance(like, str):
        return value
    return None if value.lower() == "none" else float(value)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("recipes", nargs="+", help="name:key=value,...")
    p.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    p.add_argument("--budget", type=float, default=5.0, help="minutes of training per run")
    p.add_argument(
        "--epochs", type=int, default=None, help="train this many epochs instead, no budget"
    )
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--max-vocab", type=int, default=10000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jsonl", type=Path, default=None, help="append a JSON line per run")
    args = p.parse_args(argv)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from quality import git_revision, split_corpus

    from rnngen.core.model import ModelConfig
    from rnngen.reading.evaluate import evaluate
    from rnngen.text.tokenize import detokenize
    from rnngen.training.train import TrainConfig, train

    tok_cfg, parts, vocab, ids = split_corpus(args.corpus, args.max_vocab)
    V = len(vocab)
    test_chars = len(detokenize(parts["test"][1:], tok_cfg))
    model_fields = {f.name: f.default for f in fields(ModelConfig)}
    train_fields = {f.name: f.default for f in fields(TrainConfig)}
    revision = git_revision()

    for text in args.recipes:
        name, settings = parse_recipe(text)
        model_kw, train_kw = {}, {}
        for key, value in settings.items():
            if key in model_fields:
                model_kw[key] = convert(value, model_fields[key])
            elif key in train_fields:
                train_kw[key] = convert(value, train_fields[key])
            else:
                p.error(f"recipe {name}: unknown setting {key!r}")
        model_cfg = ModelConfig(V, **model_kw)
        plan = {"epochs": None, "time_limit": args.budget * 60}
        if args.epochs:  # the epoch schedule: lr / lr_decay after an epoch without gain
            plan = {"epochs": args.epochs, "patience": 0}
        train_cfg = TrainConfig(**{**plan, "seed": args.seed, **train_kw})
        t0, c0 = time.perf_counter(), time.process_time()
        result = train(ids["train"], model_cfg, train_cfg, val_ids=ids["valid"])
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        test = evaluate(result.params, model_cfg, ids["test"], 1, 100)
        h = result.history
        row = {
            "name": name,
            "settings": settings,
            "budget_min": None if args.epochs else args.budget,
            "epochs": args.epochs,
            "val_ppl_per_epoch": [
                round(math.exp(min(e["val_loss"], 700)), 2) for e in h.get("per_epoch", [])
            ],
            "lr": train_cfg.learning_rate(model_cfg.cell),
            "clip": train_cfg.clip,
            "test_ppl": round(test.perplexity, 2),
            "bpc": round(test.nll / math.log(2) / test_chars, 4),
            "best_val_ppl": round(h.get("best_val_ppl", math.nan), 2),
            "steps": h.get("steps", 0),
            "tokens": h.get("steps", 0) * train_cfg.batch_size * train_cfg.seq_len,
            "wall_s": round(wall, 1),
            "cpu_share": round(cpu / max(wall, 1e-9), 2),
            "load": round(os.getloadavg()[0], 1),
            "revision": revision,
        }
        line = json.dumps(row)
        print(line, flush=True)
        if args.jsonl:
            with args.jsonl.open("a", encoding="utf-8") as f:
                f.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
