"""Cutting a token stream into minibatches for truncated backpropagation through time.

The ids are split into N contiguous streams (as many as the batch size) laid side by side,
time-major: column n is stream n. A batch is the next T rows as inputs and the same rows shifted by
one as targets, so the hidden state at the end of one batch is the right start for the next.
"""

import numpy as np

from ..errors import InputDataError


def make_streams(ids: np.ndarray, n_streams: int) -> np.ndarray:
    """ids (n_tokens,) -> streams (L, N): N contiguous pieces of length L, the remainder dropped.

    A view, not a copy, so ids memory-mapped from an encoded corpus stay on disk until a batch
    needs them."""
    length = len(ids) // n_streams
    if length < 2 and n_streams == 1:
        raise InputDataError(
            f"the text has {_tokens(len(ids))}, too few: at least 2 are needed; give a longer text"
        )
    if length < 2:
        raise InputDataError(
            f"the text has {_tokens(len(ids))}, too few for {n_streams} parallel streams "
            f"(--batch-size): at least {2 * n_streams} are needed; give a longer text or a "
            "smaller --batch-size"
        )
    return ids[: length * n_streams].reshape(n_streams, length).T


def _tokens(n: int) -> str:
    return f"{n} token" if n == 1 else f"{n} tokens"


def n_batches(streams: np.ndarray, seq_len: int) -> int:
    return -(-(len(streams) - 1) // seq_len)  # ceil: the last batch may be shorter


def iter_batches(streams: np.ndarray, seq_len: int):
    """Yield (inputs, targets), each (T, N) with T = seq_len (the last may be shorter)."""
    for start in range(0, len(streams) - 1, seq_len):
        stop = min(start + seq_len, len(streams) - 1)
        yield (
            np.ascontiguousarray(streams[start:stop]),
            np.ascontiguousarray(streams[start + 1 : stop + 1]),
        )


def split_tail(ids: np.ndarray, frac: float):
    """Split off the last `frac` of the ids as a contiguous validation part."""
    n_val = int(round(len(ids) * frac))
    if frac <= 0 or n_val < 2:
        return ids, ids[:0]
    return ids[:-n_val], ids[-n_val:]
