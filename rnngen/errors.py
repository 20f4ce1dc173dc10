"""Exceptions the core raises for expected failures.

Each one carries the process exit code the CLI should use, so `cli.py` can turn any of them into
one line on stderr without knowing where it came from. Codes follow BSD sysexits where one fits.
"""

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
    """Options that contradict each other or the model file."""

    exit_code = EXIT_USAGE


class MissingExtraError(RnngenError):
    """An optional package that a feature needs is not installed."""

    exit_code = EXIT_UNAVAILABLE
