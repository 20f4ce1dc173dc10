"""Run by tests/test_distributed.py under mpiexec (not a test module).

    python tests/mpi_worker.py train OUT.npz EPOCHS [CHECKPOINT [RESUME]]
    python tests/mpi_worker.py train-class OUT.npz EPOCHS
    python tests/mpi_worker.py train-timed OUT
    python tests/mpi_worker.py fail-on-rank-1 BOOK.txt

`train` trains a small float64 model data-parallel on fixed ids and rank 0 saves its final
parameters to OUT.npz (`train-class`: with the class softmax and lazy Adam on the row-sparse
embedding gradients); with CHECKPOINT it writes a checkpoint there at the end, and with RESUME
(any value) it first resumes from that checkpoint. `fail-on-rank-1` runs the CLI on every rank
with rank 1's training broken, to show the job ends instead of hanging. `train-timed` trains
with a time budget on a fake clock that runs at a different speed on each rank, and every rank
saves its final parameters and history to OUT.rank<r>.npz.
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rnngen import api  # noqa: E402
from rnngen.core.model import ModelConfig  # noqa: E402
from rnngen.files.checkpoint import Checkpoint, load_checkpoint, save_checkpoint  # noqa: E402
from rnngen.text.tokenize import TokenizerConfig  # noqa: E402
from rnngen.text.vocab import build_vocab  # noqa: E402
from rnngen.training import distributed  # noqa: E402
from rnngen.training.train import TrainConfig, train  # noqa: E402

IDS = np.random.default_rng(5).integers(1, 30, size=1500).astype(np.int32)
VOCAB = build_vocab([str(i) for i in range(29)])


def model_config(dropout: float, softmax: str = "full") -> ModelConfig:
    bounds = (0, 3, 8, 15, 30) if softmax == "class" else ()
    return ModelConfig(30, embed=8, hidden=12, layers=2, cell="lstm", dropout=dropout,
                       softmax=softmax, class_bounds=bounds)  # fmt: skip


def train_config(epochs: int, lazy: bool = False) -> TrainConfig:
    return TrainConfig(epochs=epochs, batch_size=4, seq_len=10, dtype="float64", patience=0,
                       lr_decay=2.0, seed=3, lazy_adam=lazy)  # fmt: skip


def main() -> None:
    mode = sys.argv[1]
    comm = distributed.world()
    if mode in ("train", "train-class"):
        out, epochs = sys.argv[2], int(sys.argv[3])
        ckpt_path = sys.argv[4] if len(sys.argv) > 4 else None
        dropout = 0.0 if comm is None or ckpt_path is None else 0.3
        softmax = "class" if mode == "train-class" else "full"
        mcfg, tcfg = model_config(dropout, softmax), train_config(epochs, softmax == "class")
        resume = None
        if len(sys.argv) > 5:
            ckpt = load_checkpoint(ckpt_path)
            ckpt.state.done = False
            resume, tcfg = ckpt.state, TrainConfig(**{**ckpt.train.__dict__, "epochs": epochs})

        def save(state):
            save_checkpoint(ckpt_path, Checkpoint(mcfg, tcfg, TokenizerConfig(), VOCAB, state, ""))

        result = train(IDS, mcfg, tcfg, resume=resume, comm=comm,
                       on_checkpoint=save if ckpt_path else None,
                       checkpoint_every=10**9 if ckpt_path else 0)  # fmt: skip
        if comm is None or comm.rank == 0:
            np.savez(out, **result.state.params)
    elif mode == "train-timed":
        rank = 0 if comm is None else comm.rank
        ticks = [100.0]

        def clock():  # rank r's clock gains (r + 1) / 4 s at each reading
            ticks[0] += (rank + 1) / 4
            return ticks[0]

        tcfg = TrainConfig(epochs=None, batch_size=4, seq_len=10, dtype="float64", seed=3,
                           time_limit=20.0, val_every=7)  # fmt: skip
        result = train(IDS, model_config(0.0), tcfg, comm=comm, clock=clock)
        steps = [v["step"] for v in result.history["validations"]]
        np.savez(f"{sys.argv[2]}.rank{rank}.npz", steps=np.array(steps), **result.state.params)
    elif mode == "fail-on-rank-1":
        from rnngen.cli.app import run

        if comm.rank == 1:

            def broken(*args, **kwargs):
                Path("rank1-failed").write_text("yes")  # proof the failure was rank 1's
                raise RuntimeError("rank 1 fails")

            api.train_model = broken
        sys.argv = ["rnngen", "train", sys.argv[2], "-o", "m.npz", "--epochs", "50",
                    "--hidden", "16", "--embed", "8", "--batch-size", "4"]  # fmt: skip
        run()


if __name__ == "__main__":
    main()
