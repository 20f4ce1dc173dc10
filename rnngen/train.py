"""The training loop: minibatches of parallel streams, truncated BPTT, clipping, an optimiser, and
validation after every epoch with the best model kept.

The loop never prints. It reports through an optional `on_event` callback (Started once the data
is cut into batches, Progress during an epoch, EpochEnd after validation), hands each new best
model to `on_best`, and hands its whole `TrainState` to `on_checkpoint` every `checkpoint_every`
steps and when `should_stop()` turns true, so the caller decides how to show progress, where to
save, and when to stop. A run resumed from a saved TrainState continues exactly as the
uninterrupted run would have: same data position, hidden state, optimiser moments, learning rate
and random stream.
"""

import math
import time
from dataclasses import asdict, dataclass, field
from itertools import islice

import numpy as np

from . import backend
from .batching import iter_batches, make_streams, n_batches, split_tail
from .errors import ConfigError, RnngenError
from .evaluate import evaluate, perplexity, unigram_eval
from .layers import RowSparse, Workspace
from .model import ModelConfig, count_params, init_params, init_state, loss_and_grads
from .optim import DEFAULT_CLIP, DEFAULT_LR, OPTIMIZERS, clip_and_update, make_optimizer

DTYPES = {"float32": np.float32, "float64": np.float64}
# Nats per token past which a run has diverged: exp(700) is near float64's limit, and a model that
# learned anything scores under ln(V), about 10 to 13 nats.
MAX_LOSS = 700.0


class TrainingDiverged(RnngenError):
    """The loss became NaN, infinite, or larger than MAX_LOSS."""


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 20  # passes over the training part (at most: see patience)
    batch_size: int = 32  # N parallel streams
    seq_len: int = 35  # T steps of backpropagation through time
    optimizer: str = "adam"  # "adam", "sgd" or "adagrad"
    lr: float | None = None  # learning rate; None: a default for the optimizer and cell
    lr_decay: float = 4.0  # divide the learning rate by this when validation does not improve
    patience: int = 3  # stop after this many epochs without improvement (0: never stop early)
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
    # Update only the embedding rows of each batch's tokens: Adam becomes lazy Adam (optim.py),
    # faster on large vocabularies but a different optimiser (on War and Peace it cost the class
    # softmax 8% in perplexity); for sgd and adagrad it changes nothing. Off when tied.
    sparse_embedding: bool = False
    # Share of the streams whose carried state is set back to zero after each step. Without it a
    # stream starts from the zero state once per epoch, those trajectories go untrained, and a
    # tanh RNN can fall from the zero state (every `score`d line, an `eval` from a new offset)
    # into a saturated fixed point scoring millions in perplexity.
    state_reset: float = 0.05

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(
                f"unknown optimizer {self.optimizer!r}; use one of: {', '.join(OPTIMIZERS)}"
            )
        if self.clip is None:
            object.__setattr__(self, "clip", DEFAULT_CLIP[self.optimizer])
        if self.dtype not in DTYPES:
            raise ConfigError(f"unknown dtype {self.dtype!r}; use float32 or float64")
        if not 0 <= self.val_frac < 1:
            raise ConfigError(f"--val-frac must be in [0, 1), got {self.val_frac}")
        for name in ("epochs", "batch_size", "seq_len"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1")
        if self.lr is not None and self.lr <= 0:
            raise ConfigError(f"--lr must be positive, got {self.lr}")
        if self.lr_decay < 1:
            raise ConfigError(f"--lr-decay must be at least 1 (1: no decay), got {self.lr_decay}")
        if self.val_streams < 1 or self.val_starts < 0:
            raise ConfigError("validation needs at least 1 stream and 0 or more zero-state starts")
        if self.patience < 0:
            raise ConfigError(f"--patience must not be negative, got {self.patience}")
        if not 0 <= self.state_reset <= 1:
            raise ConfigError(f"--state-reset must be in [0, 1], got {self.state_reset}")

    def learning_rate(self, cell: str) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[(self.optimizer, cell)]

    def sparse_embedding_for(self, model: ModelConfig) -> bool:
        """Whether training `model` updates only the embedding rows a batch uses (for Adam:
        lazily); the gradient itself always holds only those rows, unless weights are tied."""
        return self.sparse_embedding and not model.tie_weights  # tied: every row has a gradient


@dataclass(frozen=True)
class Started:
    train_tokens: int
    val_tokens: int
    steps_per_epoch: int
    n_params: int


@dataclass(frozen=True)
class Progress:
    epoch: int  # 1-based
    epochs: int
    step: int  # steps done in this epoch
    steps_per_epoch: int
    loss: float  # mean training loss since the epoch began, nats per token
    tokens_per_second: float
    elapsed: float  # seconds since training began

    @property
    def fraction_done(self) -> float:
        return ((self.epoch - 1) * self.steps_per_epoch + self.step) / (
            self.epochs * self.steps_per_epoch
        )


@dataclass(frozen=True)
class EpochEnd:
    epoch: int
    epochs: int
    train_loss: float
    val_loss: float | None  # None without a validation part
    is_best: bool
    elapsed: float
    lr: float  # the learning rate for the next epoch
    stopping: bool = False  # no improvement for `patience` epochs: training ends here

    @property
    def val_perplexity(self) -> float | None:
        return None if self.val_loss is None else perplexity(self.val_loss)


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
    elapsed: float = 0.0  # seconds of training before the current run
    best_loss: float = math.inf
    bad_epochs: int = 0  # epochs since the last improvement
    best_params: dict | None = None
    done: bool = False  # all epochs run, or stopped early for lack of improvement


@dataclass
class TrainResult:
    params: dict | None  # the best model's parameters (None if no epoch finished)
    history: dict
    state: TrainState = field(repr=False)
    interrupted: bool = False  # should_stop() ended the run before it was done


def new_state(model_cfg: ModelConfig, cfg: TrainConfig, n_train: int, n_val: int) -> TrainState:
    """The state before the first step: parameters initialised from the seed."""
    rng = np.random.default_rng(cfg.seed)
    params = init_params(model_cfg, rng, DTYPES[cfg.dtype])
    optimizer = make_optimizer(
        cfg.optimizer,
        params,
        cfg.learning_rate(model_cfg.cell),
        cfg.sparse_embedding_for(model_cfg),
    )
    history = {
        "train": {**asdict(cfg), "lr": optimizer.lr},
        "train_tokens": int(n_train),
        "val_tokens": int(n_val),
        "epochs": 0,
        "per_epoch": [],
    }
    return TrainState(params, optimizer, rng, history)


def split_data(ids, cfg: TrainConfig, val_ids=None):
    """(train ids, validation ids): val_ids when given, else the tail of ids."""
    if val_ids is None:
        return split_tail(np.asarray(ids), cfg.val_frac)
    return np.asarray(ids), np.asarray(val_ids)


def average_grads(comm, grads: dict) -> None:
    """Average grads over the ranks in place. A RowSparse gradient is averaged dense and comes
    back holding the rows any rank used, as one process with the whole batch would have them."""
    sparse = {k: g for k, g in grads.items() if isinstance(g, RowSparse)}
    grads.update({k: g.dense() for k, g in sparse.items()})
    comm.average(grads)
    xp = backend.xp
    for k in sparse:
        dense = grads[k]
        rows = xp.flatnonzero(xp.any(dense != 0, axis=1))
        grads[k] = RowSparse(rows, dense[rows], dense.shape)


def reset_states(state, share: float, rng: np.random.Generator):
    """Set each stream's state (L, K, N, H) back to zero with probability `share`, in place;
    returns it. Draws N numbers from rng only when share > 0."""
    if share > 0:
        zero = rng.random(state.shape[2]) < share  # (N,)
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
) -> TrainResult:
    """Train a model on ids (n_tokens,) and return the parameters with the best validation loss.

    Validation uses val_ids when given, else the last `val_frac` of ids. After an epoch without
    improvement the learning rate is divided by `lr_decay`; after `patience` of them training stops.
    on_event(event) receives Started, Progress and EpochEnd events; on_best(params, history) is
    called whenever validation improves (or after each epoch when there is no validation part);
    on_checkpoint(state) every `checkpoint_every` steps and before returning early because
    should_stop() said so, and (with checkpoint_every) once more at the end. `resume` continues
    from a saved state of the same data and configs.

    With `comm` (distributed.Communicator) this process is one rank of a data-parallel run: it
    trains on its share of the streams, gradients are averaged over the ranks before each update,
    and only rank 0 receives events and callbacks (every rank must pass the same arguments).
    """
    xp = backend.xp
    dtype = DTYPES[cfg.dtype]
    train_ids, val_ids = split_data(ids, cfg, val_ids)
    streams = make_streams(train_ids, cfg.batch_size)
    steps_per_epoch = n_batches(streams, cfg.seq_len)
    val_streams = min(cfg.val_streams, max(1, len(val_ids) // 2))
    st = resume or new_state(model_cfg, cfg, len(train_ids), len(val_ids))
    history = st.history
    workspace = Workspace()  # the gradients are applied before the next step reuses it
    ranks = 1
    if comm is not None:
        ranks = comm.size
        columns = comm.columns(cfg.batch_size)
        streams = streams[:, columns]  # this rank's share of the streams
        if resume is None:
            comm.broadcast(st.params)  # everyone starts from rank 0's weights
        elif st.hidden is not None:
            st.hidden = st.hidden[:, :, columns]  # a checkpoint holds every rank's state
        if comm.rank != 0:
            on_event = on_best = None
    if len(val_ids) and "unigram_val_ppl" not in history:
        history["unigram_val_ppl"] = unigram_eval(
            train_ids, val_ids, model_cfg.vocab_size
        ).perplexity
    if on_event:
        on_event(Started(len(train_ids), len(val_ids), steps_per_epoch, count_params(st.params)))
    start = time.perf_counter() - st.elapsed  # so elapsed times continue across a resume

    def checkpoint() -> None:
        if not on_checkpoint:
            return
        if comm is None:
            on_checkpoint(st)
            return
        own = st.hidden  # gathered by every rank (a collective call), written by rank 0
        if own is not None:
            st.hidden = comm.gather_columns(own, axis=2)
        if comm.rank == 0:
            on_checkpoint(st)
        st.hidden = own

    def stop_requested() -> bool:
        if should_stop is None:
            return False
        stop = should_stop()
        return comm.any(stop) if comm is not None else stop  # all ranks stop at the same step

    def stop_here() -> TrainResult:
        st.elapsed = time.perf_counter() - start
        checkpoint()
        if comm is not None:
            comm.barrier()  # no rank leaves (and maybe exits) before rank 0 has written
        return TrainResult(st.best_params, history, st, interrupted=True)

    while not st.done and st.epoch <= cfg.epochs:
        epoch = st.epoch
        if st.hidden is None:
            st.hidden = init_state(model_cfg, streams.shape[1], dtype)
        for inputs, targets in islice(iter_batches(streams, cfg.seq_len), st.step, None):
            rng = st.rng if comm is None else comm.dropout_rng(cfg.seed, epoch, st.step)
            x, y = xp.asarray(inputs), xp.asarray(targets)
            result = loss_and_grads(st.params, model_cfg, x, y, st.hidden, rng, True, workspace)
            loss = result.loss
            if comm is not None:
                average_grads(comm, result.grads)
                loss = comm.mean(loss)
            if not math.isfinite(loss) or loss > MAX_LOSS:
                raise TrainingDiverged(
                    f"the loss became {loss} in epoch {epoch}, step {st.step + 1}; the best "
                    f"model so far is kept; lower --lr (now {st.optimizer.lr:g}) or --clip "
                    f"(now {cfg.clip:g})"
                )
            clip_and_update(st.optimizer, st.params, result.grads, cfg.clip)
            st.hidden = reset_states(result.state, cfg.state_reset, rng)
            st.step += 1
            n = inputs.size * ranks
            st.loss_sum += loss * n
            st.loss_tokens += n
            st.tokens_seen += n
            elapsed = time.perf_counter() - start
            if on_event and (st.step % cfg.log_every == 0 or st.step == steps_per_epoch):
                on_event(
                    Progress(
                        epoch,
                        cfg.epochs,
                        st.step,
                        steps_per_epoch,
                        st.loss_sum / st.loss_tokens,
                        st.tokens_seen / elapsed,
                        elapsed,
                    )
                )
            global_step = (epoch - 1) * steps_per_epoch + st.step
            if st.step < steps_per_epoch:  # at an epoch's end, validate first
                if stop_requested():
                    return stop_here()
                if checkpoint_every and global_step % checkpoint_every == 0:
                    st.elapsed = elapsed
                    checkpoint()

        _end_epoch(st, model_cfg, cfg, val_ids, val_streams, start, on_event, on_best)
        if stop_requested() and not st.done:
            return stop_here()
        if checkpoint_every and (epoch * steps_per_epoch) % checkpoint_every == 0:
            checkpoint()

    st.done = True
    if checkpoint_every:
        checkpoint()  # the final state, so a later run can train for more epochs
    if comm is not None:
        comm.barrier()
    return TrainResult(st.best_params, history, st)


def validation_loss(params, model_cfg, val_ids, val_streams: int, cfg: TrainConfig) -> float:
    """Nats per token on val_ids: scored in val_streams streams and, with cfg.val_starts, again
    in that many streams each from the zero state; the mean over both passes' tokens."""
    results = [evaluate(params, model_cfg, val_ids, val_streams, cfg.seq_len)]
    starts = min(cfg.val_starts, max(1, len(val_ids) // 64))  # at least 64 tokens per start
    if cfg.val_starts and starts != val_streams:
        results.append(evaluate(params, model_cfg, val_ids, starts, cfg.seq_len))
    return sum(r.nll for r in results) / sum(r.tokens for r in results)


def _end_epoch(st, model_cfg, cfg, val_ids, val_streams, start, on_event, on_best):
    """Validate, keep the best model, decay the learning rate, decide on early stopping, and move
    the state to the start of the next epoch."""
    history = st.history
    train_loss = st.loss_sum / max(st.loss_tokens, 1)
    val_loss = None
    if len(val_ids):
        val_loss = validation_loss(st.params, model_cfg, val_ids, val_streams, cfg)
        if not math.isfinite(val_loss) or val_loss > MAX_LOSS:
            raise TrainingDiverged(
                f"the validation loss became {val_loss} after epoch {st.epoch}; the best model "
                f"so far is kept; lower --lr (now {st.optimizer.lr:g}) or --clip (now {cfg.clip:g})"
            )
    score = val_loss if val_loss is not None else train_loss
    is_best = score < st.best_loss
    if is_best:
        st.best_loss, st.bad_epochs = score, 0
    else:
        st.bad_epochs += 1
        st.optimizer.lr /= cfg.lr_decay
    stopping = cfg.patience > 0 and st.bad_epochs >= cfg.patience
    elapsed = time.perf_counter() - start
    epoch = st.epoch
    history["epochs"] = epoch
    history["seconds"] = elapsed
    history["tokens_per_second"] = st.tokens_seen / elapsed
    history["per_epoch"].append(
        {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "lr": st.optimizer.lr}
    )
    if is_best:
        st.best_params = {k: v.copy() for k, v in st.params.items()}
        history["best_epoch"] = epoch
        if val_loss is not None:
            history["best_val_loss"] = val_loss
            history["best_val_ppl"] = perplexity(val_loss)
    st.epoch += 1
    st.step, st.hidden, st.loss_sum, st.loss_tokens = 0, None, 0.0, 0
    st.elapsed = elapsed
    st.done = stopping or st.epoch > cfg.epochs
    if is_best and on_best:
        on_best(st.best_params, history)
    if on_event:
        on_event(
            EpochEnd(
                epoch, cfg.epochs, train_loss, val_loss, is_best, elapsed, st.optimizer.lr, stopping
            )
        )
