"""`rnngen plot`: draw the loss curves of a training log."""

import os
import shutil
import sys
from typing import Annotated

import typer

from ..errors import ConfigError
from ..training import runlog
from . import charts
from .common import Messages, Output, errors_to_exit
from .options import Force, Quiet, Verbose


def _colour_stdout() -> bool:
    """Colour only on a terminal, and never with NO_COLOR set or TERM=dumb."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM", "") in ("dumb", "unknown"):
        return False
    return sys.stdout.isatty()


def print_chart(chart: charts.Chart) -> None:
    if not _colour_stdout():
        print("\n".join(chart.lines))
        return
    from rich.console import Console
    from rich.text import Text

    styles = {charts.TRAIN_MARK: "cyan", charts.VAL_MARK: "bold magenta"}
    console = Console(highlight=False, soft_wrap=True)
    for row, line in enumerate(chart.lines):
        text = Text(line, style="bold" if row < chart.plot_top else "")
        if chart.plot_top <= row < chart.plot_top + chart.plot_rows:
            for col in range(chart.plot_left, len(line)):
                if line[col] in styles:
                    text.stylize(styles[line[col]], col, col + 1)
        console.print(text)


def plot_command(
    log: Annotated[
        str, typer.Argument(help="Training log from `train --log-file`, or - for stdin.")
    ],
    png: Annotated[
        str | None,
        typer.Option(help="Write a PNG image here instead (needs the plot extra: matplotlib)."),
    ] = None,
    run: Annotated[int, typer.Option(help="Which run of the log: 1 the first, -1 the last.")] = -1,
    width: Annotated[
        int | None,
        typer.Option(help="Chart width in columns. [default: the terminal's, at most 80]"),
    ] = None,
    height: Annotated[int, typer.Option(help="Chart height in rows.")] = 16,
    force: Force = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
):
    """Draw the training and validation loss curves of a training log.

    Example: rnngen plot run.jsonl --png curves.png
    """
    with errors_to_exit(verbose):
        say = Messages(quiet, verbose)
        charts.check_chart_size(width, height)
        if png is not None:
            Output(png, "png", [log], force)
        contents = runlog.read_runs(log)
        if contents.skipped:
            say.say(f"warning: skipped {contents.skipped} lines that are not training records")
        runs = contents.runs
        if run == 0 or not -len(runs) <= run <= len(runs):
            raise ConfigError(
                f"--run {run} is not in the log, which holds {len(runs)} "
                f"run{'s' if len(runs) != 1 else ''}; give 1 to {len(runs)}, or -1 for the last"
            )
        chosen = runs[run - 1 if run > 0 else run]
        say.detail(f"{len(runs)} runs in {log}; drawing {chosen.id or 'the unnamed run'}")
        curves = charts.run_curves(chosen)
        title = charts.run_title(chosen)
        if png is not None:
            charts.write_png(curves, png, title)
            say.say(f"wrote {png}")
            return
        if width is None:
            width = min(shutil.get_terminal_size((80, 24)).columns, 80)
        print_chart(charts.text_chart(curves, width, height, title))
