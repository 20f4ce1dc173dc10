"""rnngen: train a recurrent neural network language model on a book and generate text from it."""

import os
import sys

__version__ = "0.2.0"

# OpenBLAS (NumPy's BLAS) keeps its idle worker threads spinning for 2^28 cycles, about 0.1 s,
# after every matrix product. A training step alternates products with elementwise passes (the
# softmax, the optimiser) that rnngen spreads over the cores, so a spinning worker takes one of
# them and those passes ran no faster on two cores than on one. After 2^20 cycles (about 0.4 ms)
# the workers sleep instead: long enough to stay awake between the small products of the
# recurrence, short enough to free the core for the passes (the softmax pass of benchmark config
# a: about 10.5 ms before, about 7 ms after). OpenBLAS reads this when NumPy loads it, so it only
# takes effect when rnngen is imported before NumPy (as the command line does); a value already
# set in the environment is kept.
if "numpy" not in sys.modules:
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "20")


def __getattr__(name: str):
    """rnngen.load and rnngen.LanguageModel (the Python API, reading/lm.py), imported on first
    use: `import rnngen` stays cheap, and the OpenBLAS setting above comes before NumPy loads."""
    if name in ("load", "LanguageModel"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'rnngen' has no attribute {name!r}")
