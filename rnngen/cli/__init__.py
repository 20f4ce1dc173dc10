"""The `rnngen` command line: one module per command, the options they share, help text,
progress displays and charts. It parses, prints and maps errors to exit codes; the work is done
by rnngen.api and the layers below it.

May import: anything in rnngen.
"""
