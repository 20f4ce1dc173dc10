"""Every command's `--help`, and the top-level one, read well at 80 columns.

Each help is rendered through CliRunner at COLUMNS=80 and checked, for every command and option
there is (new ones are covered without listing them here):
- no line is wider than 80 columns;
- no boolean flag shows a metavar (`--greedy <bool>`);
- nothing of a help string is lost: each option's help and each paragraph of a command's
  docstring, as written in the code, appears whole in the rendered text once the whitespace is
  normalised (Rich markup used to eat `[gpu]` from `pip install 'rnngen[gpu]'`);
- no line breaks mid-sentence: a line of prose ends only where the next word would not have fitted
  (a hard line break kept from the source, as in "exits with⏎code 130", fails this), and an
  example command stays on one line;
- the usage line names arguments in capitals, not `{input}`.
"""

import inspect
import re
import typing

import pytest
import typer.core
import typer.main
from typer.models import ParameterInfo
from typer.testing import CliRunner

from rnngen.cli.app import app
from rnngen.cli.helptext import unwrap

WIDTH = 80
runner = CliRunner()
GROUP = typer.main.get_command(app)
COMMANDS = [None, *GROUP.commands]  # None: the top-level help
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Items Typer adds after an option's help, each starting a line of its own when it does not fit.
EXTRAS = ("[default:", "[required]", "[env var:")


def render(name) -> list[str]:
    if not typer.core.HAS_RICH:
        pytest.skip("TYPER_USE_RICH=0: Typer renders help without Rich")
    args = ["--help"] if name is None else [name, "--help"]
    result = runner.invoke(app, args, env={"COLUMNS": str(WIDTH), "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    return ANSI.sub("", result.stdout).splitlines()


def command(name):
    return GROUP if name is None else GROUP.commands[name]


def source_help(name) -> tuple[str | None, dict]:
    """The command's docstring (or help=) and each parameter's help, as written in the code."""
    if name is None:
        callbacks = [app.registered_callback.callback]
        doc = app.info.help
    else:
        info = next(
            i
            for i in app.registered_commands
            if (i.name or i.callback.__name__.replace("_", "-")) == name
        )
        callbacks = [info.callback]
        doc = info.help or inspect.getdoc(info.callback)
    helps = {}
    for callback in callbacks:
        for param, hint in typing.get_type_hints(callback, include_extras=True).items():
            for meta in getattr(hint, "__metadata__", ()):
                if isinstance(meta, ParameterInfo) and meta.help:
                    helps[param] = meta.help
    return doc, helps


def words(text: str) -> str:
    return " ".join(text.split())


def panels(lines):
    """(title, body lines without the borders) of each ╭─ … ╰ panel."""
    found, title, body = [], None, []
    for line in lines:
        if line.startswith("╭─"):
            title, body = line.strip("╭─╮ "), []
        elif line.startswith("╰"):
            found.append((title, body))
            title = None
        elif title is not None:
            body.append(line[1:-1])
    return found


def description(lines) -> list[str]:
    """The lines between the usage line and the first panel."""
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("Usage:"))
    end = next(i for i, line in enumerate(lines) if line.startswith("╭"))
    return lines[start + 1 : end]


@pytest.mark.parametrize("name", COMMANDS)
def test_help_fits_80_columns(name):
    lines = render(name)
    too_wide = [line for line in lines if len(line) > WIDTH]
    assert not too_wide, "\n".join(too_wide)


@pytest.mark.parametrize("name", COMMANDS)
def test_flags_show_no_metavar(name):
    lines = render(name)
    assert not any("<bool>" in line for line in lines)
    for param in command(name).params:  # --help itself: no <bool> anywhere, above
        if not getattr(param, "is_flag", False) or getattr(param, "hidden", False):
            continue
        for opt in param.opts + param.secondary_opts:
            pattern = re.compile(rf"(?<![\w-]){re.escape(opt)}(\s+-{{1,2}}[\w-]+)*\s+[<\[]")
            rows = [line for line in lines if pattern.search(line)]
            assert not rows, f"{name} {opt} shows a metavar: {rows}"


@pytest.mark.parametrize("name", COMMANDS)
def test_no_help_text_is_lost(name):
    lines = render(name)
    shown = words(" ".join(re.sub(r"[│╭╮╰╯─]", " ", line) for line in lines))
    doc, helps = source_help(name)
    lost = [p for p in (unwrap(doc) or "").split("\n\n") if words(p) not in shown]
    params = {p.name: p for p in command(name).params}
    for param_name, text in helps.items():
        if getattr(params.get(param_name), "hidden", False):
            continue
        if words(text) not in shown:
            lost.append(f"{param_name}: {text}")
    assert not lost, "\n".join(lost)


@pytest.mark.parametrize("name", COMMANDS)
def test_no_mid_sentence_breaks(name):
    lines = render(name)
    text_width = WIDTH - 2  # one column of padding either side
    breaks = []
    prose = description(lines)
    for a, b in zip(prose, prose[1:], strict=False):
        if a.strip() and b.strip() and len(a.strip()) + 1 + len(b.split()[0]) <= text_width:
            breaks.append(f"{a.strip()!r} / {b.strip()!r}")
    examples = (unwrap(source_help(name)[0]) or "").split("\n\n")
    for example in (p for p in examples if p.startswith("Example:")):
        if not any(line.strip() == example for line in prose):
            breaks.append(f"example not on one line: {example!r}")
    for title, body in panels(lines):
        # The help column starts where the continuation lines (nothing in the option columns) do.
        starts = [len(line) - len(line.lstrip()) for line in body if line.strip()]
        starts = [x for x in starts if x > min(starts)]
        if not starts:
            continue  # every row fits on one line
        help_x = max(set(starts), key=starts.count)
        cell_width = len(body[0]) - 1 - help_x  # the panel's padding on the right
        for a, b in zip(body, body[1:], strict=False):
            cell_a, cell_b = a[help_x:].rstrip(), b[help_x:]
            continuation = b[:help_x].strip() == "" and cell_b.strip()
            if not continuation or not cell_a or cell_b.lstrip().startswith(EXTRAS):
                continue
            if len(cell_a.strip()) + 1 + len(cell_b.split()[0]) <= cell_width:
                breaks.append(f"{title}: {cell_a.strip()!r} / {cell_b.strip()!r}")
    assert not breaks, "\n".join(breaks)


@pytest.mark.parametrize("name", COMMANDS)
def test_option_help_has_no_hard_line_breaks(name):
    _, helps = source_help(name)
    assert not [p for p, text in helps.items() if "\n" in text]


@pytest.mark.parametrize("name", [n for n in COMMANDS if n is not None])
def test_usage_names_arguments_in_capitals(name):
    usage = next(line for line in render(name) if "Usage:" in line)
    assert "{" not in usage and "}" not in usage, usage
    for param in command(name).params:
        if param.param_type_name == "argument":
            assert param.name.upper() in usage, usage
