"""A group of options shared by several commands is declared once (cli/options.py option_group):
the decorated command shows each option in --help as before and receives one object."""

import inspect

import typer
from typer.testing import CliRunner

from rnngen.cli.helptext import Command, Group
from rnngen.cli.options import ADAPT_OPTIONS, AdaptOptions, adaptation_options, cache_options

runner = CliRunner()


def app_of(decorator):
    """A one-command app whose command prints the group object it was handed."""
    app = typer.Typer(cls=Group)

    @decorator
    def show(name: str, adapt: AdaptOptions = AdaptOptions(), loud: bool = False):
        print(repr((name, adapt, loud)))

    app.command(cls=Command)(show)
    app.command("other", cls=Command)(lambda: None)  # keeps `show` a subcommand
    return app, show


def test_the_command_gets_one_object_of_the_options_given():
    app, _ = app_of(adaptation_options)
    args = ["show", "x", "--cache-size", "7", "--dynamic", "--dynamic-len", "9", "--loud"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    expected = AdaptOptions(cache_size=7, dynamic=True, dynamic_len=9)
    assert result.stdout.strip() == repr(("x", expected, True))
    plain = runner.invoke(app, ["show", "y"])
    assert plain.stdout.strip() == repr(("y", AdaptOptions(), False))
    assert AdaptOptions(cache_theta=2.0).cache_values() == {"size": None, "theta": 2.0, "lam": None}


def test_the_signature_holds_the_options_in_place_of_the_group():
    _, show = app_of(adaptation_options)
    names = list(inspect.signature(show).parameters)
    assert names == ["name", *ADAPT_OPTIONS, "loud"]
    _, cache_only = app_of(cache_options)
    names = list(inspect.signature(cache_only).parameters)
    assert names == ["name", "cache", "cache_size", "cache_theta", "cache_lambda", "loud"]


def test_a_command_with_only_the_cache_refuses_dynamic():
    app, _ = app_of(cache_options)
    result = runner.invoke(app, ["show", "x", "--dynamic"])
    assert result.exit_code == 2 and "--dynamic is not an option" in result.stderr
