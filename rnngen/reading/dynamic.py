"""Dynamic evaluation (Krause et al., 2018, "RMS-normalised with a global prior"): the text is read
in segments of n tokens; each is scored first, then the weights take one step on that segment's
mean loss, with the training pass itself (model.loss_and_grads):
    theta <- theta - lr g / (sqrt(MS) + eps) + decay r (theta_0 - theta)
    r = min(sqrt(MS) / mean sqrt(MS), 1 / decay)
MS is each weight's mean squared gradient on training data (training.stats.gradient_stats, stored
in the model file), eps the RMS gradient of the weight's whole matrix (a floor for weights rarely
moved in training), theta_0 the trained weights: weights that move more in training are pulled
back faster. The adapted weights are a copy; the trained ones are never written.

Letters: T positions of a segment, H hidden, E embedding, V vocabulary, R rows of a sparse gradient.
"""

import math

import numpy as np

from ..core import backend
from ..core.layers import RowSparse, Workspace
from ..core.model import join_output, loss_and_grads
from ..errors import ConfigError
from .settings import DynamicSettings


class DynamicWeights:
    """A copy of the trained weights that takes RMS-normalised steps and decays back.

    The step reads and writes every weight once per segment, so it runs chunk by chunk over the
    cores (backend.run_chunked, as optim.Adam): each chunk's arithmetic happens in cache, with the
    same operations in the same order as on whole arrays. The embedding (untied weights) takes
    its gradient as a layers.RowSparse of the segment's tokens; its other rows only decay, and
    the decay is a geometric relaxation (after k steps untouched, theta - theta_0 has shrunk by
    (1 - pull)^k), so it is applied to a row when the row is next read: before a segment's
    forward pass for the rows it uses, and for all rows when `params` is read from outside."""

    def __init__(self, params, cfg, stats: dict, settings: DynamicSettings):
        xp = backend.xp
        self.cfg = cfg
        missing = set(params) - set(stats)
        if missing:
            raise ConfigError(f"the gradient statistics lack {', '.join(sorted(missing))}")
        self.trained = params
        self.settings = settings
        rms = {k: xp.sqrt(xp.asarray(stats[k], dtype=v.dtype)) for k, v in params.items()}
        total = sum(float(r.sum(dtype=xp.float64)) for r in rms.values())
        mean = total / max(sum(r.size for r in rms.values()), 1)
        lr, decay = settings.lr, settings.decay
        self.step_size, self.pull = {}, {}
        for k, r in rms.items():
            # The normaliser has a floor, the weight matrix's own RMS gradient: a weight whose
            # gradient was tiny on the training sample (a rare word's row or column) would
            # otherwise take a huge step on its first gradient here.
            floor = math.sqrt(float(xp.mean(stats[k], dtype=xp.float64))) or 1.0
            self.step_size[k] = lr / (r + r.dtype.type(floor))
            if decay > 0 and mean > 0:
                self.pull[k] = xp.minimum(r * r.dtype.type(decay / mean), r.dtype.type(1.0))
            else:
                self.pull[k] = xp.zeros_like(r)
        self.sparse = not cfg.tie_weights  # the embedding's gradient is row-sparse
        # rows not read wait for their decay (without decay they simply stay as they are)
        self.lazy = self.sparse and bool(xp.any(self.pull["embed"] > 0))
        if self.lazy:  # 1 - pull, each row's factor per step of decay
            self.keep = xp.subtract(self.pull["embed"].dtype.type(1.0), self.pull["embed"])
        self._scratch = {}  # (dtype, slot) -> a reusable buffer
        self.workers = None  # threads for the chunks (None: one per core)
        self.workspace = Workspace()
        self.params = {k: v.copy() for k, v in params.items()}

    @property
    def params(self) -> dict:
        """The adapted weights (every embedding row brought up to date)."""
        if self.lazy:
            self._catch_up(backend.xp.arange(len(self._params["embed"])))
        return self._params

    @params.setter
    def params(self, value: dict) -> None:
        self._params = join_output(value)
        self.steps = 0  # steps taken
        # the step count at which each embedding row was last brought up to date
        self._since = backend.xp.zeros(len(self._params["embed"]), dtype=backend.xp.int64)

    def read(self, inputs, targets, state):
        """Score a segment (T, 1) with the current weights, then step on it: the segment's
        model.LossAndGrads (token_nll and top from before the step)."""
        if self.lazy:
            self._catch_up(backend.xp.unique(inputs))
        result = loss_and_grads(
            self._params, self.cfg, inputs, targets, state, None, self.sparse, self.workspace
        )
        self.update(result.grads)
        return result

    def update(self, grads: dict):
        """theta += pull (theta_0 - theta) - step_size g, in place (the gradients are scratch).
        With lr 0 the weights stay exactly the trained ones. A RowSparse gradient's rows must be
        up to date (read() sees to it); the other rows' decay waits until they are read."""
        xp = backend.xp
        for k, theta in self._params.items():
            g = grads[k]
            if not isinstance(g, RowSparse):
                self._update_dense(k, theta, g)
                continue
            rows = g.rows
            R, E = g.values.shape
            t_rows = xp.take(theta, rows, axis=0)
            diff = self._buffer(theta.dtype, "rows", R * E)[: R * E].reshape(R, E)
            self._step(t_rows, xp.take(self.trained[k], rows, axis=0),
                       self.pull[k][rows], self.step_size[k][rows], g.values, diff)  # fmt: skip
            theta[rows] = t_rows
            self._since[rows] = self.steps + 1
        self.steps += 1

    @staticmethod
    def _step(theta, trained, pull, step_size, g, diff) -> None:
        """The update in place on arrays of one shape (a chunk, or gathered rows), diff scratch:
        the dense pass and the rows both come here, so every weight gets the same operations."""
        xp = backend.xp
        xp.subtract(trained, theta, out=diff)
        diff *= pull
        theta += diff
        g *= step_size
        theta -= g

    def _update_dense(self, k, theta, g) -> None:
        xp = backend.xp
        flat = [a.reshape(-1) for a in (theta, self.trained[k], self.pull[k], self.step_size[k])]
        flat_g = g.reshape(-1)
        size = flat[0].size
        chunk = backend.CHUNK if xp is np else size  # one chunk on a GPU
        if not theta.flags.c_contiguous:  # reshape would copy, and the update would be lost
            raise ValueError("dynamic evaluation updates the weights in place: need contiguous")

        def work(i, slot):
            lo = i * chunk
            tc, t0, pc, sc = (a[lo : lo + chunk] for a in flat)
            diff = self._buffer(tc.dtype, slot, min(chunk, size))[: tc.size]
            self._step(tc, t0, pc, sc, flat_g[lo : lo + chunk], diff)

        backend.run_chunked(work, -(-size // chunk), self.workers)

    def _catch_up(self, rows) -> None:
        """Apply the decay the embedding rows `rows` have been spared since they were last up to
        date: theta = theta_0 + (theta - theta_0) (1 - pull)^k after k steps untouched."""
        xp = backend.xp
        k = self.steps - self._since[rows]
        stale = k > 0
        if not bool(stale.any()):
            return
        rows, k = rows[stale], k[stale]
        theta, trained = self._params["embed"], self.trained["embed"]
        t_rows, t0 = xp.take(theta, rows, axis=0), xp.take(trained, rows, axis=0)
        factor = self.keep[rows] ** k[:, None].astype(self.keep.dtype)
        t_rows -= t0
        t_rows *= factor
        t_rows += t0
        theta[rows] = t_rows
        self._since[rows] = self.steps

    def _buffer(self, dtype, slot, n):
        buf = self._scratch.get((dtype, slot))
        if buf is None or buf.size < n:
            buf = self._scratch[(dtype, slot)] = backend.xp.empty(n, dtype)
        return buf

    def distance(self) -> float:
        """Root-mean-square distance of the weights from the trained ones."""
        xp = backend.xp
        params = self.params
        sq = sum(float(xp.square(params[k] - v).sum()) for k, v in self.trained.items())
        return math.sqrt(sq / sum(v.size for v in self.trained.values()))
