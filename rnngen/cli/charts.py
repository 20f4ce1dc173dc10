"""Drawing a training run's loss curves: a character chart for the terminal, or a PNG.

The chart puts the training step on x and the loss in nats per token on y (perplexity is e to the
loss): `*` marks the mean training loss of each logged step, `o` the validation loss after each
epoch. It is plain characters, so it reads the same in a log file as on a terminal; the CLI adds
colour on a terminal. The PNG needs matplotlib (the optional `plot` extra), imported only then.
"""

import math
from dataclasses import dataclass

from ..errors import ConfigError, MissingExtraError
from ..files.storage import atomic_write
from ..training.runlog import Run

TRAIN_MARK = "*"
VAL_MARK = "o"
MIN_WIDTH = 30  # columns: the y labels and a readable plotting area
MIN_HEIGHT = 4  # rows of plotting area


@dataclass(frozen=True)
class Curve:
    label: str
    mark: str
    points: list  # (x, y) pairs, x ascending


@dataclass(frozen=True)
class Chart:
    lines: list  # the chart, one string per line, none longer than the width asked for
    plot_top: int  # the line where the plotting area starts (after the title)
    plot_rows: int  # how many lines the plotting area takes
    plot_left: int  # the column where it starts


def run_curves(run: Run) -> list:
    """The training and validation loss curves of a run (validation only where there was one)."""
    train = [(r["step"], r["loss"]) for r in run.steps]
    if not train:  # a log of evaluations only: each epoch's mean training loss
        train = [(r["step"], r["loss"]) for r in run.evals]
    val = [
        (r["step"], r["val_loss"])
        for r in run.evals
        if isinstance(r.get("val_loss"), int | float) and math.isfinite(r["val_loss"])
    ]
    curves = [Curve("training loss", TRAIN_MARK, sorted(train))]
    if val:
        curves.append(Curve("validation loss", VAL_MARK, sorted(val)))
    return curves


def run_title(run: Run) -> str:
    """One line naming the run and its outcome."""
    parts = [f"run {run.id}" if run.id else "run"]
    model = run.start.get("model")
    if isinstance(model, dict) and "cell" in model:
        parts.append(f"{model.get('layers', 1)}x{model.get('hidden', '?')} {model['cell']}")
    epochs = max((r.get("epoch", 0) for r in run.evals), default=0)
    if epochs:
        parts.append(f"{epochs} epoch{'s' if epochs != 1 else ''}")
    vals = [r["val_perplexity"] for r in run.evals if r.get("val_perplexity") is not None]
    if vals:
        parts.append(f"best validation perplexity {min(vals):.2f}")
    return ", ".join(parts)


def _label(value: float) -> str:
    return f"{value:.3g}"


def _span(values) -> tuple:
    low, high = min(values), max(values)
    if high == low:
        pad = abs(low) * 0.01 or 1.0
        return low - pad, high + pad
    return low, high


def check_chart_size(width: int | None, height: int) -> None:
    """Refuse a --width or --height that the chart cannot be drawn in (width None: the
    terminal's)."""
    if width is not None and width < MIN_WIDTH:
        raise ConfigError(f"--width must be at least {MIN_WIDTH} columns, got {width}")
    if height < MIN_HEIGHT:
        raise ConfigError(f"--height must be at least {MIN_HEIGHT} rows, got {height}")


def text_chart(curves, width: int = 80, height: int = 16, title: str = "") -> Chart:
    """A character chart of the curves, `width` columns wide (at least 30) and `height` rows of
    plotting area (at least 4), under a title line and above an x axis, its labels and a legend.
    Later curves are drawn over earlier ones. Smaller sizes are raised to those minima (a narrow
    terminal); check_chart_size refuses them when the user asked for them."""
    width, height = max(width, MIN_WIDTH), max(height, MIN_HEIGHT)
    points = [p for curve in curves for p in curve.points]
    if not points:
        raise ValueError("nothing to plot")
    x0, x1 = _span([x for x, _ in points])
    y0, y1 = _span([y for _, y in points])
    labels = {0: _label(y1), height // 2: _label((y0 + y1) / 2), height - 1: _label(y0)}
    left = max(len(s) for s in labels.values()) + 2  # labels, a space and the axis
    plot_width = width - left
    grid = [[" "] * plot_width for _ in range(height)]
    for curve in curves:
        for x, y in curve.points:
            col = round((x - x0) / (x1 - x0) * (plot_width - 1))
            row = round((y1 - y) / (y1 - y0) * (height - 1))
            grid[row][col] = curve.mark
    lines = [title] if title else []
    top = len(lines)
    lines += [labels.get(r, "").rjust(left - 2) + " |" + "".join(grid[r]) for r in range(height)]
    lines.append(" " * (left - 1) + "+" + "-" * plot_width)
    first, last = str(round(x0)), str(round(x1))
    axis = first + " " * max(1, plot_width - len(first) - len(last)) + last
    lines.append(" " * left + axis)
    legend = "   ".join(f"{c.mark} {c.label}" for c in curves)
    lines.append(" " * left + legend)
    lines.append(" " * left + "x: training step   y: loss, nats per token")
    return Chart([line[:width].rstrip() for line in lines], top, height, left)


def write_png(curves, path, title: str = "") -> None:
    """Draw the curves into a PNG at `path` (written atomically); needs matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingExtraError(
            "--png needs matplotlib, which is not installed; "
            "install it with: pip install 'rnngen[plot]' (or pip install matplotlib)"
        ) from None
    figure = Figure(figsize=(8, 4.5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for curve in curves:
        xs = [x for x, _ in curve.points]
        ys = [y for _, y in curve.points]
        if curve.mark == VAL_MARK:
            axes.plot(xs, ys, "o-", label=curve.label)
        else:
            axes.plot(xs, ys, "-", linewidth=1, label=curve.label)
    axes.set_xlabel("training step")
    axes.set_ylabel("loss (nats per token)")
    if title:
        axes.set_title(title, fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    atomic_write(path, lambda f: figure.savefig(f, format="png"))
