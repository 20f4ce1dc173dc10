"""What adapting to the text reads with: the neural cache's and dynamic evaluation's settings
(stored in model files by `rnngen tune --write`), and the two together."""

import math
from dataclasses import dataclass

from ..errors import ConfigError


def _positive_finite(name: str, value, low=0.0, low_open=False, high=None, high_open=False):
    bad = not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value)
    if not bad:
        bad = value < low or (low_open and value == low)
        if high is not None:
            bad = bad or value > high or (high_open and value == high)
    if bad:
        lo = "(" if low_open else "["
        hi = "" if high is None else f", {high}{')' if high_open else ']'}"
        span = f"in {lo}{low:g}{hi}" if high is not None else f"at least {low:g}"
        if low_open and high is None:
            span = f"above {low:g}"
        raise ConfigError(f"must be a finite number {span}, got {value}", name)


@dataclass(frozen=True)
class CacheSettings:
    # defaults: those meeting issue 22's floors on the most books (results/adapt_books.md)
    size: int = 1000  # W, positions remembered
    theta: float = 0.2  # sharpness of the match between hidden states
    lam: float = 0.2  # weight of the cache in the mixture

    def __post_init__(self):
        if not isinstance(self.size, int) or isinstance(self.size, bool) or self.size < 1:
            raise ConfigError(
                f"must be a whole number of at least 1, got {self.size}", "cache.size"
            )
        _positive_finite("cache.theta", self.theta)
        _positive_finite("cache.lambda", self.lam, high=1.0, high_open=True)

    def to_dict(self) -> dict:
        return {"size": self.size, "theta": self.theta, "lambda": self.lam}

    @classmethod
    def from_dict(cls, data: dict) -> "CacheSettings":
        return cls(int(data["size"]), float(data["theta"]), float(data["lambda"]))


DYNAMIC_PARAMS = ("all", "output")  # what dynamic evaluation adapts (reading/dynamic.py)


@dataclass(frozen=True)
class DynamicSettings:
    # defaults: those meeting issue 22's floors on the most books (results/adapt_books.md)
    lr: float = 0.0003  # step size, in units of each weight's gradient RMS on training data
    decay: float = 0.001  # pull back toward the trained weights per segment
    length: int = 50  # n, tokens per segment (one step after each)
    # "all": every weight, the exact method; "output": the output layer at the segment's words
    # and their likeliest alternatives only (cheaper; dynamic.py says what it does)
    params: str = "all"

    def __post_init__(self):
        _positive_finite("dynamic.lr", self.lr)
        _positive_finite("dynamic.decay", self.decay, high=1.0)
        if not isinstance(self.length, int) or isinstance(self.length, bool) or self.length < 1:
            raise ConfigError(
                f"must be a whole number of at least 1, got {self.length}", "dynamic.length"
            )
        if self.params not in DYNAMIC_PARAMS:
            raise ConfigError(
                f"--dynamic-params must be one of {', '.join(DYNAMIC_PARAMS)}, got {self.params!r}"
            )

    def to_dict(self) -> dict:
        out = {"lr": self.lr, "decay": self.decay, "length": self.length}
        if self.params != "all":  # as files and reports without it read: every weight
            out["params"] = self.params
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "DynamicSettings":
        # files written before "params" existed adapted every weight
        params = data.get("params", "all")
        return cls(float(data["lr"]), float(data["decay"]), int(data["length"]), params)


@dataclass(frozen=True)
class Adaptation:
    """What to adapt with: a cache, dynamic evaluation (with its statistics), or both."""

    cache: CacheSettings | None = None
    dynamic: DynamicSettings | None = None
    stats: dict | None = None  # name -> mean squared gradient, needed with dynamic

    def __post_init__(self):
        if self.dynamic is not None and self.stats is None:
            raise ConfigError(
                "{0} needs gradient statistics, and this model file has none; give "
                "{1} TRAINING_TEXT to compute them",
                "dynamic",
                "dynamic.stats",
            )
