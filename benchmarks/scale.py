"""Data-parallel scaling on this machine: training tokens/s with 1 and 2 MPI processes.

    pip install '.[mpi]' && python benchmarks/scale.py [--steps 30] [--config a]

Each run trains a speed-benchmark configuration (benchmarks/speed.py; `a` by default: rnn 1x256,
V 10,000, global batch 32, 35 steps) for `--steps` steps on Zipf-distributed ids, started with
`mpiexec -n P`, each process with T BLAS threads. The global batch is the same in every run, so
2 processes each compute half of it. Prints a markdown table of tokens/s and the scaling
efficiency (tokens/s per process relative to the 1-process run with the same total threads).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))


def child(config: str, steps: int) -> None:
    import numpy as np
    from speed import CONFIGS, model_config, zipf_counts

    from rnngen.training import distributed
    from rnngen.training.train import TrainConfig, train

    spec = CONFIGS[config]
    cfg = model_config(spec)
    comm = distributed.world()
    counts = zipf_counts(spec["V"]).astype(np.float64)
    n_tokens = (steps * spec["seq"] + 1) * spec["batch"]
    ids = np.random.default_rng(0).choice(spec["V"], size=n_tokens, p=counts / counts.sum())
    tc = TrainConfig(epochs=1, batch_size=spec["batch"], seq_len=spec["seq"], val_frac=0.0,
                     patience=0)  # fmt: skip
    began = time.perf_counter()
    result = train(ids.astype(np.int32), cfg, tc, comm=comm)
    seconds = time.perf_counter() - began
    if comm is None or comm.rank == 0:
        tokens = result.state.tokens_seen
        print(json.dumps({"tokens_per_second": tokens / seconds, "seconds": seconds}))


def run(processes: int, threads: int, args) -> dict:
    mpiexec = shutil.which("mpiexec", path=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    env = {**os.environ, "OPENBLAS_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}
    proc = subprocess.run(
        [mpiexec, "-n", str(processes), sys.executable, __file__, "--child",
         "--config", args.config, "--steps", str(args.steps)],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="a")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--child", action="store_true")
    args = parser.parse_args()
    if args.child:
        child(args.config, args.steps)
        return
    runs = [(1, 1), (1, 2), (2, 1)]
    results = {}
    for _ in range(2):  # two passes, interleaved, the better of each
        for processes, threads in runs:
            r = run(processes, threads, args)
            key = (processes, threads)
            best = results.get(key)
            if best is None or r["tokens_per_second"] > best["tokens_per_second"]:
                results[key] = r
            print(f"{processes} x {threads}: {r['tokens_per_second']:,.0f} tok/s", file=sys.stderr)
    base = results[(1, 1)]["tokens_per_second"]
    same_threads = results[(1, 2)]["tokens_per_second"]
    print(f"config {args.config}, {args.steps} steps, global batch the same in every run\n")
    print("| processes | BLAS threads each | train tokens/s | speed-up over 1x1 | efficiency |")
    print("|---:|---:|---:|---:|---:|")
    for (processes, threads), r in results.items():
        tps = r["tokens_per_second"]
        speedup = tps / base
        efficiency = speedup / (processes * threads)
        print(f"| {processes} | {threads} | {tps:,.0f} | {speedup:.2f} | {efficiency:.0%} |")
    two = results[(2, 1)]["tokens_per_second"]
    print(f"\n2 processes x 1 thread against 1 process x 2 threads: {two / same_threads:.2f}")


if __name__ == "__main__":
    main()
