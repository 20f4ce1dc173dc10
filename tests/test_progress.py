"""Progress on stderr: on a terminal every line fits its width (tested at 80 columns); off a
terminal a plain line at a steady interval, for training and for evaluation."""

import io
import os
import re
import subprocess
import sys

import numpy as np
from rich.console import Console

from rnngen.cli.progress import EvalDisplay, TrainingDisplay, fit
from rnngen.core.model import ModelConfig, init_params
from rnngen.reading.evaluate import evaluate
from rnngen.training.train import EpochEnd, Progress, Started, Validated

ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
HEADER = "2x1500 lstm, vocabulary 123,456"


class Ticks:
    """A clock that reads the times it is given, one per reading, then stays at the last."""

    def __init__(self, *times):
        self.times, self.i = list(times), 0

    def __call__(self):
        t = self.times[min(self.i, len(self.times) - 1)]
        self.i += 1
        return t


def terminal(width):
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=width, _environ={"TERM": "xterm"})
    return console, buffer


def screen_lines(text):
    """What a terminal shows, line by line: escape codes gone, each redraw its own line."""
    return [line for line in re.split(r"[\r\n]", ESCAPE.sub("", text)) if line.strip()]


# How a line that was not cut ends: with a whole figure or remark (a line Rich wrapped to the
# width ends anywhere, and its rest starts the next line).
WHOLE = re.compile(r".*(\)|\d:\d\d:\d\d|tok/s|\d\.\d+|\d|budget|tokens|,)$")


def assert_fitted(lines, width=80):
    """No line wider than the terminal, and none wrapped by it: each status line ends whole."""
    too_wide = [line for line in lines if len(line) > width]
    assert not too_wide, too_wide
    status = [line for line in lines if line.startswith(("epoch ", "step ", "saved", "scoring"))]
    cut = [line for line in status if "━" not in line and not WHOLE.match(line)]
    assert not cut, cut


# Every kind of event, with figures as wide as they come.
EVENTS = [
    Started(123_456_789, 12_345_678, 123_456, 123_456_789, 5400.0),
    Progress(12, 20, 100_000, 123_456, 5.123456, 1_234_567.0, 36_000.0),
    EpochEnd(12, 20, 5.1234, 5.4321, True, 36_012.0, 0.002, False),
    EpochEnd(13, 20, 9.1234, 9.4321, False, 36_012.0, 0.000123456, False),
    EpochEnd(14, 20, 9.1234, 9.4321, False, 36_012.0, 0.000123456, True),
    Validated(12_345_678, 3, 9.1, 9.3, True, 5300.0, 100.0, 0.001, True, "epochs"),
    Progress(113, None, 5, 123_456, 9.123456, 1_234_567.0, 5000.0, 400.0, 15_000_000, 1e-3),
]


def test_training_lines_fit_80_columns():
    console, buffer = terminal(80)
    with TrainingDisplay(HEADER, console=console) as display:
        for event in EVENTS:
            display(event)
    lines = screen_lines(buffer.getvalue())
    assert any(line.startswith("epoch  13/20") for line in lines)
    assert any("(no gain: stopping)" in line for line in lines)
    assert any("(epochs run)" in line for line in lines)  # a validation line
    assert any("left 0:06:40" in line for line in lines)  # the bar of a run with a budget
    assert_fitted(lines)


def test_lines_off_a_terminal_are_whole():
    """A log file gets every figure: nothing dropped for a width."""
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=False)
    with TrainingDisplay(HEADER, console=console) as display:
        for event in EVENTS[:3]:
            display(event)
    text = buffer.getvalue()
    assert "\x1b[" not in text
    assert "1,234,567 tok/s" in text and "elapsed 10:00:12" in text and "123,456,789 param" in text


def test_fit_drops_the_least_useful_first():
    parts = [("a" * 10, 0), ("b" * 10, 2), ("c" * 10, 1), ("d" * 10, 2)]
    assert fit(parts, None) == "  ".join(p for p, _ in parts)
    assert fit(parts, 40) == "a" * 10 + "  " + "b" * 10 + "  " + "c" * 10  # last of rank 2 first
    assert fit(parts, 22) == "a" * 10 + "  " + "c" * 10
    assert fit(parts, 5) == "aaaa…"


def test_plain_progress_line_at_an_interval_off_a_terminal():
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=False)
    clock = Ticks(0.0, 10.0, 29.0, 31.0, 45.0, 60.0, 61.5)  # the first reading: entering
    with TrainingDisplay(HEADER, console=console, interval=30.0, clock=clock) as display:
        for step in range(1, 7):
            display(Progress(1, 2, step * 10, 100, 5.0, 1000.0, step * 10.0))
    lines = buffer.getvalue().splitlines()
    assert lines == [
        "epoch 1/2 step 30/100  15%  loss 5.000  ppl 148.4  1,000 tok/s  elapsed 0:00:30"
        "  left 0:02:50",
        "epoch 1/2 step 60/100  30%  loss 5.000  ppl 148.4  1,000 tok/s  elapsed 0:01:00"
        "  left 0:02:20",
    ]


def test_quiet_shows_nothing():
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=False)
    with TrainingDisplay(HEADER, quiet=True, console=console, interval=0.0) as display:
        for event in EVENTS:
            display(event)
    with EvalDisplay(quiet=True, console=console, interval=0.0) as display:
        display(10, 100)
    assert buffer.getvalue() == ""


def test_evaluate_reports_progress():
    cfg = ModelConfig(30, embed=8, hidden=12)
    params = init_params(cfg, np.random.default_rng(0))
    ids = np.random.default_rng(1).integers(0, 30, size=1001)
    heard = []
    result = evaluate(params, cfg, ids, 1, 128, on_progress=lambda *a: heard.append(a))
    assert [done for done, _ in heard] == [*range(128, 1000, 128), 1000]
    assert all(total == result.tokens == 1000 for _, total in heard)
    assert evaluate(params, cfg, ids, 1, 128).nll == result.nll


def test_eval_display_off_and_on_a_terminal():
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=False)
    clock = Ticks(0.0, 0.0, 20.0, 40.0, 50.0, 60.0, 80.0, 80.0)  # the line reads it again
    with EvalDisplay(console=console, interval=30.0, clock=clock) as display:
        for done in (100, 200, 300, 400):
            display(done, 1000)
    lines = buffer.getvalue().splitlines()
    assert len(lines) == 2 and all(line.startswith("scoring ") for line in lines)
    assert lines[0] == "scoring 200/1,000 tokens  20%  4 tok/s  elapsed 0:00:50  left 0:03:20"
    console, buffer = terminal(80)
    with EvalDisplay(console=console) as display:
        display(1_234_567, 2_000_000_000)
    lines = screen_lines(buffer.getvalue())
    assert any("1,234,567/2,000,000,000 tokens" in line for line in lines)
    assert all(len(line) <= 80 for line in lines)


def test_train_on_an_80_column_terminal(tmp_path):
    """The whole command on a pseudo-terminal 80 columns wide: no line wider."""
    import fcntl
    import pty
    import struct
    import termios

    from conftest import write_excerpt

    book = write_excerpt(tmp_path / "book.txt", 6000)
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COLUMNS", "LINES")}
    env["TERM"] = "xterm-256color"
    options = ["--epochs", "2", "--hidden", "16", "--embed", "8", "--batch-size", "4"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "rnngen", "train", str(book), "-o", str(tmp_path / "m.npz")]
        + options,
        stdout=subprocess.DEVNULL,
        stderr=follower,
        env=env,
    )
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    proc.wait(timeout=60)
    os.close(leader)
    assert proc.returncode == 0
    lines = screen_lines(seen.decode().replace(str(tmp_path / "m.npz"), "m.npz"))
    assert any(line.startswith("epoch   2/2") for line in lines)
    assert any(line.startswith("saved m.npz: 2 epochs") for line in lines)  # a long path: wider
    assert_fitted(lines)


def test_the_bar_counts_down_between_reports():
    """Reports come every 10 steps; the time left and elapsed on the bar run on in between."""
    console, buffer = terminal(80)
    now = [5.0]  # read by the bar's refresh thread too, whenever it draws
    with TrainingDisplay(HEADER, console=console, clock=lambda: now[0]) as display:
        display(Progress(1, None, 10, 100, 5.0, 1000.0, 20.0, 100.0, 500, 1e-3))
        now[0] = 35.0
        tail = display._tail_now()  # drawn 30 s after the report
    assert tail.endswith("0:00:50 left 0:01:10"), tail
