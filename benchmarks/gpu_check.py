"""On a machine with an NVIDIA GPU: does the CuPy run of rnngen's core agree with the NumPy run,
and how fast does it train?

    pip install '.[gpu]' && python benchmarks/gpu_check.py [--configs a,b,c,c-class] [--steps 20]

1. Agreement, for every cell and both output layers: the same float32 parameters and batch go
   through `rnngen.model.loss_and_grads` on NumPy and on CuPy; the loss, the final state and every
   gradient must agree to 1e-4 relative (scaled by each array's largest entry); then five Adam
   steps of `rnngen.train.train` on each, whose per-epoch losses must agree as closely.
2. Speed: training tokens/s (forward, backward, clipping, Adam) on the GPU for the configurations
   of benchmarks/speed.py, the median of `--steps` steps after a warm-up.

Exits 0 with a message when CuPy or a GPU is missing, 1 when a check fails.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from rnngen import backend  # noqa: E402
from rnngen.core import model as M  # noqa: E402
from rnngen.core.class_softmax import make_class_bounds  # noqa: E402
from rnngen.core.optim import Adam, clip_and_update  # noqa: E402
from rnngen.errors import MissingExtraError  # noqa: E402
from rnngen.training.train import TrainConfig, train  # noqa: E402

TOL = 1e-4
CHECKS = [
    dict(cell="rnn", layers=2),
    dict(cell="lstm", layers=2),
    dict(cell="gru", layers=2),
    dict(cell="gru", layers=1, tie_weights=True, embed=64),
    dict(cell="lstm", layers=1, softmax="class"),
]


def rel(a, b) -> float:
    a, b = backend.to_numpy(a).astype(np.float64), backend.to_numpy(b).astype(np.float64)
    return float(np.abs(a - b).max() / max(np.abs(a).max(), np.abs(b).max(), 1e-30))


def on(device, fn):
    backend.use_device(device)
    try:
        return fn()
    finally:
        backend.use_device("cpu")


def check(spec: dict) -> float:
    V = 500
    softmax = spec.pop("softmax", "full")
    bounds = make_class_bounds(np.arange(V, 0, -1)) if softmax == "class" else ()
    cfg = M.ModelConfig(V, **{"embed": 48, "hidden": 64, "dropout": 0.0, **spec},
                        softmax=softmax, class_bounds=bounds)  # fmt: skip
    rng = np.random.default_rng(0)
    inputs, targets = rng.integers(0, V, size=(2, 12, 8))
    state0 = rng.normal(scale=0.3, size=(cfg.layers, cfg.n_states, 8, cfg.hidden)).astype("f4")
    host = M.init_params(cfg, np.random.default_rng(1), np.float32)

    def run():
        xp = backend.xp
        params = {k: xp.asarray(v) for k, v in host.items()}
        r = M.loss_and_grads(params, cfg, xp.asarray(inputs), xp.asarray(targets),
                             xp.asarray(state0))  # fmt: skip
        return r.loss, r.state, r.grads, r.dstate0

    cpu, gpu = run(), on("gpu", run)
    worst = max(
        rel(cpu[0], gpu[0]),
        rel(cpu[1], gpu[1]),
        rel(cpu[3], gpu[3]),
        *(rel(cpu[2][k], gpu[2][k]) for k in cpu[2]),
    )
    ids = rng.integers(0, V, size=2000)
    tc = TrainConfig(epochs=1, batch_size=8, seq_len=12, val_frac=0.1)
    steps_cpu = train(ids, cfg, tc).history["per_epoch"]
    steps_gpu = on("gpu", lambda: train(ids, cfg, tc).history["per_epoch"])
    for a, b in zip(steps_cpu, steps_gpu, strict=True):
        worst = max(worst, abs(a["train_loss"] - b["train_loss"]) / abs(a["train_loss"]))
    return worst


def speed(name: str, steps: int) -> float:
    from speed import CONFIGS, batches, model_config

    spec = CONFIGS[name]
    cfg = model_config(spec)

    def run():
        xp = backend.xp
        params = M.init_params(cfg, np.random.default_rng(0), np.float32)
        opt = Adam(params, 1e-3)
        state = M.init_state(cfg, spec["batch"])
        times = []
        for x, y in batches(spec, steps + 3):
            start = time.perf_counter()
            r = M.loss_and_grads(params, cfg, xp.asarray(x), xp.asarray(y), state)
            clip_and_update(opt, params, r.grads, 1.0)
            state = r.state
            xp.cuda.Device().synchronize()
            times.append(time.perf_counter() - start)
        return spec["seq"] * spec["batch"] / float(np.median(times[3:]))

    return on("gpu", run)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="a,b,c,c-class")
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    try:
        backend.use_device("gpu")
        backend.use_device("cpu")
    except MissingExtraError as e:
        print(f"gpu_check: not run: {e}")
        return 0
    failed = False
    print("| check | worst relative difference | result |\n|---|---:|---|")
    for spec in CHECKS:
        label = ", ".join(f"{k}={v}" for k, v in spec.items())
        worst = check(dict(spec))
        failed |= not worst < TOL
        print(f"| {label} | {worst:.1e} | {'ok' if worst < TOL else 'FAILED'} |")
    print("\n| config | GPU train tokens/s |\n|---|---:|")
    for name in args.configs.split(","):
        print(f"| {name} | {speed(name, args.steps):,.0f} |")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
