"""Dynamic evaluation (Krause et al., 2018, "RMS-normalised with a global prior"): the text is read
in segments of n tokens; each is scored first, then the weights take one step on that segment's
mean loss:
    theta <- theta - lr g / (sqrt(MS) + eps) + decay r (theta_0 - theta)
    r = min(sqrt(MS) / mean sqrt(MS), 1 / decay)
MS is each weight's mean squared gradient on training data (training.stats.gradient_stats, stored
in the model file), eps the RMS gradient of the weight's whole matrix (a floor for weights rarely
moved in training), theta_0 the trained weights: weights that move more in training are pulled
back faster. The adapted weights are a copy; the trained ones are never written.

What is adapted (DynamicSettings.params):
  "all"     every weight, with the exact gradient (the method above).
  "output"  the output layer only, at the units of a set S of words: the segment's targets and
            the 2T words with the most probability summed over its T positions (W's rows of S
            when tied, else its columns; the bias's entries of S). No backward pass through the
            network and no product over the whole vocabulary beyond the forward one; the other
            weights take no step at all (neither gradient nor decay).

The guard: a step that leaves a weight non-finite (or so large that its chunk's sum of squares
overflows) is dropped at once. A segment whose adapted loss is non-finite, or above the mean
adapted loss so far by more than GUARD_MARGIN (cheap: no extra work), is scored by the trained
weights as well, from the same state; if the adapted loss is non-finite or above that static loss
by more than GUARD_MARGIN, the previous step is undone and the segment scored again with the
weights from before it. `dropped` counts the steps dropped either way. The guard judges the
weights, so both runs start from the same state; it costs a forward pass per suspicious segment.

Letters: T positions of a segment, M = T*N positions, H hidden, E embedding, V vocabulary,
R rows (or columns) of a sparse update.
"""

import math
from typing import NamedTuple

import numpy as np

from ..core import backend
from ..core.cells import sequence_backward
from ..core.layers import RowSparse, Workspace, embedding_backward, softmax_output_backward
from ..core.model import (
    LossAndGrads,
    _forward,
    _output_forward,
    _position_nll,
    join_output,
    layer_prefix,
    loss_and_grads,
    token_scores,
)
from ..errors import ConfigError
from .settings import DynamicSettings

GUARD_MARGIN = 1.0  # nats per token above the static loss at which a step counts as harmful


class Columns(NamedTuple):
    """A gradient that is zero outside some columns (the untied output matrix's words)."""

    cols: object  # (R,) distinct column ids, increasing
    values: object  # (H+1, R)


class TiedProduct(NamedTuple):
    """The tied output matrix's gradient (V, E), left as its factors: rows[lo:hi] of it are
    d[:, lo:hi].T @ h plus the embedding's rows, made chunk by chunk inside the step."""

    d: object  # (M, V) the scaled softmax minus one-hot
    h: object  # (M, E) the last layer's outputs
    rows: object  # (R,) the segment's input tokens, increasing
    values: object  # (R, E) the embedding's gradient at them


def _quiet():
    """Overflow in an adapted pass is caught by the guard; NumPy's own warning is not for users."""
    return np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore")


class DynamicWeights:
    """A copy of the trained weights that takes RMS-normalised steps and decays back.

    A dense weight's step reads it and writes the new value into a second buffer (chunk by chunk
    over the cores, each chunk's arithmetic in cache); the buffers then swap, so undoing a step is
    a swap back. The untied embedding takes its gradient as a layers.RowSparse of the segment's
    tokens; its other rows only decay, and the decay is a geometric relaxation (after k steps
    untouched, theta - theta_0 has shrunk by (1 - pull)^k), so it is applied to a row when the
    row is next read. Rows changed in place are logged until the next step is accepted."""

    def __init__(self, params, cfg, stats: dict, settings: DynamicSettings, margin=GUARD_MARGIN):
        xp = backend.xp
        self.cfg = cfg
        missing = set(params) - set(stats)
        if missing:
            raise ConfigError(f"the gradient statistics lack {', '.join(sorted(missing))}")
        if settings.params == "output" and cfg.softmax != "full":
            raise ConfigError("dynamic params 'output' needs the full softmax; use params 'all'")
        self.trained = params
        self.settings = settings
        self._set_rates(stats)
        self.sparse = not cfg.tie_weights  # the embedding's gradient is row-sparse
        # rows not read wait for their decay (without decay they simply stay as they are)
        self.lazy = self.sparse and settings.params == "all"
        self.lazy = self.lazy and bool(xp.any(self.pull["embed"] > 0))
        if self.lazy:  # 1 - pull, each row's factor per step of decay
            self.keep = xp.subtract(self.pull["embed"].dtype.type(1.0), self.pull["embed"])
        self._scratch = {}  # (dtype, slot) -> a reusable buffer
        self.workers = None  # threads for the chunks (None: one per core)
        self.workspace = Workspace()
        self._static_workspace = Workspace()
        self.margin = margin  # the guard's margin in nats per token (None: no guard)
        self.dropped = 0  # steps dropped by the guard
        self.checks = 0  # segments the guard scored with the trained weights too
        self.params = {k: v.copy() for k, v in params.items()}

    def _set_rates(self, stats) -> None:
        with _quiet():  # a huge lr overflows here; its first step is then dropped
            self._set_rates_of(stats)

    def _set_rates_of(self, stats) -> None:
        xp = backend.xp
        rms = {k: xp.sqrt(xp.asarray(stats[k], dtype=v.dtype)) for k, v in self.trained.items()}
        total = sum(float(r.sum(dtype=xp.float64)) for r in rms.values())
        mean = total / max(sum(r.size for r in rms.values()), 1)
        lr, decay = self.settings.lr, self.settings.decay
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

    @property
    def params(self) -> dict:
        """The adapted weights (every embedding row brought up to date)."""
        if self.lazy:
            self._catch_up(backend.xp.arange(len(self._params["embed"])))
        return self._params

    @params.setter
    def params(self, value: dict) -> None:
        self._params = join_output(value)
        self._spare = {k: backend.xp.empty_like(v) for k, v in self._params.items()}
        self.steps = 0  # steps taken
        # the step count at which each embedding row was last brought up to date
        self._since = backend.xp.zeros(len(self._params["embed"]), dtype=backend.xp.int64)
        self._log = []  # (key, index, old values, rows or None, old _since) since the last step
        self._swapped = []  # dense keys the last step swapped
        self._undoable = False  # the last step can still be undone
        self._loss_sum, self._loss_count = 0.0, 0  # adapted losses of the segments read

    # --- reading --------------------------------------------------------------------------------

    def read(self, inputs, targets, state):
        """Score a segment (T, 1) with the current weights, then step on it: the segment's
        model.LossAndGrads (token_nll and top from before the step)."""
        result = self.score(inputs, targets, state)
        with _quiet():
            nll = result.token_nll
            self._loss_sum += float(nll.sum())
            self._loss_count += nll.size
            self.update(result.grads)
        return result

    def score(self, inputs, targets, state):
        """Score positions (T, 1) with the current weights, the guard judging the last step on
        them (it may undo it), without a step: `read` without its update, for a segment whose
        end is not known yet (the end of a text)."""
        with _quiet():
            result = self._score(inputs, targets, state)
            guarded = self._undoable and self.margin is not None
            if guarded and self._harmful(result, inputs, targets, state):
                self._undo()
                result = self._score(inputs, targets, state)
        return result

    def _score(self, inputs, targets, state):
        if self.lazy:
            self._catch_up(backend.xp.unique(inputs))
        if self.settings.params == "output":
            return self._output_pass(inputs, targets, state)
        if self.cfg.softmax == "full":
            return self._full_pass(inputs, targets, state)
        return loss_and_grads(
            self._params, self.cfg, inputs, targets, state, None, self.sparse, self.workspace
        )

    def _harmful(self, result, inputs, targets, state) -> bool:
        """The guard's test of the last step on the segment it scores (see the module's doc)."""
        loss = float(result.token_nll.mean())
        if math.isfinite(loss) and self._loss_count:
            if loss <= self._loss_sum / self._loss_count + self.margin:
                return False  # not suspicious: no static pass
        self.checks += 1
        static = token_scores(
            self.trained, self.cfg, inputs, targets, state, self._static_workspace
        )
        return not math.isfinite(loss) or loss > float(static.token_nll.mean()) + self.margin

    # --- the gradient passes --------------------------------------------------------------------

    def _full_pass(self, inputs, targets, state) -> LossAndGrads:
        """The exact loss and gradients (full softmax): loss_and_grads' passes, with the tied
        output matrix's gradient made in the embedding's (V, E) layout by one product."""
        cfg, params = self.cfg, self._params
        T, N = inputs.shape
        fwd = _forward(params, cfg, inputs, state, None)
        embed_cache, cell_caches, _ = fwd.caches
        scale = 1.0 / (T * N)
        nll, out = _output_forward(params, cfg, fwd.top, targets.reshape(T * N), self.workspace)
        token_nll = _position_nll(cfg, out).reshape(T, N)
        grads = {}
        if cfg.tie_weights:
            dx, grads["embed"], grads["out.b"] = self._tied_output_backward(out, scale)
        else:
            dx, grads["out.Wb"] = softmax_output_backward(out, scale, self.workspace)
        dx = dx.reshape(T, N, cfg.hidden)
        dstate0 = backend.xp.empty_like(state)
        for layer in range(cfg.layers - 1, -1, -1):
            dx, dstate0[layer], layer_grads = sequence_backward(cfg.cell, dx, cell_caches[layer])
            prefix = layer_prefix(cfg, layer)
            grads.update({prefix + k: v for k, v in layer_grads.items()})
        rows = embedding_backward(dx, embed_cache, sparse=True)
        if cfg.tie_weights:
            grads["embed"] = grads["embed"]._replace(rows=rows.rows, values=rows.values)
        else:
            grads["embed"] = rows
        return LossAndGrads(nll * scale, grads, dstate0, fwd.state, token_nll, fwd.top)

    def _tied_output_backward(self, out, scale):
        """dtop (M, H), the output matrix's gradient's factors and the bias's gradient (V,),
        from the forward cache (its exponentials become the scaled softmax minus one-hot)."""
        xp = backend.xp
        h, expz, s, targets = out.h, out.expz, out.s, out.targets
        out.spent[0] = True
        M = len(h)
        expz[xp.arange(M), targets] -= s  # expz / s is now softmax - one_hot
        inv = (scale / s).astype(h.dtype)  # (M,)
        dtop = expz @ self._params["embed"]  # (M, E)
        dtop *= inv[:, None]
        return dtop, TiedProduct(expz, h * inv[:, None], None, None), inv @ expz

    def _output_pass(self, inputs, targets, state) -> LossAndGrads:
        """The forward pass and the output layer's gradient at the words S (module doc)."""
        xp, cfg, params = backend.xp, self.cfg, self._params
        T, N = inputs.shape
        M, scale = T * N, 1.0 / (T * N)
        fwd = _forward(params, cfg, inputs, state, None)
        y = targets.reshape(M)
        nll, out = _output_forward(params, cfg, fwd.top, y, self.workspace)
        token_nll = _position_nll(cfg, out).reshape(T, N)
        inv = (1.0 / out.s).astype(out.expz.dtype)  # (M,)
        mass = inv @ out.expz  # (V,) probability summed over the positions
        k = min(2 * M, len(mass))
        words = xp.unique(xp.concatenate([xp.argpartition(mass, -k)[-k:], y]))  # S, (R,)
        d = out.expz[:, words] * (inv * scale)[:, None]  # (M, R) scaled softmax at S
        d[xp.arange(M), xp.searchsorted(words, y)] -= scale  # minus one-hot
        h = fwd.top
        if cfg.tie_weights:
            grads = {"embed": RowSparse(words, d.T @ h, params["embed"].shape),
                     "out.b": RowSparse(words, d.sum(axis=0), params["out.b"].shape)}  # fmt: skip
        else:
            h1 = xp.concatenate([h, xp.ones((M, 1), h.dtype)], axis=1)  # [h 1]
            grads = {"out.Wb": Columns(words, h1.T @ d)}  # (H+1, R)
        return LossAndGrads(nll * scale, grads, None, fwd.state, token_nll, fwd.top)

    # --- the step -------------------------------------------------------------------------------

    def update(self, grads: dict):
        """theta += pull (theta_0 - theta) - step_size g for every weight in grads (the gradients
        are scratch). With lr 0 the weights stay exactly the trained ones. A RowSparse gradient's
        rows must be up to date (read() sees to it). A step that leaves a weight non-finite is
        dropped at once."""
        self._log = []
        finite = True
        dense = {}
        for k, g in grads.items():
            if isinstance(g, RowSparse):
                finite &= self._update_units(k, (g.rows,), g.values, g.rows)
            elif isinstance(g, Columns):
                finite &= self._update_units(k, (slice(None), g.cols), g.values, None)
            else:
                dense[k] = g
        finite &= self._update_dense(dense)
        if not finite:
            self._restore_log()
            self.dropped += 1
            self._undoable = False
            return
        for k in dense:
            self._params[k], self._spare[k] = self._spare[k], self._params[k]
        self._swapped = list(dense)
        self.steps += 1
        self._undoable = True

    def _undo(self) -> None:
        """Back to the weights before the last step (the guard found it harmful)."""
        self._restore_log()
        for k in self._swapped:
            self._params[k], self._spare[k] = self._spare[k], self._params[k]
        self._swapped = []
        self.steps -= 1
        self.dropped += 1
        self._undoable = False

    def _restore_log(self) -> None:
        for key, index, old, rows, since in reversed(self._log):
            self._params[key][index] = old
            if rows is not None:
                self._since[rows] = since
        self._log = []

    def _update_units(self, k, index, g, rows) -> bool:
        """The step on the rows or columns `index` of weight k (in place, logged)."""
        xp = backend.xp
        theta = self._params[k]
        t = theta[index]  # a copy: the rows' current values
        self._log.append((k, index, t.copy(), rows, None if rows is None else self._since[rows]))
        diff = xp.empty_like(t)
        self._step(t, self.trained[k][index], self.pull[k][index], self.step_size[k][index],
                   g, diff, t)  # fmt: skip
        theta[index] = t
        if rows is not None and self.lazy:
            self._since[rows] = self.steps + 1
        flat = t.reshape(-1)
        return math.isfinite(float(flat @ flat))

    @staticmethod
    def _step(theta, trained, pull, step_size, g, diff, out) -> None:
        """out = theta + pull (trained - theta) - step_size g, on arrays of one shape (a chunk, or
        gathered rows; out may be theta), diff scratch: every weight gets the same operations."""
        xp = backend.xp
        xp.subtract(trained, theta, out=diff)
        diff *= pull
        xp.add(theta, diff, out=out)
        g *= step_size
        out -= g

    def _update_dense(self, grads: dict) -> bool:
        """The step on the weights of grads, written into their spare buffers, in chunks of
        about backend.CHUNK weights spread over the cores in one go; False if not finite."""
        xp = backend.xp
        tasks = []
        for k, g in grads.items():
            arrays = (self._params[k], self.trained[k], self.pull[k], self.step_size[k])
            if not all(a.flags.c_contiguous for a in (*arrays, self._spare[k])):
                raise ValueError("dynamic evaluation needs contiguous weights")
            if isinstance(g, TiedProduct):  # chunks of whole rows, each row's gradient made there
                rows = max(1, backend.CHUNK // arrays[0].shape[1]) if xp is np else len(g.d.T)
                where = xp.searchsorted(g.rows, xp.arange(0, len(arrays[0]) + rows, rows))
                tasks += [(k, lo, lo + rows, g, where[i : i + 2])
                          for i, lo in enumerate(range(0, len(arrays[0]), rows))]  # fmt: skip
                continue
            size = arrays[0].size
            chunk = backend.CHUNK if xp is np else size  # one chunk on a GPU
            tasks += [(k, lo, lo + chunk, g.reshape(-1), None) for lo in range(0, size, chunk)]
        sums = [0.0] * len(tasks)

        def work(i, slot):
            k, lo, hi, g, where = tasks[i]
            with _quiet():
                sums[i] = self._update_chunk(k, lo, hi, g, where, slot)

        backend.run_chunked(work, len(tasks), self.workers)
        return math.isfinite(sum(sums))

    def _update_chunk(self, k, lo, hi, g, where, slot) -> float:
        """One chunk of the dense step (flat weights lo:hi, or rows lo:hi for a TiedProduct);
        the new weights' sum of squares (inf or NaN if any is)."""
        xp = backend.xp
        theta, t0, pull, step, out = (
            a[lo:hi] if where is not None else a.reshape(-1)[lo:hi]
            for a in (self._params[k], self.trained[k], self.pull[k], self.step_size[k],
                      self._spare[k])
        )  # fmt: skip
        if where is not None:  # the tied output matrix: this chunk's rows of d.T @ h
            gc = self._buffer(theta.dtype, ("g", slot), theta.size)[: theta.size]
            gc = gc.reshape(theta.shape)
            xp.matmul(g.d[:, lo:hi].T, g.h, out=gc)
            a, b = int(where[0]), int(where[1])
            gc[g.rows[a:b] - lo] += g.values[a:b]
        else:
            gc = g[lo:hi]
        diff = self._buffer(theta.dtype, slot, theta.size)[: theta.size].reshape(theta.shape)
        self._step(theta, t0, pull, step, gc, diff, out)
        flat = out.reshape(-1)
        return float(flat @ flat)

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
        self._log.append(("embed", (rows,), t_rows.copy(), rows, self._since[rows]))
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
