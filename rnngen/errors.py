"""Exceptions the core raises for expected failures.

Each one carries the process exit code the CLI should use, so `cli.py` can turn any of them into
one line on stderr without knowing where it came from. Codes follow BSD sysexits where one fits.
"""

import re

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_USAGE = 2
EXIT_DATAERR = 65  # the input exists but its content is unusable
EXIT_NOINPUT = 66  # the input does not exist or cannot be opened
EXIT_UNAVAILABLE = 69  # a service, here an optional package, is unavailable
EXIT_CANTCREAT = 73  # an output file cannot be written
EXIT_INTERRUPTED = 130


class RnngenError(Exception):
    """Base class: an expected failure with a one-line message that says what to do."""

    exit_code = EXIT_UNEXPECTED


class InputDataError(RnngenError):
    """Input text or data that cannot be used (empty, binary, not UTF-8, too short)."""

    exit_code = EXIT_DATAERR


class MissingInputError(RnngenError):
    """An input file that does not exist or cannot be read."""

    exit_code = EXIT_NOINPUT


class ModelFileError(RnngenError):
    """A model or encoded-corpus file that is not a valid rnngen file."""

    exit_code = EXIT_DATAERR


class UnknownWordError(RnngenError):
    """A start word that the model's vocabulary does not contain."""

    exit_code = EXIT_DATAERR


class OutputError(RnngenError):
    """An output file that cannot be written."""

    exit_code = EXIT_CANTCREAT


class ConfigError(RnngenError):
    """Settings that are out of range or contradict each other or the model file.

    The settings it is about are named by their fields (`cache.size`, `model.hidden`), never by a
    command-line flag, so that each reader names them its own way: str() gives the fields, the
    command line its flags (cli/options.py FLAGS), a model file check "the model file's tuned
    dynamic.length". The message refers to its fields as {0}, {1}, ...; with fields given and no
    {0} in it, it follows the first: ConfigError("must be at least 1, got 0", "cache.size").
    """

    exit_code = EXIT_USAGE

    def __init__(self, message: str, *fields: str):
        self.fields = fields
        self.template = message if not fields or "{0}" in message else "{0} " + message
        super().__init__(self.named())

    def named(self, name=str) -> str:
        """The message with each field named by name(field)."""
        return re.sub(r"\{(\d)\}", lambda m: name(self.fields[int(m.group(1))]), self.template)

    def __reduce__(self):  # pickles (across MPI ranks, say) with its fields
        return (type(self), (self.template, *self.fields))


class MissingExtraError(RnngenError):
    """An optional package that a feature needs is not installed."""

    exit_code = EXIT_UNAVAILABLE
