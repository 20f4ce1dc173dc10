"""The training loop: minibatches of parallel streams, truncated BPTT, clipping, an optimiser, and
validation after every epoch with the best model kept.

The loop never prints. It reports through an optional `on_event` callback (Started once the data
is cut into batches, Progress during an epoch, EpochEnd after validation) and hands each new best
model to `on_best`, so the caller decides how to show progress and where to save.
"""

import math
import time
from dataclasses import asdict, dataclass

import numpy as np

from . import backend
from .batching import iter_batches, make_streams, n_batches, split_tail
from .errors import ConfigError, RnngenError
from .evaluate import evaluate, unigram_eval
from .model import ModelConfig, count_params, init_params, init_state, loss_and_grads
from .optim import DEFAULT_LR, OPTIMIZERS, clip_grad_norm, make_optimizer

DTYPES = {"float32": np.float32, "float64": np.float64}


class TrainingDiverged(RnngenError):
    """The loss became NaN or infinite."""


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 12  # passes over the training part (at most: see patience)
    batch_size: int = 32  # N parallel streams
    seq_len: int = 35  # T steps of backpropagation through time
    optimizer: str = "adam"  # "adam", "sgd" or "adagrad"
    lr: float | None = None  # learning rate; None: a default for the optimizer and cell
    lr_decay: float = 4.0  # divide the learning rate by this when validation does not improve
    patience: int = 3  # stop after this many epochs without improvement (0: never stop early)
    clip: float = 5.0  # maximum global gradient norm (0: no clipping)
    val_frac: float = 0.1  # share of the text held out, from its end, for validation
    seed: int = 0  # seeds initialisation and dropout
    dtype: str = "float32"  # "float32" (fast) or "float64"
    val_streams: int = 8  # parallel streams used to score the validation part
    log_every: int = 10  # steps between Progress events

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(
                f"unknown optimizer {self.optimizer!r}; use one of: {', '.join(OPTIMIZERS)}"
            )
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
        if self.patience < 0:
            raise ConfigError(f"--patience must not be negative, got {self.patience}")

    def learning_rate(self, cell: str) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[(self.optimizer, cell)]


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
        return None if self.val_loss is None else math.exp(min(self.val_loss, 700.0))


@dataclass
class TrainResult:
    params: dict  # the best model's parameters
    history: dict


def train(ids, model_cfg: ModelConfig, cfg: TrainConfig, val_ids=None, on_event=None, on_best=None):
    """Train a model on ids (n_tokens,) and return the parameters with the best validation loss.

    Validation uses val_ids when given, else the last `val_frac` of ids. After an epoch without
    improvement the learning rate is divided by `lr_decay`; after `patience` of them training stops.
    on_event(event) receives Started, Progress and EpochEnd events; on_best(params, history) is
    called whenever validation improves (or after each epoch when there is no validation part).
    """
    xp = backend.xp
    dtype = DTYPES[cfg.dtype]
    rng = np.random.default_rng(cfg.seed)
    if val_ids is None:
        train_ids, val_ids = split_tail(np.asarray(ids), cfg.val_frac)
    else:
        train_ids, val_ids = np.asarray(ids), np.asarray(val_ids)
    streams = make_streams(train_ids, cfg.batch_size)
    steps_per_epoch = n_batches(streams, cfg.seq_len)
    val_streams = min(cfg.val_streams, max(1, len(val_ids) // 2))

    params = init_params(model_cfg, rng, dtype)
    optimizer = make_optimizer(cfg.optimizer, params, cfg.learning_rate(model_cfg.cell))
    history = {
        "train": {**asdict(cfg), "lr": optimizer.lr},
        "train_tokens": int(len(train_ids)),
        "val_tokens": int(len(val_ids)),
        "epochs": 0,
        "per_epoch": [],
    }
    if len(val_ids):
        history["unigram_val_ppl"] = unigram_eval(
            train_ids, val_ids, model_cfg.vocab_size
        ).perplexity
    if on_event:
        on_event(Started(len(train_ids), len(val_ids), steps_per_epoch, count_params(params)))
    best_loss = math.inf
    best_params = None
    bad_epochs = 0
    tokens_seen = 0
    start = time.perf_counter()

    for epoch in range(1, cfg.epochs + 1):
        state = init_state(model_cfg, cfg.batch_size, dtype)
        loss_sum, loss_tokens = 0.0, 0
        for step_in_epoch, (inputs, targets) in enumerate(iter_batches(streams, cfg.seq_len), 1):
            result = loss_and_grads(
                params, model_cfg, xp.asarray(inputs), xp.asarray(targets), state, rng
            )
            if not math.isfinite(result.loss):
                raise TrainingDiverged(
                    f"the loss became {result.loss} in epoch {epoch}, step {step_in_epoch}; "
                    f"lower --lr (now {optimizer.lr:g}) or --clip (now {cfg.clip:g})"
                )
            clip_grad_norm(result.grads, cfg.clip)
            optimizer.update(params, result.grads)
            state = result.state
            n = inputs.size
            loss_sum += result.loss * n
            loss_tokens += n
            tokens_seen += n
            if on_event and (
                step_in_epoch % cfg.log_every == 0 or step_in_epoch == steps_per_epoch
            ):
                elapsed = time.perf_counter() - start
                on_event(
                    Progress(
                        epoch,
                        cfg.epochs,
                        step_in_epoch,
                        steps_per_epoch,
                        loss_sum / loss_tokens,
                        tokens_seen / elapsed,
                        elapsed,
                    )
                )

        train_loss = loss_sum / loss_tokens
        val_loss = None
        if len(val_ids):
            val_loss = evaluate(params, model_cfg, val_ids, val_streams, cfg.seq_len).cross_entropy
        score = val_loss if val_loss is not None else train_loss
        is_best = score < best_loss
        if is_best:
            best_loss, bad_epochs = score, 0
        else:
            bad_epochs += 1
            optimizer.lr /= cfg.lr_decay
        stopping = cfg.patience > 0 and bad_epochs >= cfg.patience
        elapsed = time.perf_counter() - start
        history["epochs"] = epoch
        history["seconds"] = elapsed
        history["tokens_per_second"] = tokens_seen / elapsed
        history["per_epoch"].append(
            {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "lr": optimizer.lr}
        )
        if is_best:
            best_params = {k: v.copy() for k, v in params.items()}
            history["best_epoch"] = epoch
            if val_loss is not None:
                history["best_val_loss"] = val_loss
                history["best_val_ppl"] = math.exp(val_loss)
            if on_best:
                on_best(best_params, history)
        if on_event:
            on_event(
                EpochEnd(
                    epoch,
                    cfg.epochs,
                    train_loss,
                    val_loss,
                    is_best,
                    elapsed,
                    optimizer.lr,
                    stopping,
                )
            )
        if stopping:
            break

    return TrainResult(best_params, history)
