"""Showing training progress on stderr (used by the CLI; the core only emits events).

On a terminal, a Rich progress bar with loss, perplexity, validation perplexity, tokens per second,
elapsed and remaining time, and one line per epoch above it. Off a terminal (a log file, a pipe,
CI) or on a dumb one (TERM=dumb), plain lines with no escape codes: one per epoch. NO_COLOR keeps
the bar but drops its colours (Rich reads it). The bar never takes over stdout
(`redirect_stdout=False`): data printed there while it runs, into a pipe say, goes straight out.
"""

import sys

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from .evaluate import perplexity
from .train import EpochEnd, Started
from .train import Progress as StepProgress


def _ppl(loss):
    return perplexity(loss)


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def epoch_line(event: EpochEnd, tokens_per_second: float) -> str:
    val = "" if event.val_loss is None else f"  val ppl {event.val_perplexity:8.2f}"
    best = "  (best)" if event.is_best and event.val_loss is not None else ""
    if not event.is_best:
        best = "  (no gain: stopping)" if event.stopping else f"  (no gain: lr {event.lr:.3g})"
    remaining = event.elapsed / event.epoch * (event.epochs - event.epoch)
    return (
        f"epoch {event.epoch:>3}/{event.epochs}  loss {event.train_loss:.3f}"
        f"  ppl {_ppl(event.train_loss):8.2f}{val}{best}"
        f"  {tokens_per_second:,.0f} tok/s  elapsed {_clock(event.elapsed)}"
        f"  remaining {_clock(remaining)}"
    )


def summary_line(out, history: dict) -> str:
    """The closing line of a training run."""
    n = history["epochs"]
    line = (
        f"saved {out}: {n} epoch{'s' if n != 1 else ''} in {history['seconds']:.0f}s, "
        f"{history['tokens_per_second']:,.0f} tok/s"
    )
    if "best_val_ppl" in history:
        line += (
            f", best validation perplexity {history['best_val_ppl']:.2f}"
            f" (epoch {history['best_epoch']}; unigram baseline {history['unigram_val_ppl']:.2f})"
        )
    return line


class TrainingDisplay:
    """Context manager and `on_event` callback for `train`."""

    def __init__(
        self, header: str = "training", quiet: bool = False, console: Console | None = None
    ):
        self.header = header  # what is being trained, for the first line
        self.quiet = quiet
        self.console = console or Console(stderr=True)
        # A live bar needs a terminal that understands cursor movement.
        self.live = not quiet and self.console.is_terminal and not self.console.is_dumb_terminal
        self.tokens_per_second = 0.0
        self.val_ppl = "-"
        self._progress = None
        self._task = None

    def __enter__(self):
        if self.live:
            self._progress = Progress(
                TextColumn("epoch {task.fields[epoch]}"),
                BarColumn(),
                TextColumn("{task.percentage:>3.0f}%"),
                TextColumn("loss {task.fields[loss]}  ppl {task.fields[ppl]}"),
                TextColumn("val ppl {task.fields[val]}"),
                TextColumn("{task.fields[speed]} tok/s"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=self.console,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(
                "train", total=1.0, epoch="-", loss="-", ppl="-", val="-", speed="-"
            )
        return self

    def __exit__(self, *exc):
        if self._progress is not None:
            self._progress.stop()

    def __call__(self, event) -> None:
        if isinstance(event, Started):
            self.message(
                f"{self.header}: {event.train_tokens:,} training and {event.val_tokens:,} "
                f"validation tokens, {event.n_params:,} parameters, "
                f"{event.steps_per_epoch} steps per epoch"
            )
        elif isinstance(event, StepProgress):
            self.tokens_per_second = event.tokens_per_second
            if self._progress is not None:
                self._progress.update(
                    self._task,
                    completed=event.fraction_done,
                    epoch=f"{event.epoch}/{event.epochs} step {event.step}/{event.steps_per_epoch}",
                    loss=f"{event.loss:.3f}",
                    ppl=f"{_ppl(event.loss):.1f}",
                    speed=f"{event.tokens_per_second:,.0f}",
                )
        elif isinstance(event, EpochEnd):
            if event.val_loss is not None and self._progress is not None:
                self._progress.update(self._task, val=f"{event.val_perplexity:.1f}")
            self.message(epoch_line(event, self.tokens_per_second))

    def message(self, text: str) -> None:
        """One line on stderr, above the bar when there is one; nothing when quiet."""
        if self.quiet:
            return
        if self._progress is not None:
            self._progress.console.print(text, highlight=False, markup=False)
        else:
            print(text, file=sys.stderr, flush=True)


class StepDisplay:
    """Context manager and on_progress(done, total, what) callback for a search of a known number
    of steps (`rnngen tune`): a Rich bar on a terminal, else a plain line per step."""

    def __init__(self, header: str, quiet: bool = False, console: Console | None = None):
        self.header = header
        self.quiet = quiet
        self.console = console or Console(stderr=True)
        self.live = not quiet and self.console.is_terminal and not self.console.is_dumb_terminal
        self._progress = None
        self._task = None

    def __enter__(self):
        if self.live:
            self._progress = Progress(
                TextColumn(self.header + " {task.fields[what]}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=self.console,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(self.header, total=None, what="")
        return self

    def __exit__(self, *exc):
        if self._progress is not None:
            self._progress.stop()

    def update(self, done: int, total: int, what: str = "") -> None:
        if self.quiet:
            return
        if self._progress is not None:
            self._progress.update(self._task, completed=done, total=total, what=what)
        else:
            print(
                f"{self.header}: step {done}/{total} {what}".rstrip(), file=sys.stderr, flush=True
            )
