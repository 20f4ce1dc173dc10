"""What a training run reports as it goes, to its `on_event` callback (train.train and, for the
work after the last step, api.run_training). The loop never prints: the CLI shows these
(cli/progress.py) and the run log writes them (runlog.py)."""

from dataclasses import dataclass, field

from ..reading.evaluate import perplexity


@dataclass(frozen=True)
class Started:
    train_tokens: int
    val_tokens: int
    steps_per_epoch: int
    n_params: int
    time_limit: float | None = None  # the run's budget in seconds, if it has one
    model: object = None  # the ModelConfig trained
    train: object = None  # the TrainConfig it is trained with
    elapsed: float = 0.0  # seconds the run had taken before training began (reading the text)


@dataclass(frozen=True)
class Progress:
    epoch: int  # 1-based
    epochs: int | None  # None: no bound but the time budget
    step: int  # steps done in this epoch
    steps_per_epoch: int
    loss: float  # mean training loss since the epoch began (with a budget: since the last
    # validation), nats per token
    tokens_per_second: float
    elapsed: float  # seconds since the run began
    time_left: float | None = None  # seconds left of the budget, if there is one
    planned_steps: int | None = None  # with a budget: the steps the run is now planned for
    lr: float | None = None  # with a budget: the learning rate of the step just done

    @property
    def total_steps(self) -> int:
        """Steps done since training began."""
        return (self.epoch - 1) * self.steps_per_epoch + self.step

    @property
    def fraction_done(self) -> float:
        if self.planned_steps:
            return min(self.total_steps / self.planned_steps, 1.0)
        if self.time_left is not None:  # nothing planned yet: the share of the budget spent
            return self.elapsed / (self.elapsed + self.time_left)
        return self.total_steps / (self.epochs * self.steps_per_epoch)


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
    params: dict | None = field(default=None, repr=False, compare=False)  # the current weights

    @property
    def val_perplexity(self) -> float | None:
        return None if self.val_loss is None else perplexity(self.val_loss)


@dataclass(frozen=True)
class Validated:
    """A validation of a run with a time budget: every `val_every` steps (or about 8 times a
    run), and once at its end. Like every in-run validation it scores a prefix of the
    validation text (`val_tokens_scored` in the history), in one stream and again from
    zero-state starts, so its figure is not the one `rnngen eval` gives."""

    step: int  # steps done since training began
    epoch: int  # the epoch that step belongs to
    train_loss: float  # mean training loss since the previous validation
    val_loss: float | None  # None without a validation part
    is_best: bool
    elapsed: float
    time_left: float  # seconds left of the budget
    lr: float  # the learning rate of the last step
    final: bool = False  # training ends here: the time is up, the epochs are run, or patience
    stopped: str | None = None  # with final: "time", "epochs" or "patience"
    params: dict | None = field(default=None, repr=False, compare=False)  # the current weights

    @property
    def val_perplexity(self) -> float | None:
        return None if self.val_loss is None else perplexity(self.val_loss)


@dataclass(frozen=True)
class Finishing:
    """The work after the last step: `what` is "score" (the saved model on the whole validation
    text, as `rnngen eval` scores it) or "stats" (dynamic evaluation's gradient statistics);
    `done` of `total` tokens so far."""

    what: str
    done: int
    total: int
    elapsed: float  # seconds since the run began
    time_left: float | None = None  # seconds left of the budget, if there is one


@dataclass(frozen=True)
class Sampled:
    """A short text generated from the current weights after a validation (train
    --show-samples), so the text can be watched as it improves."""

    text: str
