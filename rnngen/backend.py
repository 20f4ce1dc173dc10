"""The one place the array module comes from.

Layers and the model call `backend.xp` instead of importing NumPy directly, so that a GPU array
library with NumPy's interface (CuPy) can be swapped in with `use()` without touching them.
Host-side code (tokenising, file I/O, sampling bookkeeping) keeps using NumPy.
"""

import numpy

xp = numpy

# Elements per chunk for memory-bound elementwise work done chunk by chunk on the CPU (the
# optimiser updates): 16384 float32 values are 64 KB, so a chunk of each operand stays in cache.
CHUNK = 16384


def use(module) -> None:
    """Make `module` (NumPy or a NumPy-compatible array library) the array module of the core."""
    global xp
    xp = module


def to_numpy(array) -> numpy.ndarray:
    """A host NumPy array of an array from the current array module."""
    if type(array) is numpy.ndarray:
        return array
    if hasattr(array, "get"):
        return array.get()  # CuPy's device-to-host copy
    return numpy.asarray(array)
