"""The training log: one JSON object per line (JSON Lines), appended as training runs.

`RunLog` is an `on_event` callback for `train.train`, used next to the progress display. It writes
    {"event": "start", ...}   once per run: the settings and the size of the data
    {"event": "step", ...}    every logged step (train.Progress): the mean training loss so far in
                              the epoch, its perplexity, the learning rate, tokens/s, elapsed time
    {"event": "eval", ...}    after each epoch's validation (train.EpochEnd)
Every record carries `run` (an id shared by the records of one run, so several runs can append to
one file), `step` (counted from the start of training) and `epoch`. Progress events do not carry a
learning rate, so the log records the one in force: the configured rate until the first epoch
ends, then the rate each EpochEnd announces for the next epoch. Non-finite numbers become null.

`read_runs` reads such a file back, grouped by run, for `rnngen plot`.
"""

import json
import math
import secrets
import sys
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

from ..errors import InputDataError, MissingInputError, OutputError
from ..reading.evaluate import perplexity
from .events import EpochEnd, Progress, Started, Validated


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _perplexity(loss):
    return None if loss is None else perplexity(loss)


class RunLog:
    """Append one JSON line per Started, Progress and EpochEnd event to `path`.

    settings: extra fields for the start record (input and output paths); the model and
    training settings and the starting learning rate come with the Started event. The file is
    opened at once, so a path that cannot be written fails before training starts."""

    def __init__(self, path, settings: dict | None = None):
        self.path = str(path)
        try:
            self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 (closed by close())
        except OSError as e:
            raise OutputError(f"cannot write the log {path}: {e.strerror}") from None
        started = datetime.now(timezone.utc)
        self.run = f"{started:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"  # unique in the file
        self._started = started
        self.lr = None  # the learning rate in force (from Started's settings)
        self.settings = settings or {}
        self.steps_per_epoch = 1
        self.tokens_per_second = 0.0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self._file.close()

    def _write(self, record: dict) -> None:
        record = {"run": self.run, **{k: _finite(v) for k, v in record.items()}}
        try:
            self._file.write(json.dumps(record, allow_nan=False) + "\n")
            self._file.flush()
        except OSError as e:
            raise OutputError(f"cannot write the log {self.path}: {e.strerror}") from None

    def __call__(self, event) -> None:
        write = {
            Started: self._start,
            Progress: self._step,
            EpochEnd: self._epoch_end,
            Validated: self._validated,
        }.get(type(event))
        if write is not None:
            write(event)

    def _start(self, event: Started) -> None:
        self.steps_per_epoch = max(event.steps_per_epoch, 1)
        settings = dict(self.settings)
        if event.model is not None and event.train is not None:
            self.lr = event.train.learning_rate(event.model.cell)
            model = {k: v for k, v in event.model.to_dict().items() if k != "class_bounds"}
            settings = {**settings, "model": model, "train": asdict(event.train)}
        self._write(
            {
                "event": "start",
                "time": self._started.isoformat(timespec="seconds"),
                "lr": self.lr,
                "train_tokens": event.train_tokens,
                "val_tokens": event.val_tokens,
                "steps_per_epoch": event.steps_per_epoch,
                "parameters": event.n_params,
                **settings,
            }
        )

    def _step(self, event: Progress) -> None:
        self.tokens_per_second = event.tokens_per_second
        self._write(
            {
                "event": "step",
                "step": (event.epoch - 1) * self.steps_per_epoch + event.step,
                "epoch": event.epoch,
                "loss": event.loss,
                "perplexity": _perplexity(event.loss),
                "val_loss": None,
                "val_perplexity": None,
                "lr": self.lr if event.lr is None else event.lr,
                "tokens_per_second": event.tokens_per_second,
                "elapsed": event.elapsed,
                **({} if event.time_left is None else {"time_left": event.time_left}),
            }
        )

    def _epoch_end(self, event: EpochEnd) -> None:
        self._write(
            {
                "event": "eval",
                "step": event.epoch * self.steps_per_epoch,
                "epoch": event.epoch,
                "loss": event.train_loss,
                "perplexity": _perplexity(event.train_loss),
                "val_loss": event.val_loss,
                "val_perplexity": event.val_perplexity,
                "lr": self.lr,  # the rate this epoch trained with
                "next_lr": event.lr,
                "is_best": event.is_best,
                "stopping": event.stopping,
                "tokens_per_second": self.tokens_per_second,
                "elapsed": event.elapsed,
            }
        )
        self.lr = event.lr

    def _validated(self, event: Validated) -> None:
        self._write(
            {
                "event": "eval",
                "step": event.step,
                "epoch": event.epoch,
                "loss": event.train_loss,
                "perplexity": _perplexity(event.train_loss),
                "val_loss": event.val_loss,
                "val_perplexity": event.val_perplexity,
                "lr": event.lr,  # the rate of the last step (it falls every step)
                "next_lr": None,
                "is_best": event.is_best,
                "stopping": event.final,
                "stopped": event.stopped,
                "tokens_per_second": self.tokens_per_second,
                "elapsed": event.elapsed,
                "time_left": event.time_left,
            }
        )


def combine(*callbacks):
    """One on_event callback that calls each of `callbacks` (None ones skipped) in order."""
    active = [c for c in callbacks if c is not None]

    def on_event(event):
        for callback in active:
            callback(event)

    return on_event


# --- reading ------------------------------------------------------------------------------------


@dataclass
class Run:
    """The records of one training run."""

    id: str
    start: dict = field(default_factory=dict)  # the start record ({} when the log lacks it)
    steps: list = field(default_factory=list)  # step records, in file order
    evals: list = field(default_factory=list)  # eval records, in file order


@dataclass
class LogContents:
    runs: list  # Run, in the order their first record appears
    skipped: int  # lines that were not JSON objects (a line cut short by a crash, say)


def read_runs(path: str) -> LogContents:
    """Read a training log (or standard input for `-`), grouped into runs."""
    name = "standard input" if path == "-" else path
    if path == "-":
        lines = sys.stdin.buffer.read().splitlines()
    else:
        try:
            with open(path, "rb") as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            raise MissingInputError(
                f"{path} does not exist; write one with `rnngen train --log-file {path}`"
            ) from None
        except IsADirectoryError:
            raise MissingInputError(f"{path} is a folder; give a training log file") from None
        except OSError as e:
            raise MissingInputError(f"cannot read {path}: {e.strerror}") from None
    runs: dict = {}
    skipped = 0
    for raw in lines:
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except (ValueError, RecursionError):
            skipped += 1
            continue
        if not isinstance(record, dict) or record.get("event") not in ("start", "step", "eval"):
            skipped += 1
            continue
        run_id = str(record.get("run", ""))
        run = runs.setdefault(run_id, Run(run_id))
        if record["event"] == "start":
            run.start = record
        elif _is_number(record.get("step")) and _is_number(record.get("loss")):
            (run.steps if record["event"] == "step" else run.evals).append(record)
        else:
            skipped += 1
    if not any(run.steps or run.evals for run in runs.values()):
        raise InputDataError(
            f"{name} has no training records; write one with `rnngen train --log-file FILE`"
        )
    return LogContents([run for run in runs.values() if run.steps or run.evals], skipped)


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
