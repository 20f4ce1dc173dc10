"""Where a training step's time goes, for the speed benchmark's configurations (rnngen only).

    python benchmarks/phases.py [--configs a,b,c,c-class] [--steps 12] [--threads 2]

Runs speed.py's rnngen training step (same batches, weights and Adam) and times the model's
parts by wrapping the functions it calls: the output layer (forward and backward; full or class
softmax), the recurrence (the embedding lookup and the recurrent layers forward, the layers
backward), the embedding gradient, and the update (gradient norm, clipping and Adam); "rest" is
the remainder of the step. Each column is its own median over the steps after two warm-up steps,
in milliseconds.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import speed  # noqa: E402  (first: it sets the thread count, then loads rnngen and NumPy)

from rnngen import optim  # noqa: E402
from rnngen.core import model as M  # noqa: E402

PARTS = {
    "output layer": ("softmax_output_forward", "softmax_output_backward",
                     "class_softmax_forward", "class_softmax_backward"),
    "recurrence": ("_forward", "sequence_backward"),
    "embedding gradient": ("embedding_backward",),
}  # fmt: skip


def timed(module, name, part, spent):
    inner = getattr(module, name)

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            spent[part] = spent.get(part, 0.0) + time.perf_counter() - start

    setattr(module, name, wrapper)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="a,b,c,c-class")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--threads", type=int, default=2, help="read by speed.py on import")
    args = parser.parse_args()
    names, steps = args.configs.split(","), args.steps
    spent = {}
    for part, functions in PARTS.items():
        for name in functions:
            timed(M, name, part, spent)
    timed(optim, "clip_and_update", "update (norm, clip, Adam)", spent)
    speed.clip_and_update = optim.clip_and_update  # the runner's own reference
    print(f"{speed.THREADS} threads; medians of {steps} steps after 2 warm-up steps, ms\n")
    columns = [*PARTS, "update (norm, clip, Adam)"]
    print("| config | step | " + " | ".join(columns) + " | rest |")
    print("|---|---:|" + "---:|" * (len(columns) + 1))
    for name in names:
        spec = speed.CONFIGS[name]
        cfg = speed.model_config(spec)
        runner = speed.RnngenRunner(cfg, spec)
        rows = []
        for x, y in speed.batches(spec, steps + 2):
            spent.clear()
            start = time.perf_counter()
            runner.train_step(x, y)
            step = time.perf_counter() - start
            rows.append({"step": step, **spent, "rest": step - sum(spent.values())})
        rows = rows[2:]
        median = {k: 1e3 * statistics.median(r.get(k, 0.0) for r in rows) for k in rows[0]}
        cells = " | ".join(f"{median.get(k, 0.0):.1f}" for k in columns)
        print(f"| {name} | {median['step']:.1f} | {cells} | {median['rest']:.1f} |")


if __name__ == "__main__":
    main()
