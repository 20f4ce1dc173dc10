"""The training loop: minibatches of parallel streams, truncated BPTT, clipping, an optimiser, and
validation with the best model kept.

Two schedules. By epochs (the default): validation after every epoch, the learning rate divided
by `lr_decay` after an epoch without improvement, and a stop after `patience` of them or after
`epochs`. By time (`time_limit` seconds, `train --time`): the run is planned for the budget by
schedule.Budget, which re-estimates from the measured step and validation times how many steps
fit, decays the learning rate linearly to zero at the planned end, validates every `val_every`
steps (or about 8 times a run), and stops in time for a last validation; `epochs`, when given,
also bounds it (whichever ends first).

The loop never prints. It reports through an optional `on_event` callback (Started once the data
is cut into batches, Progress during an epoch, EpochEnd after an epoch's validation, Validated
after a validation of a run with a time budget), hands each new best model to `on_best`, and hands
its whole `TrainState` to `on_checkpoint` every `checkpoint_every` steps and when `should_stop()`
turns true, so the caller decides how to show progress, where to save, and when to stop. A run
resumed from a saved TrainState continues exactly as the uninterrupted run would have: same data
position, hidden state, optimiser moments, learning rate and random stream, and with a time
budget the same measured times, so given the same clock readings the same plan.
"""

import math
import time
from dataclasses import asdict, dataclass, field
from itertools import islice

import numpy as np

from ..core import backend
from ..core.layers import Workspace
from ..core.model import (
    ModelConfig,
    check_memory,
    count_params,
    init_params,
    init_state,
    loss_and_grads,
)
from ..core.optim import DEFAULT_CLIP, DEFAULT_LR, OPTIMIZERS, clip_and_update, make_optimizer
from ..errors import ConfigError, RnngenError
from ..reading.evaluate import evaluate, perplexity, unigram_eval
from ..text.batching import iter_batches, make_streams, n_batches, split_tail
from .distributed import SingleProcess
from .events import EpochEnd, Progress, Started, Validated
from .schedule import VAL_SHARE, VALIDATIONS, Budget, EndWork, Timings, decayed_lr

__all__ = ["EpochEnd", "Progress", "Started", "Validated"]  # the events, where they were

DTYPES = {"float32": np.float32, "float64": np.float64}
# Nats per token past which a run has diverged: exp(700) is near float64's limit, and a model that
# learned anything scores under ln(V), about 10 to 13 nats.
MAX_LOSS = 700.0


class TrainingDiverged(RnngenError):
    """The loss became NaN, infinite, or larger than MAX_LOSS."""


@dataclass(frozen=True)
class TrainConfig:
    epochs: int | None = 20  # passes over the training part, at most (None: time_limit decides)
    batch_size: int = 32  # N parallel streams
    seq_len: int = 35  # T steps of backpropagation through time
    optimizer: str = "adam"  # "adam", "sgd" or "adagrad"
    lr: float | None = None  # learning rate; None: a default for the optimizer and cell
    lr_decay: float = 4.0  # divide the learning rate by this when validation does not improve
    # Stop after this many validations without improvement (0: never stop early). None: 3 for
    # a run by epochs, 0 for one with a time budget (it runs to the end of its budget).
    patience: int | None = None
    clip: float | None = None  # maximum global gradient norm (0: no clipping); None: DEFAULT_CLIP
    val_frac: float = 0.1  # share of the text held out, from its end, for validation
    seed: int = 0  # seeds initialisation and dropout
    dtype: str = "float32"  # "float32" (fast) or "float64"
    # Streams the validation part is scored with. One is exact (every token sees all before it);
    # more are faster but restart the state mid-text, which a tanh RNN can handle badly.
    val_streams: int = 1
    # The validation loss also scores the validation part cut into this many streams, each
    # started from the zero state at its own point of the text (0: off): it is the mean over both
    # passes, so a model that fails from a fresh state (as `score` and `eval` run it) scores
    # badly in validation too and is not kept as the best.
    val_starts: int = 8
    log_every: int = 10  # steps between Progress events
    # Lazy Adam (optim.py; the CLI's --sparse-embedding): only the embedding rows of each batch's
    # tokens are updated and their moments decayed. Faster on large vocabularies but a different
    # optimiser (on War and Peace it cost the class softmax 8% in perplexity); for sgd and adagrad
    # it changes nothing (they update only those rows anyway). Off when tied. Checkpoints written
    # before the rename store it as `sparse_embedding` (checkpoint.py reads both).
    lazy_adam: bool = False
    # Share of the streams whose carried state is set back to zero after each step. Without it a
    # stream starts from the zero state once per epoch, those trajectories go untrained, and a
    # tanh RNN can fall from the zero state (every `score`d line, an `eval` from a new offset)
    # into a saturated fixed point scoring millions in perplexity.
    state_reset: float = 0.05
    # Start the output bias at the log unigram frequencies of the training part (full softmax),
    # so the first step already predicts as well as word counts do instead of uniformly.
    unigram_bias: bool = True
    # A wall-clock budget in seconds for the whole run, validation included (train --time): the
    # schedule is planned for it (schedule.py) instead of by epochs. None: no budget.
    time_limit: float | None = None
    val_every: int = 0  # with time_limit: steps between validations (0: about 8 in the budget)
    validations: int = VALIDATIONS  # with time_limit and no val_every: validations per run
    val_share: float = VAL_SHARE  # with time_limit: the budget's share the validations may take

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(
                f"must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}", "train.optimizer"
            )
        if self.clip is None:
            object.__setattr__(self, "clip", DEFAULT_CLIP[self.optimizer])
        if self.patience is None:
            object.__setattr__(self, "patience", 3 if self.time_limit is None else 0)
        if self.dtype not in DTYPES:
            raise ConfigError(f"must be float32 or float64, got {self.dtype!r}", "train.dtype")
        if not 0 <= self.val_frac < 1:
            raise ConfigError(f"must be in [0, 1), got {self.val_frac}", "train.val_frac")
        if self.epochs is None and self.time_limit is None:
            raise ConfigError(
                "give {0} or {1} (or both): nothing else ends the run",
                "train.epochs",
                "train.time_limit",
            )
        for name in ("epochs", "batch_size", "seq_len"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ConfigError(f"must be at least 1, got {value!r}", f"train.{name}")
        if self.time_limit is not None and not 0 < self.time_limit < math.inf:
            raise ConfigError(
                f"must be longer than zero, got {self.time_limit}s", "train.time_limit"
            )
        if not isinstance(self.val_every, int) or self.val_every < 0:
            raise ConfigError(f"must not be negative, got {self.val_every}", "train.val_every")
        if self.val_every and self.time_limit is None:
            raise ConfigError(
                "{0} needs {1}; without a time budget validation comes after each epoch",
                "train.val_every",
                "train.time_limit",
            )
        # Written so that NaN fails each check too (every comparison with NaN is false).
        if self.lr is not None and not (0 < self.lr < math.inf):
            raise ConfigError(f"must be a positive finite number, got {self.lr}", "train.lr")
        if not 1 <= self.lr_decay < math.inf:
            raise ConfigError(
                f"must be a finite number of at least 1 (1: no decay), got {self.lr_decay}",
                "train.lr_decay",
            )
        if not 0 <= self.clip < math.inf:
            raise ConfigError(
                f"must be a finite number of at least 0 (0: no clipping), got {self.clip}",
                "train.clip",
            )
        if self.seed < 0:
            raise ConfigError(f"must not be negative, got {self.seed}", "train.seed")
        if self.patience < 0:
            raise ConfigError(f"must not be negative, got {self.patience}", "train.patience")
        if not 0 <= self.state_reset <= 1:
            raise ConfigError(f"must be in [0, 1], got {self.state_reset}", "train.state_reset")
        if not isinstance(self.validations, int) or self.validations < 1:
            raise ConfigError(f"validations per run must be at least 1, got {self.validations}")
        if not 0 < self.val_share < 1:
            raise ConfigError(f"the validations' share must be in (0, 1), got {self.val_share}")
        if self.val_streams < 1 or self.val_starts < 0:
            raise ConfigError("validation needs at least 1 stream and 0 or more zero-state starts")

    def learning_rate(self, cell: str) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[(self.optimizer, cell)]

    def lazy_adam_for(self, model: ModelConfig) -> bool:
        """Whether training `model` updates only the embedding rows a batch uses (for Adam:
        lazily); the gradient itself always holds only those rows, unless weights are tied."""
        return self.lazy_adam and not model.tie_weights  # tied: every row has a gradient


@dataclass
class TrainState:
    """Everything needed to continue training exactly where it stopped."""

    params: dict  # the current parameters
    optimizer: object  # its moments and learning rate (optim.py)
    rng: np.random.Generator  # the one random stream (initialisation, then dropout)
    history: dict
    epoch: int = 1  # the current epoch, 1-based
    step: int = 0  # steps done in the current epoch
    hidden: object = None  # (L, K, N, H) state carried into the next step; None at an epoch start
    loss_sum: float = 0.0  # the current epoch's summed training loss ...
    loss_tokens: int = 0  # ... over this many tokens
    tokens_seen: int = 0
    elapsed: float = 0.0  # seconds since training began, at the last clock reading
    best_loss: float = math.inf
    bad_epochs: int = 0  # epochs since the last improvement
    best_params: dict | None = None
    done: bool = False  # all epochs run, stopped early for lack of improvement, or out of time
    # What a run with a time budget has measured (schedule.Timings), so a resumed run plans on.
    train_seconds: float = 0.0  # spent in training steps
    val_seconds: float = 0.0  # spent in validations (saving the best model included)
    validations: int = 0
    last_val: float = 0.0  # elapsed when the last validation ended
    val_limit: int = 0  # the validation tokens each validation scores (0: not fixed yet)


@dataclass
class TrainResult:
    params: dict | None  # the best model's parameters (None if no epoch finished)
    history: dict
    state: TrainState = field(repr=False)
    interrupted: bool = False  # should_stop() ended the run before it was done


def new_state(model_cfg: ModelConfig, cfg: TrainConfig, n_train: int, n_val: int) -> TrainState:
    """The state before the first step: parameters initialised from the seed."""
    rng = np.random.default_rng(cfg.seed)
    slots = {"sgd": 0, "adagrad": 1}.get(cfg.optimizer, 2)  # arrays the optimiser keeps a weight
    itemsize = np.dtype(DTYPES[cfg.dtype]).itemsize
    check_memory(model_cfg, cfg.batch_size, cfg.seq_len, itemsize, slots)  # before allocating
    params = init_params(model_cfg, rng, DTYPES[cfg.dtype])
    optimizer = make_optimizer(
        cfg.optimizer,
        params,
        cfg.learning_rate(model_cfg.cell),
        cfg.lazy_adam_for(model_cfg),
    )
    history = {
        "train": {**asdict(cfg), "lr": optimizer.lr},
        "train_tokens": int(n_train),
        "val_tokens": int(n_val),
        "epochs": 0,
        "steps": 0,
        "per_epoch": [],
    }
    if cfg.time_limit is not None:
        history["validations"] = []
    return TrainState(params, optimizer, rng, history)


def split_data(ids, cfg: TrainConfig, val_ids=None):
    """(train ids, validation ids): val_ids when given, else the tail of ids."""
    if val_ids is None:
        return split_tail(np.asarray(ids), cfg.val_frac)
    return np.asarray(ids), np.asarray(val_ids)


def set_unigram_bias(params: dict, train_ids, V: int) -> None:
    """Set the output bias (V,) to the log of the add-one-smoothed frequencies of train_ids, less
    their mean (softmax ignores a constant), in place (in out.Wb, the bias is its last row)."""
    counts = np.bincount(np.asarray(train_ids), minlength=V).astype(np.float64) + 1.0
    logp = np.log(counts / counts.sum())
    b = params["out.b"] if "out.b" in params else params["out.Wb"][-1]  # tied, or W's last row
    b[...] = backend.xp.asarray(logp - logp.mean(), dtype=b.dtype)


def reset_states(state, share: float, rng: np.random.Generator, columns=slice(None), n=None):
    """Set each stream's state (L, K, N, H) back to zero with probability `share`, in place;
    returns it. The draws are made for all n streams of the global batch (default N) and this
    process's `columns` of them used, so every rank of a data-parallel run resets the streams
    one process would have reset."""
    if share > 0:
        zero = (rng.random(n or state.shape[2]) < share)[columns]  # (N,)
        if zero.any():
            state[:, :, backend.xp.asarray(np.flatnonzero(zero))] = 0
    return state


def train(
    ids,
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    val_ids=None,
    on_event=None,
    on_best=None,
    resume: TrainState | None = None,
    on_checkpoint=None,
    checkpoint_every: int = 0,
    should_stop=None,
    comm=None,
    clock=time.monotonic,
    started: float | None = None,
    end_work: EndWork | None = None,
) -> TrainResult:
    """Train a model on ids (n_tokens,) and return the parameters with the best validation loss.

    Validation uses val_ids when given, else the last `val_frac` of ids. Without a time budget,
    after an epoch without improvement the learning rate is divided by `lr_decay`, and after
    `patience` of them training stops; with `cfg.time_limit` the run follows schedule.Budget
    (see the module's docstring). on_event(event) receives Started, Progress, EpochEnd and
    Validated events; on_best(params, history) is called whenever validation improves (or, when
    there is no validation part, whenever the training loss does); on_checkpoint(state) every
    `checkpoint_every` steps and before returning early because should_stop() said so, and (with
    checkpoint_every) once more at the end. `resume` continues from a saved state of the same data
    and configs. `clock()` gives the seconds the budget is measured in (a fake one in tests);
    `started` is its reading when the run began (before the text was read; default: now), and
    `end_work` the work the caller does after the last step, which the budget leaves time for.

    With `comm` (distributed.Communicator) this process is one rank of a data-parallel run: it
    trains on its share of the streams, gradients are averaged over the ranks before each update,
    and only rank 0 receives events and callbacks (every rank must pass the same arguments).
    Without, the loop talks to a distributed.SingleProcess, whose collective calls do nothing.
    """
    loop = _Loop(ids, model_cfg, cfg, val_ids, resume, comm or SingleProcess(), clock, started)
    loop.callbacks(on_event, on_best, on_checkpoint, checkpoint_every, should_stop)
    return loop.run(end_work or EndWork())


class _Loop:
    """One training run: the data cut into streams, the state, the clock and the callbacks;
    run() steps through the epochs with a schedule (_EpochSchedule or _TimedSchedule)."""

    def __init__(self, ids, model_cfg, cfg, val_ids, resume, comm, clock, started):
        now = clock()  # the loop's first reading (a fake clock in tests counts them)
        began = now if started is None else started
        self.start = began - (resume.elapsed if resume is not None else 0.0)
        self.clock, self.comm, self.model_cfg, self.cfg = clock, comm, model_cfg, cfg
        self.train_ids, self.val_ids = split_data(ids, cfg, val_ids)
        streams = make_streams(self.train_ids, cfg.batch_size)
        self.steps_per_epoch = n_batches(streams, cfg.seq_len)
        self.streams = streams[:, comm.columns(cfg.batch_size)]  # this rank's share
        st = resume
        if st is None:
            st = new_state(model_cfg, cfg, len(self.train_ids), len(self.val_ids))
            if cfg.unigram_bias and model_cfg.softmax == "full":
                set_unigram_bias(st.params, self.train_ids, model_cfg.vocab_size)
            comm.broadcast(st.params)  # everyone starts from rank 0's weights
        elif st.hidden is not None:
            st.hidden = st.hidden[:, :, comm.columns(cfg.batch_size)]  # a checkpoint holds all
        st.elapsed = comm.agree(now - self.start)  # reading the text: neither train nor validation
        self.st = st
        self.workspace = Workspace()  # the gradients are applied before the next step reuses it

    def callbacks(self, on_event, on_best, on_checkpoint, checkpoint_every, should_stop):
        lead = self.comm.rank == 0
        self.on_event, self.on_best = (on_event, on_best) if lead else (None, None)
        self.on_checkpoint, self.checkpoint_every = on_checkpoint, checkpoint_every
        self.should_stop = should_stop

    def run(self, end_work: EndWork) -> TrainResult:
        st, cfg = self.st, self.cfg
        history = st.history
        history["steps_per_epoch"] = self.steps_per_epoch
        if len(self.val_ids) and "unigram_val_ppl" not in history:
            history["unigram_val_ppl"] = unigram_eval(
                self.train_ids, self.val_ids, self.model_cfg.vocab_size
            ).perplexity
        if self.on_event:
            self.on_event(
                Started(
                    len(self.train_ids),
                    len(self.val_ids),
                    self.steps_per_epoch,
                    count_params(st.params),
                    cfg.time_limit,
                    self.model_cfg,
                    cfg,
                    st.elapsed,
                )  # fmt: skip
            )
        run = _Run(st, self.model_cfg, cfg, self.train_ids, self.val_ids, self.measure,
                   self.on_event, self.on_best)  # fmt: skip
        if cfg.time_limit is None:
            self.schedule = _EpochSchedule(run)
        else:
            self.schedule = _TimedSchedule(run, self.steps_per_epoch, end_work)
        while not st.done and (cfg.epochs is None or st.epoch <= cfg.epochs):
            if not self.epoch():
                return self.stop_here()
        st.done = True
        if self.checkpoint_every:
            self.checkpoint()  # the final state, so a later run can train for more epochs
        self.comm.barrier()
        return TrainResult(st.best_params, history, st)

    def epoch(self) -> bool:
        """Train the rest of the current epoch and validate at its end; False when should_stop()
        asked to stop (the state is then where a resumed run continues)."""
        st, cfg = self.st, self.cfg
        epoch = st.epoch
        if st.hidden is None:
            st.hidden = init_state(self.model_cfg, self.streams.shape[1], DTYPES[cfg.dtype])
        for inputs, targets in islice(iter_batches(self.streams, cfg.seq_len), st.step, None):
            done = (epoch - 1) * self.steps_per_epoch + st.step
            if not self.schedule.before_step(done):  # out of time
                break
            self.step(inputs, targets)
            self.schedule.after_step(done + 1)
            if st.done:  # patience ran out at a validation
                return True
            if st.step < self.steps_per_epoch:  # at an epoch's end, validate first
                if self.stop_requested():
                    return False
                self.maybe_checkpoint(done + 1)
        if st.done:  # out of time
            return True
        self.schedule.end_epoch(epoch * self.steps_per_epoch)
        if self.stop_requested() and not st.done:
            return False
        self.maybe_checkpoint(epoch * self.steps_per_epoch)
        return True

    def step(self, inputs, targets) -> None:
        """One step of training on a batch (T, N) of this rank's streams, and its report."""
        st, cfg, comm = self.st, self.cfg, self.comm
        xp = backend.xp
        epoch = st.epoch
        rng = comm.dropout_rng(st.rng, cfg.seed, epoch, st.step)
        x, y = xp.asarray(inputs), xp.asarray(targets)
        result = loss_and_grads(st.params, self.model_cfg, x, y, st.hidden, rng, True,
                                self.workspace)  # fmt: skip
        comm.average_grads(result.grads)
        loss = comm.mean(result.loss)
        if not math.isfinite(loss) or loss > MAX_LOSS:
            raise TrainingDiverged(
                f"the loss became {loss} in epoch {epoch}, step {st.step + 1}; the best "
                f"model so far is kept; lower --lr (now {st.optimizer.lr:g}) or --clip "
                f"(now {cfg.clip:g})"
            )
        clip_and_update(st.optimizer, st.params, result.grads, cfg.clip)
        # drawn from (seed, epoch, step), the same on every rank, for the whole batch
        reset_rng = np.random.default_rng([cfg.seed, epoch, st.step, 0x5E7])
        columns = comm.columns(cfg.batch_size)
        st.hidden = reset_states(result.state, cfg.state_reset, reset_rng, columns, cfg.batch_size)
        st.step += 1
        n = inputs.size * comm.size
        st.loss_sum += loss * n
        st.loss_tokens += n
        st.tokens_seen += n
        elapsed = self.measure("train")
        done = (epoch - 1) * self.steps_per_epoch + st.step
        st.history["steps"] = done
        st.history["epochs"] = max(st.history.get("epochs", 0), epoch)  # begun, the last maybe not
        if self.on_event and (st.step % cfg.log_every == 0 or st.step == self.steps_per_epoch):
            speed = st.tokens_seen / max(st.train_seconds, 1e-9)
            self.on_event(
                Progress(
                    epoch,
                    cfg.epochs,
                    st.step,
                    self.steps_per_epoch,
                    st.loss_sum / st.loss_tokens,
                    speed,
                    elapsed,
                    *self.schedule.outlook(done - 1, elapsed),
                )  # fmt: skip
            )

    def measure(self, kind: str) -> float:
        """Read the clock; the time since the last reading was spent on `kind`."""
        st = self.st
        elapsed = self.comm.agree(self.clock() - self.start)  # the same on every rank
        if kind == "train":
            st.train_seconds += elapsed - st.elapsed
        else:
            st.val_seconds += elapsed - st.elapsed
            st.validations += 1
            st.last_val = elapsed
        st.elapsed = elapsed
        return elapsed

    def checkpoint(self) -> None:
        if not self.on_checkpoint:
            return
        st, comm = self.st, self.comm
        own = st.hidden  # gathered by every rank (a collective call), written by rank 0
        if own is not None:
            st.hidden = comm.gather_columns(own, axis=2)
        if comm.rank == 0:
            self.on_checkpoint(st)
        st.hidden = own

    def maybe_checkpoint(self, steps: int) -> None:
        if self.checkpoint_every and steps % self.checkpoint_every == 0:
            self.checkpoint()

    def stop_requested(self) -> bool:  # all ranks stop at the same step
        return self.should_stop is not None and self.comm.any(self.should_stop())

    def stop_here(self) -> TrainResult:
        self.checkpoint()
        self.comm.barrier()  # no rank leaves (and maybe exits) before rank 0 has written
        return TrainResult(self.st.best_params, self.st.history, self.st, interrupted=True)


def validation_loss(params, model_cfg, val_ids, val_streams: int, cfg: TrainConfig) -> float:
    """Nats per token on val_ids: scored in val_streams streams and, with cfg.val_starts, again
    in that many streams each from the zero state; the mean over both passes' tokens."""
    results = [evaluate(params, model_cfg, val_ids, val_streams, cfg.seq_len)]
    starts = min(cfg.val_starts, max(1, len(val_ids) // 64))  # at least 64 tokens per start
    if cfg.val_starts and starts != val_streams:
        results.append(evaluate(params, model_cfg, val_ids, starts, cfg.seq_len))
    return sum(r.nll for r in results) / sum(r.tokens for r in results)


@dataclass
class _Run:
    """What the schedules share with the loop: the state, the data, the clock, the callbacks."""

    st: TrainState
    model_cfg: ModelConfig
    cfg: TrainConfig
    train_ids: object
    val_ids: object
    measure: object  # measure(kind): read the clock, the time since spent on "train" or not
    on_event: object
    on_best: object

    @property
    def val_streams(self) -> int:
        return min(self.cfg.val_streams, max(1, len(self.val_ids) // 2))

    def validation_loss(self, val_ids, where: str, params=None) -> float | None:
        """The validation loss of params (default: the current ones), None without a validation
        part; a diverged one is an error."""
        if not len(val_ids):
            return None
        st, cfg = self.st, self.cfg
        params = st.params if params is None else params
        val_loss = validation_loss(params, self.model_cfg, val_ids, self.val_streams, cfg)
        if not math.isfinite(val_loss) or val_loss > MAX_LOSS:
            raise TrainingDiverged(
                f"the validation loss became {val_loss} {where}; the best model so far is kept; "
                f"lower --lr (now {st.optimizer.lr:g}) or --clip (now {cfg.clip:g})"
            )
        return val_loss

    def record(self, train_loss: float, val_loss, epoch: int, step: int | None) -> bool:
        """The one bookkeeping of a validation, for both schedules: keep the parameters if they
        beat the best so far (on val_loss, or without a validation part on train_loss), count
        validations without gain, note the best in the history and hand it to on_best. Returns
        whether it is the best."""
        st, history = self.st, self.st.history
        score = val_loss if val_loss is not None else train_loss
        if score >= st.best_loss:
            st.bad_epochs += 1
            return False
        st.best_loss, st.bad_epochs = score, 0
        st.best_params = {k: v.copy() for k, v in st.params.items()}
        history["best_epoch"] = epoch
        if step is not None:
            history["best_step"] = step
        if val_loss is not None:
            history["best_val_loss"] = val_loss
            history["best_val_ppl"] = perplexity(val_loss)
        return True

    def give_best(self, is_best: bool) -> None:
        if is_best and self.on_best:
            self.on_best(self.st.best_params, self.st.history)

    def out_of_patience(self) -> bool:
        return self.cfg.patience > 0 and self.st.bad_epochs >= self.cfg.patience


class _EpochSchedule:
    """Without a time budget: validation after every epoch, the learning rate divided by
    lr_decay after an epoch without improvement, a stop after `patience` of them."""

    def __init__(self, run: _Run):
        self.run = run

    def before_step(self, steps: int) -> bool:
        return True

    def after_step(self, steps: int) -> None:
        pass

    def outlook(self, done: int, elapsed: float) -> tuple:
        return ()

    def end_epoch(self, steps: int) -> None:
        """Validate, keep the best model, decay the learning rate, decide on early stopping, and
        move the state to the start of the next epoch."""
        run, st, cfg = self.run, self.run.st, self.run.cfg
        history = st.history
        epoch = st.epoch
        train_loss = st.loss_sum / max(st.loss_tokens, 1)
        val_loss = run.validation_loss(run.val_ids, f"after epoch {epoch}")
        is_best = run.record(train_loss, val_loss, epoch, None)
        if not is_best:
            st.optimizer.lr /= cfg.lr_decay
        stopping = run.out_of_patience()
        elapsed = run.measure("validation")
        history["epochs"] = epoch
        history["seconds"] = elapsed
        history["tokens_per_second"] = st.tokens_seen / max(st.train_seconds, 1e-9)
        history["per_epoch"].append(
            {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "lr": st.optimizer.lr}
        )
        st.epoch += 1
        st.step, st.hidden, st.loss_sum, st.loss_tokens = 0, None, 0.0, 0
        st.done = stopping or st.epoch > cfg.epochs
        if st.done:
            history["stopped"] = "patience" if stopping else "epochs"
        run.give_best(is_best)
        if run.on_event:
            run.on_event(EpochEnd(epoch, cfg.epochs, train_loss, val_loss, is_best, elapsed,
                                  st.optimizer.lr, stopping, st.params))  # fmt: skip


class _TimedSchedule:
    """With a time budget (schedule.Budget): the learning rate set before every step for the
    steps that still fit, a validation when one is due (on the first `val_limit` validation
    tokens), and a last one when the time is up, the epochs are run or patience runs out."""

    def __init__(self, run: _Run, steps_per_epoch: int, end_work: EndWork):
        cfg = run.cfg
        max_steps = None if cfg.epochs is None else cfg.epochs * steps_per_epoch
        self.run = run
        self.budget = Budget(cfg.time_limit, cfg.val_every, max_steps, end_work,
                             cfg.validations, cfg.val_share)  # fmt: skip
        self.lr0 = cfg.learning_rate(run.model_cfg.cell)
        self.left = math.inf  # the steps that fit, as last estimated

    def timings(self, steps: int) -> Timings:
        st = self.run.st
        return Timings(steps, st.elapsed, st.train_seconds, st.tokens_seen, st.validations,
                       st.val_seconds, st.last_val, st.val_limit)  # fmt: skip

    def before_step(self, steps: int) -> bool:
        """Set the learning rate for the step after `steps`, or finish if it does not fit."""
        self.left = self.budget.steps_left(self.timings(steps), len(self.run.val_ids))
        if self.left < 1:
            self.finish(steps, "time")
            return False
        self.run.st.optimizer.lr = decayed_lr(self.lr0, steps, self.left)
        return True

    def after_step(self, steps: int) -> None:
        if self.budget.validation_due(self.timings(steps)):
            self.validate(steps)

    def outlook(self, done: int, elapsed: float) -> tuple:
        """Progress's time_left, planned_steps and lr for the step after `done` steps."""
        planned = None if math.isinf(self.left) else done + self.left
        return (max(self.budget.seconds - elapsed, 0.0), planned, self.run.st.optimizer.lr)

    def end_epoch(self, steps: int) -> None:
        """The data is used up: start the next epoch, or with --epochs run, finish."""
        st = self.run.st
        if self.run.cfg.epochs is not None and st.epoch >= self.run.cfg.epochs:
            self.finish(steps, "epochs")
        st.epoch += 1
        st.step, st.hidden = 0, None

    def finish(self, steps: int, stopped: str) -> None:
        """End the run: validate once more unless the last step was just validated."""
        st = self.run.st
        validations = st.history["validations"]
        if validations and validations[-1]["step"] == steps:
            st.done = True
            st.history["stopped"] = stopped
            return
        self.validate(steps, final=True, stopped=stopped)

    def fix_val_limit(self, steps: int) -> None:
        """At the first validation of a timed run: how much of the validation text every
        validation scores. A best model carried from a run that scored another part (a resumed
        run by epochs) is scored again on this one, so the two compare."""
        run, st = self.run, self.run.st
        history, all_val = st.history, run.val_ids
        st.val_limit = self.budget.val_limit(self.timings(steps), len(all_val))
        if st.val_limit < len(all_val):  # the baseline on the same tokens
            history["unigram_val_ppl"] = unigram_eval(
                run.train_ids, all_val[: st.val_limit], run.model_cfg.vocab_size
            ).perplexity
        history["val_tokens_scored"] = st.val_limit
        if st.best_params is not None:
            best = run.validation_loss(all_val[: st.val_limit], "of the best model",
                                       st.best_params)  # fmt: skip
            st.best_loss = best
            history["best_val_loss"], history["best_val_ppl"] = best, perplexity(best)

    def validate(self, steps: int, final: bool = False, stopped: str | None = None) -> None:
        run, st = self.run, self.run.st
        history = st.history
        if not st.val_limit and len(run.val_ids):
            self.fix_val_limit(steps)
        train_loss = st.loss_sum / max(st.loss_tokens, 1)
        val_loss = run.validation_loss(run.val_ids[: st.val_limit], f"after step {steps}")
        epoch = st.epoch if st.step else st.epoch - 1  # the epoch of the last step
        is_best = run.record(train_loss, val_loss, epoch, steps)
        if not final and run.out_of_patience():
            final, stopped = True, "patience"
        if final:
            st.done = True
            history["stopped"] = stopped
        lr = st.optimizer.lr
        history["validations"].append(
            {
                "step": steps,
                "epoch": epoch,
                "train_loss": train_loss,
                "val_loss": val_loss,
                "lr": lr,
            }  # fmt: skip
        )
        run.give_best(is_best)
        elapsed = run.measure("validation")
        history["seconds"] = elapsed
        history["tokens_per_second"] = st.tokens_seen / max(st.train_seconds, 1e-9)
        st.loss_sum, st.loss_tokens = 0.0, 0
        if run.on_event:
            time_left = max(self.budget.seconds - elapsed, 0.0)
            run.on_event(Validated(steps, epoch, train_loss, val_loss, is_best, elapsed,
                                   time_left, lr, final, stopped, st.params))  # fmt: skip
