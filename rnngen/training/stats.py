"""Gradient statistics for dynamic evaluation: each weight's mean squared gradient on training
text, computed once after training and stored in the model file."""

import numpy as np

from ..core import backend
from ..core.layers import Workspace
from ..core.model import init_state, loss_and_grads
from ..errors import ConfigError
from ..reading.settings import DynamicSettings
from ..text.batching import iter_batches, make_streams

# Streams side by side and tokens read (at most) from the training text.
STATS_BATCH = 16
STATS_TOKENS = 100_000


def gradient_stats(
    params,
    cfg,
    ids,
    length: int = DynamicSettings.length,
    batch: int = STATS_BATCH,
    keep_going=None,
    on_progress=None,
) -> dict:
    """Each weight's mean squared gradient of the mean loss of segments of `length` tokens,
    `batch` streams side by side, over at most STATS_TOKENS tokens of ids (training text), no
    dropout: name -> float32 array shaped like the parameter. keep_going() is asked before every
    segment after the first (False: stop there, the statistics are those of the segments read),
    on_progress(done, total) hears the tokens read."""
    xp = backend.xp
    ids = np.asarray(ids)[: STATS_TOKENS + 1]
    batch = max(1, min(batch, (len(ids) - 1) // max(length, 1)))
    if len(ids) < 2:
        raise ConfigError("gradient statistics need a text of at least two tokens")
    streams = make_streams(ids, batch)
    h = init_state(cfg, batch, params["embed"].dtype)
    sums = {k: xp.zeros(v.shape, dtype=xp.float64) for k, v in params.items()}
    steps = done = 0
    total = streams.size
    workspace = Workspace()
    for inputs, targets in iter_batches(streams, length):
        if steps and keep_going is not None and not keep_going():
            break
        result = loss_and_grads(params, cfg, xp.asarray(inputs), xp.asarray(targets), h, None,
                                False, workspace)  # fmt: skip
        h = result.state
        for k, g in result.grads.items():
            sums[k] += xp.square(g, dtype=xp.float64)
        steps += 1
        done += inputs.size
        if on_progress is not None:
            on_progress(done, total)
    return {k: backend.to_numpy(s / max(steps, 1)).astype(np.float32) for k, s in sums.items()}


def stats_tokens(n_train: int) -> int:
    """The training tokens a full statistics pass reads."""
    return max(min(n_train - 1, STATS_TOKENS), 0)
