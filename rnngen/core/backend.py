"""The one place the array module comes from.

Layers and the model call `backend.xp` instead of importing NumPy directly, so that a GPU array
library with NumPy's interface (CuPy) can be swapped in with `use()` without touching them.
Host-side code (tokenising, file I/O, sampling bookkeeping) keeps using NumPy.
"""

import ctypes
import os
from concurrent.futures import ThreadPoolExecutor

import numpy

xp = numpy

# Elements per chunk for memory-bound elementwise work done chunk by chunk on the CPU (the
# optimiser updates). Each chunk's arithmetic stays in the caches; larger chunks mean fewer NumPy
# calls, and fewer hand-overs of Python's lock between the threads that share the chunks. Adam on
# a 256 x 10,000 matrix, two threads, here: 4.4, 3.8 and 3.2 ms with chunks of 65,536, 131,072
# and 262,144 (on 512 x 33,278: 21.9, 18.4 and 17.4 ms).
CHUNK = 262144

_pool = None
_threads = None  # set by set_threads: the cores the work may use; None: all of them


def cores() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def cpu_workers() -> int:
    """Threads for chunked elementwise work on the CPU: as many as set_threads said, else one
    per core this process may use (at most 8: beyond, the chunks are too few to share)."""
    return _threads if _threads is not None else min(cores(), 8)


# The calls that set and get a BLAS library's thread count, as NumPy's wheels and builds name
# them: the OpenBLAS NumPy bundles (symbols prefixed, 64-bit integers), plain OpenBLAS, and MKL.
_BLAS_SET = (
    "scipy_openblas_set_num_threads64_",
    "scipy_openblas_set_num_threads",
    "openblas_set_num_threads64_",
    "openblas_set_num_threads",
    "MKL_Set_Num_Threads",
)
_BLAS_GET = tuple(name.replace("set_num", "get_num") for name in _BLAS_SET[:4]) + (
    "MKL_Get_Max_Threads",
)
_blas_default = None  # the BLAS's own thread count, before set_threads changed it


def _blas_libraries() -> list:
    """The BLAS libraries loaded into this process (NumPy's among them), from the memory map."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "/" in line}
    except OSError:  # not Linux: nothing to set this way
        return []
    names = ("openblas", "mkl_rt", "libblas", "libmkl")
    return sorted(p for p in paths if any(n in os.path.basename(p).lower() for n in names))


def _blas_functions(names) -> list:
    """The first of `names` that each loaded BLAS library has."""
    found = []
    for path in _blas_libraries():
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        function = next((getattr(library, n) for n in names if hasattr(library, n)), None)
        if function is not None:
            found.append(function)
    return found


def blas_threads() -> int | None:
    """The thread count of the BLAS NumPy's matrix products run in, or None if it cannot say."""
    getters = _blas_functions(_BLAS_GET)
    return int(getters[0]()) if getters else None


def set_threads(n: int | None) -> None:
    """Use n cores for the work on the CPU, as llama.cpp's -t does: the threads of run_chunked,
    and the BLAS's for matrix products (told through ctypes, as NumPy is loaded already). None:
    every core for the pool, and the BLAS back to its own count (OPENBLAS_NUM_THREADS, say)."""
    global _threads, _blas_default
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        from ..errors import ConfigError

        raise ConfigError(f"must be a whole number of at least 1, got {n!r}", "threads")
    if n is None and _threads is None:
        return  # nothing was changed
    if _blas_default is None:
        _blas_default = blas_threads()
    _threads = n
    count = n if n is not None else _blas_default
    for setter in _blas_functions(_BLAS_SET) if count is not None else ():
        setter(ctypes.c_int(count))


def run_chunked(work, n_chunks: int, workers: int | None = None) -> None:
    """Call work(i, slot) for every chunk i in range(n_chunks), spread over CPU threads; slot
    (0 .. workers-1) says which thread's scratch buffers to use. NumPy releases the GIL inside its
    elementwise loops, so the threads run in parallel; each element's arithmetic is the same
    whatever the split, so results do not depend on the thread count."""
    global _pool
    workers = min(workers or cpu_workers(), n_chunks)
    if workers <= 1:
        for i in range(n_chunks):
            work(i, 0)
        return
    if _pool is None or _pool._max_workers < workers:
        _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rnngen")

    def lane(slot):
        for i in range(slot, n_chunks, workers):
            work(i, slot)

    for future in [_pool.submit(lane, slot) for slot in range(workers)]:
        future.result()


def use(module) -> None:
    """Make `module` (NumPy or a NumPy-compatible array library) the array module of the core."""
    global xp
    xp = module


DEVICES = ("cpu", "gpu")


def use_device(name: str) -> None:
    """Run the core on "cpu" (NumPy) or "gpu" (CuPy, the optional `gpu` extra)."""
    from ..errors import ConfigError, MissingExtraError

    if name == "cpu":
        use(numpy)
        return
    if name != "gpu":
        raise ConfigError(f"unknown device {name!r}; give --device cpu or gpu")
    try:
        import cupy
    except ImportError:
        raise MissingExtraError(
            "--device gpu needs CuPy; install it with: pip install 'rnngen[gpu]' "
            "(on a machine with an NVIDIA GPU and CUDA 12)"
        ) from None
    try:
        found = cupy.cuda.runtime.getDeviceCount()
    except Exception:  # no driver, no device: CuPy raises its own runtime error types
        found = 0
    if found == 0:
        raise MissingExtraError("--device gpu: CuPy finds no GPU here; use --device cpu")
    use(cupy)


def available_memory() -> int | None:
    """Bytes the current device can still allocate: on the GPU its free memory, on the CPU the
    kernel's estimate of what can be had without swapping (MemAvailable); None where unknown."""
    if xp is not numpy:
        try:
            return int(xp.cuda.runtime.memGetInfo()[0])
        except Exception:  # not CuPy, or no device: CuPy raises its own runtime error types
            return None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def to_numpy(array) -> numpy.ndarray:
    """A host NumPy array of an array from the current array module."""
    if type(array) is numpy.ndarray:
        return array
    if hasattr(array, "get"):
        return array.get()  # CuPy's device-to-host copy
    return numpy.asarray(array)
