"""Showing progress on stderr (used by the CLI; the core only emits events and callbacks).

Training: on a terminal, a Rich progress bar with loss, perplexity, validation perplexity, tokens
per second, elapsed time and time left, and one line per epoch (or, with a time budget, per
validation) above it. Off a terminal (a log file, a pipe, CI) or on a dumb one (TERM=dumb), plain
lines with no escape codes: those epoch and validation lines, and a progress line every
`interval` seconds (30 by default) so a long epoch is not silent. On a terminal every line is
fitted to its width: the least useful figures go first (tokens per second, then elapsed time).
NO_COLOR keeps the bar but drops its colours (Rich reads it). The bar never takes over stdout
(`redirect_stdout=False`): data printed there while it runs, into a pipe say, goes straight out.

Evaluation (`EvalDisplay`): a bar on a terminal that disappears when done, a plain line every
`interval` seconds elsewhere.
"""

import json
import sys
import time
from dataclasses import asdict

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from ..reading.evaluate import perplexity
from ..training.events import EpochEnd, Finishing, Sampled, Started, Validated
from ..training.events import Progress as StepProgress
from ..training.schedule import format_duration

INTERVAL = 30.0  # seconds between plain progress lines off a terminal
BAR = 40  # the widest the bar gets; it narrows to leave its texts room, to 10 at least
MIN_BAR = 10


def _ppl(loss):
    return perplexity(loss)


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def fit(parts: list, width: int | None, sep: str = "  ", cut: bool = True) -> str:
    """Join (text, rank) parts with `sep`, in their order; while the line is wider than `width`,
    drop the part of the highest rank (the last such first). Rank 0 parts always stay; if they
    alone are too wide, the line is cut with an ellipsis (unless not `cut`). width None:
    everything, uncut."""
    parts = [(text, rank) for text, rank in parts if text]
    line = sep.join(text for text, _ in parts)
    while width is not None and len(line) > width:
        droppable = [i for i, (_, rank) in enumerate(parts) if rank > 0]
        if not droppable:
            return line[: max(width - 1, 0)] + "…" if cut else line
        worst = max(droppable, key=lambda i: (parts[i][1], i))
        del parts[worst]
        line = sep.join(text for text, _ in parts)
    return line


def time_left(event: StepProgress) -> float:
    """Seconds left: of the budget, or at the pace so far, of the epochs."""
    if event.time_left is not None:
        return event.time_left
    done = event.fraction_done
    return event.elapsed * (1 - done) / done if done > 0 else 0.0


def _speed(tokens_per_second: float) -> str:
    """`12,345 tok/s`; nothing before the speed is known."""
    return f"{tokens_per_second:,.0f} tok/s" if tokens_per_second else ""


def epoch_line(event: EpochEnd, tokens_per_second: float, width: int | None = None) -> str:
    val = "" if event.val_loss is None else f"val ppl {event.val_perplexity:8.2f}"
    best = "(best)" if event.is_best and event.val_loss is not None else ""
    if not event.is_best:
        best = "(no gain: stopping)" if event.stopping else f"(no gain: lr {event.lr:.3g})"
    left = event.elapsed / event.epoch * (event.epochs - event.epoch)
    return fit(
        [
            (f"epoch {event.epoch:>3}/{event.epochs}", 0),
            (f"loss {event.train_loss:.3f}", 0),
            (f"ppl {_ppl(event.train_loss):8.2f}", 3),
            (val, 0),
            (best, 0),
            (_speed(tokens_per_second), 5),
            (f"elapsed {_clock(event.elapsed)}", 4),
            (f"left {_clock(left)}", 2),
        ],
        width,
    )


def validation_line(event: Validated, tokens_per_second: float, width: int | None = None) -> str:
    """The line after a validation of a run with a time budget."""
    val = "" if event.val_loss is None else f"val ppl {event.val_perplexity:8.2f}"
    best = "(best)" if event.is_best and event.val_loss is not None else ""
    end = {"time": "(time is up)", "epochs": "(epochs run)"}.get(event.stopped or "", "")
    return fit(
        [
            (f"step {event.step:>6}", 0),
            (f"loss {event.train_loss:.3f}", 0),
            (f"ppl {_ppl(event.train_loss):8.2f}", 3),
            (val, 0),
            (best, 0),
            (end, 0),
            (_speed(tokens_per_second), 5),
            (f"elapsed {_clock(event.elapsed)}", 4),
            (f"left {_clock(event.time_left)}", 2),
        ],
        width,
    )


def _position(event: StepProgress) -> str:
    """Where training is: `epoch 2/20 step 31/51`, or with a time budget `step 133 (epoch 3)`."""
    if event.time_left is not None:
        return f"step {event.total_steps} (epoch {event.epoch})"
    return f"epoch {event.epoch}/{event.epochs} step {event.step}/{event.steps_per_epoch}"


def progress_line(event: StepProgress, width: int | None = None) -> str:
    """The plain line printed every `interval` seconds off a terminal."""
    return fit(
        [
            (_position(event), 0),
            (f"{event.fraction_done:.0%}", 0),
            (f"loss {event.loss:.3f}", 0),
            (f"ppl {_ppl(event.loss):.1f}", 3),
            (_speed(event.tokens_per_second), 5),
            (f"elapsed {_clock(event.elapsed)}", 4),
            (f"left {_clock(time_left(event))}", 0),
        ],
        width,
    )


def run_counts(history: dict) -> str:
    """`1,234 steps in 3 epochs (the last partial)`, or for a run by epochs `5 epochs`: the
    counts `--json`, `info` and `plot` give too (the history's "epochs" counts every epoch a
    step was trained in)."""
    n = history.get("epochs", 0)
    epochs = f"{n} epoch{'s' if n != 1 else ''}"
    if "validations" not in history:
        return epochs
    steps = history.get("steps", 0)
    per_epoch = history.get("steps_per_epoch")
    partial = " (the last partial)" if per_epoch and steps < n * per_epoch else ""
    return f"{steps:,} step{'s' if steps != 1 else ''} in {epochs}{partial}"


def summary_line(out, history: dict, width: int | None = None) -> str:
    """The closing line of a training run (fitted to `width`, but never cut: a long path may
    still make it wider). Its perplexity is the saved model's on the whole validation text, as
    `rnngen eval` scores it; the in-run figure is labelled as the prefix it was scored on."""
    stopped = {"time": "stopped on time,", "patience": "stopped for lack of gain,"}
    parts = [
        (f"saved {out}: {run_counts(history)} in {history['seconds']:.0f}s,", 0),
        (f"{history['tokens_per_second']:,.0f} tok/s,", 3),
        (stopped.get(history.get("stopped"), ""), 1),
    ]
    if "val_ppl" in history:
        parts.append((f"validation perplexity {history['val_ppl']:.2f}", 0))
    if "best_val_ppl" in history:
        best_step = history.get("best_step")
        where = f"epoch {history['best_epoch']}" if best_step is None else f"step {best_step:,}"
        scored = history.get("val_tokens_scored")
        on = f"first {scored:,} tokens" if scored else "whole text"
        best = f"{history['best_val_ppl']:.2f} at {where}"
        parts += [
            (f"(in-run validation, {on} with zero-state starts: {best};", 2),
            (f"unigram baseline {history['unigram_val_ppl']:.2f})", 2),
        ]
    if history.get("stats_tokens") == 0:
        parts.append(("no gradient statistics: the time was spent", 1))
    return fit(parts, width, sep=" ", cut=False).rstrip(",;")


class _Live(ProgressColumn):
    """A text column whose text is made each time the bar is drawn."""

    def __init__(self, make):
        super().__init__()
        self.make = make

    def render(self, task) -> Text:
        return Text(self.make(), no_wrap=True, overflow="crop")


class _Display:
    """What the training and evaluation displays share: quiet, the console, a live bar only on
    a terminal that understands cursor movement, lines fitted to a terminal's width, and plain
    lines elsewhere at most every `interval` seconds of `clock`."""

    def __init__(self, quiet, console, interval, clock):
        self.quiet = quiet
        self.console = console or Console(stderr=True)
        self.live = not quiet and self.console.is_terminal and not self.console.is_dumb_terminal
        self.interval, self.clock = interval, clock
        self._last_line = None  # when the last plain progress line went out
        self._progress = None
        self._task = None
        self._bar = BarColumn(bar_width=BAR)

    def _start(self, *columns, **fields) -> None:
        """The live bar: text left of the bar, the bar, text right of it."""
        self._progress = Progress(
            *columns,
            console=self.console,
            redirect_stdout=False,
            redirect_stderr=False,
            transient=isinstance(self, EvalDisplay),  # eval's is gone when done: the result stays
        )
        self._progress.start()
        self._task = self._progress.add_task("", total=1.0, **fields)

    def _update(self, fraction: float, head: str, tail: str) -> None:
        """Move the bar, as wide as the line leaves room for (BAR at most; a spare column for
        a tail that grows by a digit before the next update)."""
        room = (self.width or 200) - len(head) - len(tail) - 3  # a space each side of the bar
        self._bar.bar_width = max(min(room, BAR), 0)
        self._progress.update(self._task, completed=fraction, head=head, tail=tail)

    @property
    def width(self) -> int | None:
        """The width lines must fit: a terminal's; None (no limit) in a file or pipe."""
        return self.console.width if self.console.is_terminal else None

    def message(self, text: str) -> None:
        """One line on stderr, above the bar when there is one; nothing when quiet."""
        if self.quiet:
            return
        if self._progress is not None:
            self._progress.console.print(text, highlight=False, markup=False, soft_wrap=True)
        else:
            print(text, file=self.console.file, flush=True)

    def due(self) -> bool:
        """Whether a plain progress line is due (off a terminal, `interval` seconds after the
        display began or after the last such line)."""
        if self.live or self.quiet:
            return False
        now = self.clock()
        if self._last_line is None:
            self._last_line = now
        if now - self._last_line < self.interval:
            return False
        self._last_line = now
        return True

    def close(self) -> None:
        """Take the bar off the screen (it is not redrawn after), so the last line stays last."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def __exit__(self, *exc):
        self.close()


class TrainingDisplay(_Display):
    """Context manager and `on_event` callback for `train`."""

    def __init__(
        self,
        header: str | None = None,
        quiet: bool = False,
        console: Console | None = None,
        interval: float = INTERVAL,
        clock=time.monotonic,
        verbose: bool = False,
    ):
        super().__init__(quiet, console, interval, clock)
        self.header = header  # what is being trained, for the first line (None: from Started)
        self.verbose = verbose
        self.tokens_per_second = 0.0
        self.val_ppl = None
        self._last = None  # the last Progress event and the clock's reading when it came

    def __enter__(self):
        self.due()  # the interval starts now
        if self.live:
            self._start(
                TextColumn("{task.fields[head]}"),
                self._bar,
                _Live(self._tail_now),
                head="",
                tail="",
            )
        return self

    def bar_text(self, event: StepProgress, since: float = 0.0) -> tuple:
        """The texts left and right of the bar, fitted to the terminal with room for a bar of
        at least 10 columns, `since` seconds after the event (the clocks run on between the
        reports)."""
        val = "" if self.val_ppl is None else f"val {self.val_ppl:.1f}"
        room = (self.width or 200) - len(_position(event)) - MIN_BAR - 2
        left = max(time_left(event) - since, 0.0)
        tail = fit(
            [
                (f"{event.fraction_done:>4.0%}", 0),
                (f"loss {event.loss:.3f}", 0),
                (f"ppl {_ppl(event.loss):.1f}", 3),
                (val, 0),
                (_speed(event.tokens_per_second), 5),
                (_clock(event.elapsed + since), 4),
                (f"left {_clock(left)}", 0),
            ],
            room,
            sep=" ",
        )
        return _position(event), tail

    def _tail_now(self) -> str:
        """The text right of the bar as the bar is drawn (10 times a second)."""
        if self._last is None:
            return ""
        event, at = self._last
        return self.bar_text(event, self.clock() - at)[1]

    def __call__(self, event) -> None:
        if isinstance(event, Started):
            self.started(event)
        elif isinstance(event, StepProgress):
            self.tokens_per_second = event.tokens_per_second
            if self._progress is not None:
                self._last = (event, self.clock())
                self._update(event.fraction_done, *self.bar_text(event))
            elif self.due():
                self.message(progress_line(event, self.width))
        elif isinstance(event, EpochEnd | Validated):
            if event.val_loss is not None:
                self.val_ppl = event.val_perplexity
            line = epoch_line if isinstance(event, EpochEnd) else validation_line
            self.message(line(event, self.tokens_per_second, self.width))
        elif isinstance(event, Finishing):
            self.finishing(event)
        elif isinstance(event, Sampled):
            self.message("sample: " + " ".join(event.text.split()))

    def finishing(self, event: Finishing) -> None:
        """The work after the last step, on the bar (or a plain line now and then)."""
        what = {"score": "scoring the validation text", "stats": "gradient statistics"}
        head = what.get(event.what, event.what)
        left = "" if event.time_left is None else f"left {_clock(event.time_left)}"
        tail = fit([(f"{event.done:,}/{event.total:,} tokens", 0), (left, 0)], None)
        self._last = None
        if self._progress is not None:
            self._update(event.done / max(event.total, 1), head, tail)
        elif self.due():
            self.message(f"{head}: {tail}")

    def started(self, event: Started) -> None:
        model = event.model
        header = self.header
        if header is None:
            header = "training" if model is None else f"{model.layers}x{model.hidden} {model.cell}"
        if self.verbose and model is not None:
            shown = {k: v for k, v in model.to_dict().items() if k != "class_bounds"}
            self.message(f"model: {json.dumps(shown)}")
            self.message(f"training: {json.dumps(asdict(event.train))}")
        budget = "" if event.time_limit is None else f"{format_duration(event.time_limit)} budget"
        parts = [
            (f"{header}:", 0),
            (f"{event.train_tokens:,} training and", 0),
            (f"{event.val_tokens:,} validation tokens,", 0),
            (f"{event.n_params:,} parameters,", 3),
            (f"{event.steps_per_epoch} steps per epoch,", 2),
            (budget, 1),
        ]
        self.message(fit(parts, self.width, sep=" ").rstrip(","))


class EvalDisplay(_Display):
    """Context manager and `on_progress(done, total)` callback for `eval`: tokens scored."""

    def __init__(
        self,
        quiet: bool = False,
        console: Console | None = None,
        interval: float = INTERVAL,
        clock=time.monotonic,
    ):
        super().__init__(quiet, console, interval, clock)
        self._began = None

    def __enter__(self):
        self._began = self.clock()
        self.due()
        if self.live:
            self._start(
                TextColumn("scoring"), self._bar, TextColumn("{task.fields[tail]}"), tail=""
            )
        return self

    def line(self, done: int, total: int, width: int | None) -> str:
        elapsed = self.clock() - self._began
        speed = done / elapsed if elapsed > 0 else 0.0
        left = (total - done) / speed if speed > 0 else 0.0
        return fit(
            [
                (f"{done:,}/{total:,} tokens", 0),
                (f"{done / max(total, 1):.0%}", 0),
                (_speed(speed), 3),
                (f"elapsed {_clock(elapsed)}", 2),
                (f"left {_clock(left)}", 0),
            ],
            width,
        )

    def __call__(self, done: int, total: int) -> None:
        if self._progress is not None:
            tail = self.line(done, total, (self.width or 200) - len("scoring") - MIN_BAR - 2)
            self._update(done / max(total, 1), "scoring", tail)
        elif self.due():
            self.message("scoring " + self.line(done, total, None))


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
