"""Planning a training run for a wall-clock budget (`train --time`): the budget's syntax, how
many steps fit in it, when to validate, how much of the validation text to score, and the
learning rate along the way.

The plan is re-made before every step from what the run has measured so far, and from nothing
else, so the same sequence of clock readings always gives the same run (the tests replay one with
a fake clock):
    s     mean seconds per training step so far (its progress report and checkpoints included)
    v     mean seconds per validation so far (saving a new best model included); before the first
          one, the validation tokens at the training speed
    left  the steps that still fit: the time left, less v for each validation still to come (the
          last one, at the end, included), divided by s, less one step kept as a margin for the
          variation in step and validation times; never more than --epochs allows
Training stops when `left` reaches 0 (after at least one step) and validates a last time. Step k
(0 the first) of a run planned for k + left steps trains with the learning rate
    lr(k) = lr0 * (1 - k / (k + left))
a linear decay to zero at the planned end, re-aimed as the estimate moves.

The budget covers the whole run, from the moment the command began (reading the text counts)
to the saved model file: `left` also leaves time for the work after the last step (EndWork):
scoring the whole validation text once in one stream (the figure the run reports, at the cost
per token the validations measured, or before the first one at the training cost), and dynamic
evaluation's gradient statistics (at STATS_COST times the training cost per token, on at most
STATS_SHARE of the budget; the pass is cut short if it runs over), and END_MARGIN seconds for
saving the model.

Validation comes every `val_every` steps, or by default every budget / VALIDATIONS seconds after
the previous one ended (longer, where the validations measured so far would otherwise take more
than VAL_SHARE of the time, and none in the last half interval before the final one), so a run
validates about VALIDATIONS times whatever the step costs. A validation text that would take
more than VAL_SHARE of the budget over all the validations is cut to its first `val_limit`
tokens, fixed at the first validation from the training speed measured by then (at least
VAL_MIN_TOKENS), so every validation of the run scores the same tokens.
"""

import math
import re
from dataclasses import dataclass
from typing import NamedTuple

from ..errors import ConfigError

# Validations per run when --val-every is not given, the last one included, and the share of
# the budget they may take together, at training speed. With the learning rate decaying to zero
# the model is usually best near the end, so more would mostly cost training time (16 in
# 10% of the budget before; benchmarks/results/recipes.md compares the two).
VALIDATIONS = 8
VAL_SHARE = 0.05
VAL_MIN_TOKENS = 2000  # the least a capped validation scores
# A statistics token costs about this many training tokens (a forward and backward pass in 16
# streams instead of 32, no update), and the pass may take this share of the budget at most.
STATS_COST = 1.5
STATS_SHARE = 0.1
END_MARGIN = 0.5  # seconds kept for saving the model file at the end

_DURATION = re.compile(r"((?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)([smh])")
MAX_DURATION = 365 * 24 * 3600.0  # a year: a longer budget is a typing slip
_UNIT_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds in a duration written as a number and a unit: `90s`, `10m`, `1.5h`, `2e3s`; at
    most MAX_DURATION."""
    match = _DURATION.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ConfigError(
            f"--time {text!r} is not a duration; write a number and a unit, s, m or h: "
            "90s, 10m, 1.5h"
        )
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if not 0 < seconds:
        raise ConfigError(f"--time must be longer than zero, got {text!r}")
    if seconds > MAX_DURATION:
        raise ConfigError(
            f"--time {text.strip()} is too long: the most is a year (8760h); give a shorter "
            "budget, or leave --time out to train by epochs"
        )
    return seconds


def format_duration(seconds: float) -> str:
    """A budget as `parse_duration` reads it back, in the largest unit that makes it a whole
    number: 90 -> '90s', 600 -> '10m', 5400 -> '90m', 7200 -> '2h'."""
    for unit in "hm":
        count = seconds / _UNIT_SECONDS[unit]
        if count >= 1 and count == round(count):
            return f"{count:g}{unit}"
    return f"{seconds:g}s"


class Timings(NamedTuple):
    """What a run has measured so far (all times in seconds since it began)."""

    steps: int  # training steps done
    elapsed: float  # the last clock reading
    train_seconds: float  # spent in training steps
    tokens_seen: int  # training tokens (over all processes)
    validations: int  # validations done
    val_seconds: float  # spent in them
    last_val: float  # when the last one ended (0 before the first)
    val_tokens: int  # tokens each validation scores (0: not fixed before the first)


class EndWork(NamedTuple):
    """The work a run does after its last step, which its budget must leave time for."""

    score_tokens: int = 0  # validation tokens scored once in one stream (0: none)
    stats_tokens: int = 0  # training tokens the gradient statistics read (0: none)


@dataclass(frozen=True)
class Budget:
    """A run's time budget and validation rule; the measurements come with each question."""

    seconds: float  # the whole run's budget
    val_every: int = 0  # steps between validations; 0: every seconds / validations seconds
    max_steps: int | None = None  # the epochs' bound on the steps, if there is one
    end_work: EndWork = EndWork()
    validations: int = VALIDATIONS  # per run, without val_every
    val_share: float = VAL_SHARE  # of the budget, for the validations together

    def stats_seconds(self, meas: Timings) -> float:
        """What the gradient statistics are given: their estimated cost, at most STATS_SHARE
        of the budget (the pass stops where the time runs out)."""
        if not meas.tokens_seen or not self.end_work.stats_tokens:
            return 0.0
        cost = self.end_work.stats_tokens * STATS_COST * meas.train_seconds / meas.tokens_seen
        return min(cost, STATS_SHARE * self.seconds)

    def end_seconds(self, meas: Timings) -> float:
        """The time to keep after the last step: the whole validation text scored once, the
        statistics, and saving."""
        if self.end_work == EndWork():  # nothing after the last step (a library caller's run)
            return 0.0
        if not meas.tokens_seen:
            return END_MARGIN
        per_token = meas.train_seconds / meas.tokens_seen
        if meas.validations and meas.val_tokens:  # one validation scores val_tokens at least
            per_token = meas.val_seconds / meas.validations / meas.val_tokens
        score = self.end_work.score_tokens * per_token
        return score + self.stats_seconds(meas) + END_MARGIN

    def val_seconds(self, meas: Timings, n_val: int) -> float:
        """v: the mean measured validation time, or before any, the tokens it will score at the
        training speed so far."""
        if meas.validations:
            return meas.val_seconds / meas.validations
        if not meas.tokens_seen:
            return 0.0
        return self.val_limit(meas, n_val) * meas.train_seconds / meas.tokens_seen

    def interval(self, v: float) -> float:
        """Seconds from the end of a validation to the next, without val_every: budget /
        validations, or longer where validations would take more than val_share of the time."""
        share = self.val_share
        return max(self.seconds / self.validations, v * (1 - share) / share)

    def latest(self, v: float) -> float:
        """The latest an intermediate validation may begin, without val_every: half an
        interval before the final one would (it would come too soon to tell anything new)."""
        return self.seconds - v - self.interval(v) / 2

    def validations_to_come(self, meas: Timings, s: float, v: float) -> float:
        """How many validations the rest of the run will pay for, the final one included."""
        if self.val_every:
            end = self.seconds - v  # where the final validation starts
            return 1 + max(end - meas.elapsed, 0.0) / (s * self.val_every + v)
        interval = self.interval(v)
        next_due = meas.last_val + interval
        if next_due > self.latest(v):
            return 1
        return 2 + math.floor((self.latest(v) - next_due) / (interval + v))

    def steps_left(self, meas: Timings, n_val: int) -> float:
        """The steps that still fit in the budget (math.inf before the first step's timing)."""
        if meas.steps == 0 or meas.train_seconds <= 0:
            left = math.inf
        else:
            s = meas.train_seconds / meas.steps
            v = self.val_seconds(meas, n_val)
            spare = self.seconds - meas.elapsed - v * self.validations_to_come(meas, s, v)
            spare -= self.end_seconds(meas)
            left = max(math.floor(spare / s) - 1, 0)  # a step to spare: times vary
        if self.max_steps is not None:
            left = min(left, max(self.max_steps - meas.steps, 0))
        return left

    def validation_due(self, meas: Timings) -> bool:
        """Whether to validate after the step just measured (the final validation aside). The
        first comes budget / VALIDATIONS seconds in, whatever its estimated cost, so that the
        plan gets a measured one early."""
        if self.val_every:
            return meas.steps % self.val_every == 0
        v = meas.val_seconds / meas.validations if meas.validations else 0.0
        return meas.last_val + self.interval(v) <= meas.elapsed <= self.latest(v)

    def val_limit(self, meas: Timings, n_val: int) -> int:
        """The validation tokens every validation of the run scores (fixed at the first one):
        what VAL_SHARE of the budget, shared among the validations, scores at training speed."""
        if meas.val_tokens:  # fixed already
            return meas.val_tokens
        if not meas.train_seconds or not meas.tokens_seen:
            return n_val
        count = self.validations
        if self.val_every:
            s = meas.train_seconds / meas.steps
            count = max(1, math.ceil((self.seconds - meas.elapsed) / s / self.val_every))
        tokens_per_second = meas.tokens_seen / meas.train_seconds
        cap = math.floor(self.val_share * self.seconds / count * tokens_per_second)
        return min(n_val, max(cap, VAL_MIN_TOKENS))


def decayed_lr(lr0: float, done: int, left: float) -> float:
    """The learning rate of step `done` (0-based) with `left` steps planned after it, the current
    one included: linear decay from lr0 to zero at the planned end."""
    if math.isinf(left) or done == 0:
        return lr0
    return lr0 * (1.0 - done / (done + left))
