"""How `--help` reads: the command and group classes every rnngen command uses.

Typer renders help with Rich, and four of its habits read badly; these classes undo them for
every command and option, including ones added later:
- help strings are Rich markup, so `pip install 'rnngen[gpu]'` loses `[gpu]`: here every help
  string and docstring is plain text, escaped before Rich sees it;
- a boolean flag shows its type as a metavar (`--greedy <bool>`, `--help <bool>`): flags show none;
- the usage line names arguments in braces (`{input}`): here INPUT, or [INPUT] when optional;
- a single line break inside a docstring paragraph after the first is kept, so a sentence breaks
  where the source line ended ("exits with⏎code 130"): paragraphs are joined into one line and
  rewrapped to the terminal. (So an example goes on one line of its own paragraph, within 78
  characters: Typer's dedent would take the indentation off an example indented under a heading.)

A usage error (an unknown option or command, a value of the wrong type, a missing argument) is
one line in rnngen's own form, `rnngen: error: ...`, exit code 2, instead of Click's box; it
suggests a name only when one is close (SIMILAR).

Options are grouped into panels (`rich_help_panel`) shown in the order of PANELS; in a command
that groups its options, the ungrouped ones (-q, -v, --help) come last, under OTHER.
"""

import copy
import difflib
import inspect
import sys
from typing import Annotated, get_args

import typer
import typer.core
from rich.markup import escape
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

# The Click that Typer uses: its own copy in recent versions, the click package before.
try:
    from typer._click import exceptions as click
except ImportError:
    from click import exceptions as click

# False under TYPER_USE_RICH=0 (Typer 0.29); older Typers use Rich whenever it is installed.
HAS_RICH = getattr(typer.core, "HAS_RICH", True)

INPUT, MODEL, TRAINING, SAMPLING, ADAPT, SPEED, DATA, CHECKPOINTS, OUTPUT, OTHER = (
    "Input",
    "Model",
    "Training",
    "Sampling",
    "Adapting to the text",
    "Speed and precision",
    "Data and tokenizer",
    "Checkpoints",
    "Output",
    "Other options",
)
PANELS = (INPUT, MODEL, TRAINING, SAMPLING, ADAPT, SPEED, DATA, CHECKPOINTS, OUTPUT, OTHER)


def choices(values) -> str:
    """The metavar that shows an option's choices: [rnn|lstm|gru]."""
    return "[" + "|".join(values) + "]"


def in_panel(option, panel: str):
    """A copy of an `Annotated[type, typer.Option(...)]` alias, shown in the given panel."""
    kind, info, *rest = get_args(option)
    info = copy.copy(info)
    info.rich_help_panel = panel
    return Annotated[(kind, info, *rest)]


def unwrap(text: str | None) -> str | None:
    """Join the lines of each paragraph into one line, for Rich to wrap to the terminal."""
    if not text:
        return text
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(" ".join(line.strip() for line in p.split("\n")) for p in paragraphs)


def plain(text: str | None, markup: bool = True) -> str | None:
    """Help text as plain text: rewrapped paragraphs, brackets escaped from Rich markup (when the
    help is rendered as markup: not with TYPER_USE_RICH=0, nor in Typer versions without it)."""
    if not text:
        return text
    return escape(unwrap(text)) if markup else unwrap(text)


def _tidy(param, markup: bool) -> None:
    if getattr(param, "_rnngen_tidy", False):
        return
    param._rnngen_tidy = True
    param.help = plain(param.help, markup)
    if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
        param.metavar = ""  # Rich shows the metavar, when there is one, instead of <bool>
    elif isinstance(param, TyperArgument) and param.metavar is None:
        param.metavar = param.name.upper()


# How alike (difflib's ratio) a mistyped name and a real one must be for "did you mean": --lenght
# and --length are 0.88, smaple and sample 0.83, but --bogus and --verbose only 0.62.
SIMILAR = 0.75


def closest(name: str, names) -> str | None:
    """The name among `names` most like `name`, if any is close enough to suggest."""
    ratios = [(difflib.SequenceMatcher(None, name, n).ratio(), n) for n in sorted(set(names))]
    best = max(ratios, default=(0.0, None))
    return best[1] if best[0] >= SIMILAR else None


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


def usage_message(e: click.UsageError) -> str:
    """One line that says what is wrong with the command line, without Click's capitals and box."""
    if isinstance(e, click.NoSuchOption):
        command = e.ctx.command if e.ctx else None
        names = [o for p in (command.params if command else ()) for o in p.opts + p.secondary_opts]
        near = closest(e.option_name, [n for n in names if n.startswith("-")])
        where = f" of {e.ctx.command_path}" if e.ctx else ""
        hint = f"did you mean {near}?" if near else f"{e.ctx.command_path} --help lists them"
        return f"{e.option_name} is not an option{where}; {hint}"
    if isinstance(e, click.BadParameter) and not isinstance(e, click.MissingParameter):
        param = e.param
        if param is not None and param.opts and param.param_type_name == "option":
            name = max(param.opts, key=len)
        else:
            name = param.human_readable_name if param is not None else "a value"
        return f"{name}: {_lower_first(e.message).rstrip('.')}"
    return _lower_first(e.format_message().strip()).rstrip(".")


class _Tidy:
    def main(self, *args, standalone_mode: bool = True, **kwargs):
        """Click's main, with usage errors as one line (see usage_message) and exit code 2."""
        try:
            result = super().main(*args, standalone_mode=False, **kwargs)
        except click.ClickException as e:
            if not standalone_mode:
                raise
            if type(e).__name__ == "NoArgsIsHelpError":  # the help is already on the screen
                sys.exit(e.exit_code)
            message = usage_message(e) if isinstance(e, click.UsageError) else e.format_message()
            print(f"rnngen: error: {message}", file=sys.stderr, flush=True)
            sys.exit(e.exit_code)
        except typer.Abort:
            if not standalone_mode:
                raise
            print("rnngen: interrupted", file=sys.stderr, flush=True)
            sys.exit(130)
        if not standalone_mode:
            return result
        # Without standalone mode, Click returns an Exit's code in place of the command's result.
        sys.exit(result if isinstance(result, int) else 0)

    def _markup(self) -> bool:
        return getattr(self, "rich_markup_mode", None) == "rich" and HAS_RICH

    def _tidy_all(self) -> None:
        self.help = plain(self.help, self._markup())
        for param in self.params:
            _tidy(param, self._markup())
        options = [p for p in self.params if isinstance(p, TyperOption)]
        self._grouped = any(p.rich_help_panel for p in options)
        if self._grouped:
            for param in options:
                param.rich_help_panel = param.rich_help_panel or OTHER
            # Typer shows the panels in the order their first option comes: put them in PANELS'.
            self.params.sort(key=_panel_rank)

    def get_params(self, ctx):
        params = super().get_params(ctx)
        for param in params:  # including those Typer adds later (completion, help)
            _tidy(param, self._markup())
        return params

    def get_help_option(self, ctx):
        option = super().get_help_option(ctx)
        if option is not None:
            _tidy(option, self._markup())
            if self._grouped:
                option.rich_help_panel = OTHER
        return option

    def collect_usage_pieces(self, ctx) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                name = (param.metavar or param.name.upper()) + ("..." if param.nargs != 1 else "")
                pieces.append(name if param.required else f"[{name}]")
        return pieces


def _panel_rank(param) -> float:
    """Where a parameter's panel comes: in PANELS' order, a panel not in PANELS just before OTHER
    (arguments have their own panel: their order among themselves is kept, as parsing needs)."""
    panel = getattr(param, "rich_help_panel", None)
    return PANELS.index(panel) if panel in PANELS else PANELS.index(OTHER) - 0.5


class Command(_Tidy, TyperCommand):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._tidy_all()


class Group(_Tidy, TyperGroup):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._tidy_all()

    def collect_usage_pieces(self, ctx) -> list[str]:
        return [*super().collect_usage_pieces(ctx), self.subcommand_metavar]

    def resolve_command(self, ctx, args):
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            near = closest(name, self.list_commands(ctx))
            hint = (
                f"did you mean {near}?"
                if near
                else "the commands are: " + ", ".join(self.list_commands(ctx))
            )
            raise click.UsageError(f"{name!r} is not an rnngen command; {hint}", ctx)
        return super().resolve_command(ctx, args)
