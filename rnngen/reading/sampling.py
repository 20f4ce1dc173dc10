"""Choosing the next token: the sampler chain of `rnngen sample`, as pure functions on a (V,)
vector of scores. The reader hands it log-probabilities on every path (the full softmax, the
class softmax and the cache's mixture: the last two have no logits), so the options act on
log p; all but the repeat penalty are the same on logits, which differ by a constant.

The options have llama.cpp's names and meanings, and are applied in llama.cpp's default order
(its `common_params_sampling.samplers`: penalties, DRY, top-k, top-p, min-p, temperature, then
the draw; the samplers rnngen lacks, typical-p, XTC and top-n-sigma, left out):

1. repeat penalty: each token among the last `repeat_last_n` tokens (the start text counts) has
   its score multiplied by `repeat_penalty` where it is zero or negative and divided by it where
   positive. On log-probabilities (never positive) that is log p -> R log p, p -> p^R before the
   renormalisation: a penalty R > 1 always lowers a recent token's probability, and more so the
   less likely it already was (llama.cpp applies the same rule to logits, whose zero point is
   arbitrary: there a positive logit is divided, so R acts on the logit's distance from zero);
1b. DRY (dry.py): the token that would extend a repeat of at least `dry_allowed_length` tokens
   of the last `dry_last_n` loses dry_multiplier * dry_base ** (match - allowed) from its score
   (the same on log-probabilities and logits); sequence breakers (tokens; their ids bound to a
   vocabulary with `bind`) cut matches. Off in SamplerSettings() (the plain chain); `rnngen
   sample` turns it on (DEFAULT);
2. top-k: keep the k highest scores (exactly k: ties broken by the lower id, which in an rnngen
   vocabulary is the more frequent token);
3. top-p (nucleus): keep the likeliest tokens whose probabilities, normalised over the tokens
   still in, first add up to at least p;
4. min-p: keep the tokens whose probability is at least p times the likeliest one's;
5. temperature: divide the scores by T; T = 0 keeps only the likeliest token (greedy);
6. draw one token from the softmax of what is left (one uniform number, inverse CDF in id order).

The filters come before the temperature, so they see the model's own distribution and the
temperature only reshapes what survives them. Letters: V vocabulary. Removed tokens get a score
of -inf; every function returns a new float64 array.
"""

import math
from dataclasses import dataclass, fields, replace

import numpy as np

from ..core.numerics import logsumexp
from ..errors import ConfigError
from . import dry


@dataclass(frozen=True)
class SamplerSettings:
    temperature: float = 1.0  # divide scores by this; 0 is greedy
    top_k: int = 0  # keep this many tokens; 0: off
    top_p: float = 1.0  # nucleus mass in [0, 1]; 1: off
    min_p: float = 0.0  # keep p >= min_p * p_max, in [0, 1]; 0: off
    repeat_penalty: float = 1.0  # > 0; 1: off
    repeat_last_n: int = 64  # tokens the penalty looks back on; -1: all so far, 0: off
    dry_multiplier: float = 0.0  # DRY's penalty scale; 0: off
    dry_base: float = 1.75  # the penalty grows by this factor per token of match past allowed
    dry_allowed_length: int = 2  # repeats this long go free
    dry_last_n: int = 1024  # tokens DRY looks back on; -1: all so far, 0: off
    dry_sequence_breakers: tuple = ()  # tokens no match runs across (never penalised)
    dry_breaker_ids: frozenset | None = None  # their ids in a vocabulary (bind); None: unbound

    def __post_init__(self):
        _check_float("temperature", self.temperature, 0.0, None, "at least 0")
        _check_int("top_k", self.top_k, 0)
        _check_float("top_p", self.top_p, 0.0, 1.0, "between 0 and 1")
        _check_float("min_p", self.min_p, 0.0, 1.0, "between 0 and 1")
        _check_float("repeat_penalty", self.repeat_penalty, 0.0, None, "above 0", open_low=True)
        _check_int("repeat_last_n", self.repeat_last_n, -1)
        _check_float("dry_multiplier", self.dry_multiplier, 0.0, None, "at least 0")
        _check_float("dry_base", self.dry_base, 1.0, None, "at least 1")
        _check_int("dry_allowed_length", self.dry_allowed_length, 1)
        _check_int("dry_last_n", self.dry_last_n, -1)
        if any(not isinstance(t, str) or not t for t in self.dry_sequence_breakers):
            raise ConfigError(
                "takes tokens such as . or \\n\\n, not empty texts",
                "sampling.dry_sequence_breakers",
            )

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    @property
    def truncates(self) -> bool:
        """Whether top-k, top-p or min-p can remove tokens."""
        return self.top_k > 0 or self.top_p < 1 or self.min_p > 0

    @property
    def penalises(self) -> bool:
        return self.repeat_penalty != 1 and self.repeat_last_n != 0

    @property
    def dries(self) -> bool:
        """Whether DRY is on."""
        return self.dry_multiplier > 0 and self.dry_last_n != 0


_DRY = ("dry_multiplier", "dry_base", "dry_allowed_length", "dry_last_n", "dry_sequence_breakers")


def sampler_settings(greedy: bool = False, **given) -> SamplerSettings:
    """Settings from command-line options, where None means the option was not given; `greedy`
    stands for temperature 0 and contradicts every other option."""
    given = {name: value for name, value in given.items() if value is not None}
    known = {f.name for f in fields(SamplerSettings)}
    unknown = set(given) - known
    if unknown:
        raise TypeError(f"unknown sampler settings: {', '.join(sorted(unknown))}")
    ignored = [name for name in given if name not in _DRY]  # DRY acts before the argmax
    if greedy and ignored:
        names = ", ".join(f"{{{i + 1}}}" for i in range(len(ignored)))
        raise ConfigError(
            f"{{0}} takes the likeliest token, so {names} would be ignored; drop one "
            f"({{{len(ignored) + 1}}} 0 with other settings is greedy after them)",
            "sampling.greedy",
            *(f"sampling.{name}" for name in ignored),
            "sampling.temperature",
        )
    if "repeat_last_n" in given and "repeat_penalty" not in given:
        raise ConfigError(
            "{0} only applies with {1}; give both",
            "sampling.repeat_last_n",
            "sampling.repeat_penalty",
        )
    if "dry_sequence_breakers" in given:
        given["dry_sequence_breakers"] = tuple(given["dry_sequence_breakers"])
    return SamplerSettings(**given, **({"temperature": 0.0} if greedy else {}))


def bind(settings: SamplerSettings, vocab) -> SamplerSettings:
    """The settings with the DRY sequence breakers' ids in `vocab` (breakers it lacks can never
    occur, and are dropped)."""
    ids = frozenset(vocab.id(t) for t in settings.dry_sequence_breakers if t in vocab)
    return replace(settings, dry_breaker_ids=ids)


def _check_float(name, value, low, high, wanted, open_low=False):
    ok = isinstance(value, (int, float)) and math.isfinite(value)
    ok = ok and (value > low if open_low else value >= low) and (high is None or value <= high)
    if not ok:
        raise ConfigError(f"must be a finite number {wanted}, got {value}", f"sampling.{name}")


def _check_int(name, value, low):
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ConfigError(
            f"must be a whole number of at least {low}, got {value}", f"sampling.{name}"
        )


GREEDY = SamplerSettings(temperature=0.0)
DEFAULT = SamplerSettings(dry_multiplier=3.0)  # `rnngen sample`'s defaults: DRY on


def dry_penalties(history, settings: SamplerSettings) -> tuple:
    """DRY's (ids (k,), amounts (k,)) after `history`, to subtract from their scores."""
    if not settings.dries:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    breakers = settings.dry_breaker_ids
    if breakers is None:
        if settings.dry_sequence_breakers:
            raise ValueError("DRY's sequence breakers need ids: sampling.bind(settings, vocab)")
        breakers = frozenset()
    return dry.penalties(
        history, settings.dry_multiplier, settings.dry_base, settings.dry_allowed_length,
        settings.dry_last_n, breakers,
    )  # fmt: skip


def recent_ids(history, settings: SamplerSettings) -> np.ndarray:
    """The distinct ids the repeat penalty applies to: those among the last repeat_last_n of
    `history` (all of it for -1); none when the penalty is off."""
    if not settings.penalises or len(history) == 0:
        return np.zeros(0, dtype=np.int64)
    n = settings.repeat_last_n
    window = history if n < 0 else history[-n:]
    return np.unique(np.asarray(window, dtype=np.int64))


# --- the chain, one pure function per option --------------------------------------------------


def repeat_penalty(scores, ids, penalty: float) -> np.ndarray:
    """scores (V,) with the scores of `ids` (distinct) penalised: multiplied by `penalty` where
    zero or negative (every log-probability), divided by it where positive (llama.cpp's rule
    for logits)."""
    out = np.array(scores, dtype=np.float64)
    ids = np.asarray(ids, dtype=np.int64)
    if penalty != 1 and len(ids):
        s = out[ids]
        out[ids] = np.where(s <= 0, s * penalty, s / penalty)
    return out


def top_k(scores, k: int) -> np.ndarray:
    """Only the k highest scores stay (exactly k; among equal scores the lower ids); k <= 0 or
    k at least the tokens still in: unchanged."""
    s = np.array(scores, dtype=np.float64)
    finite = np.isfinite(s)
    if k <= 0 or k >= int(finite.sum()):
        return s
    kth = np.partition(s, len(s) - k)[len(s) - k]  # the k-th highest value
    keep = s > kth
    tied = np.flatnonzero(s == kth)[: k - int(keep.sum())]  # lower ids first
    keep[tied] = True
    s[~keep] = -np.inf
    return s


def top_p(scores, p: float, log_total: float | None = None) -> np.ndarray:
    """The nucleus: the likeliest tokens, in decreasing probability (equal ones by id), up to
    and including the first at which their probabilities add up to at least p; p >= 1:
    unchanged. Probabilities are exp(score - log_total), log_total defaulting to the
    log-sum-exp of the scores still in (a caller holding only part of a distribution gives the
    whole one's)."""
    s = np.array(scores, dtype=np.float64)
    if p >= 1:
        return s
    ids = np.flatnonzero(np.isfinite(s))
    if len(ids) == 0:
        return s
    if log_total is None:
        log_total = float(logsumexp(s[ids]))
    order = ids[np.argsort(-s[ids], kind="stable")]
    cumulative = np.cumsum(np.exp(s[order] - log_total))
    cut = int(np.searchsorted(cumulative, p, side="left"))  # first index reaching p
    if cut < len(order):
        s[order[cut + 1 :]] = -np.inf
    return s


def min_p(scores, p: float) -> np.ndarray:
    """Only tokens with probability at least p times the likeliest one's stay; p <= 0:
    unchanged."""
    s = np.array(scores, dtype=np.float64)
    if p <= 0 or not np.isfinite(s).any():
        return s
    s[s < s.max() + math.log(p)] = -np.inf
    return s


def temperature(scores, t: float) -> np.ndarray:
    """Scores divided by t; t = 0 keeps only the highest (the lowest id among equals)."""
    s = np.array(scores, dtype=np.float64)
    if t == 0:
        best = int(np.argmax(s))
        value = s[best]
        s[:] = -np.inf
        s[best] = value
        return s
    return s if t == 1 else s / t


def draw(scores, rng: np.random.Generator) -> int:
    """One id drawn from softmax(scores): one uniform number through the CDF in id order."""
    s = np.asarray(scores, dtype=np.float64)
    cdf = np.cumsum(np.exp(s - s.max()))
    index = int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"))
    return min(index, int(np.flatnonzero(np.isfinite(s))[-1]))


# --- the whole chain ----------------------------------------------------------------------------


def truncate(scores, settings: SamplerSettings, log_total: float | None = None) -> np.ndarray:
    """top-k, then top-p, then min-p. log_total: see top_p (only used when top-k is off: after
    top-k, top-p normalises over the k tokens left, as in llama.cpp)."""
    s = np.asarray(scores, dtype=np.float64)
    if settings.top_k > 0:
        s, log_total = top_k(s, settings.top_k), None
    s = top_p(s, settings.top_p, log_total)
    return min_p(s, settings.min_p)


def choose(scores, settings: SamplerSettings, rng: np.random.Generator) -> int:
    """Temperature and the draw; greedy (temperature 0) takes the highest score, lowest id
    first, and uses no random number."""
    if settings.greedy:
        return int(np.argmax(scores))
    return draw(temperature(scores, settings.temperature), rng)


def sample_token(scores, settings: SamplerSettings, history, rng: np.random.Generator) -> int:
    """The next id from a full (V,) vector of log-probabilities, after the whole chain.
    history: the ids so far (start text and generated), for the repeat penalty."""
    s = np.asarray(scores, dtype=np.float64)
    if settings.penalises:
        s = repeat_penalty(s, recent_ids(history, settings), settings.repeat_penalty)
    if settings.dries:
        s = dry.apply(s, *dry_penalties(history, settings))
    return choose(truncate(s, settings), settings, rng)


# --- a class-factorised distribution, sampled without every word's probability -----------------


def sample_factored(dist, settings: SamplerSettings, history, rng: np.random.Generator) -> int:
    """The id that sample_token would draw from dist's full (V,) log-probabilities with the same
    random state (exactly so in exact arithmetic), computing the word level of as few classes as
    the settings allow.

    dist (class_softmax.ClassDistribution) factorises log p(w) = log p(c) + log p(w | c) with
    each class a contiguous range of ids: dist.bounds (C+1,), dist.class_logp (C,), and
    dist.words(c), the log p(w) of class c's ids. What each option needs:
    - nothing (temperature 1): the class by its mass, then the word within it, with one uniform
      number: its position in the class CDF, rescaled into the class, is its position in the
      word CDF, so this is the full draw's token;
    - the repeat penalty and DRY: the word level of the penalised tokens' classes, whose masses
      change;
    - top-k, top-p, min-p and greedy: classes in decreasing log p(c) until the tokens kept are
      known, as no word of a class is likelier than the class (log p(w) <= log p(c));
    - a temperature other than 0 or 1 without those: every class, since p(w)^(1/T) =
      p(c)^(1/T) p(w|c)^(1/T) puts the sum over the class of p(w|c)^(1/T), which depends on every
      word, into the class's mass."""
    bounds = dist.bounds
    V = bounds[-1]
    words = {}  # class -> its ids' scores (log p(w), after the repeat penalty)
    full = None  # every word's log p(w), once a product over all of them costs less

    def make(classes):
        """Fill `words` for these classes: class by class, or from one product over every word
        once more than one class is asked for and the classes made would be more than an eighth
        of the classes or hold more than an eighth of the vocabulary (past that, one product
        costs less than many small ones and their Python overhead)."""
        nonlocal full
        new = [c for c in classes if c not in words]
        size = sum(bounds[c + 1] - bounds[c] for c in new)
        made = sum(len(w) for w in words.values())
        many = len(words) + len(new) > (len(bounds) - 1) // 8 or made + size > V // 8
        if full is None and len(classes) > 1 and many:
            full = dist.full()
        for c in classes:
            if c not in words:
                words[c] = full[bounds[c] : bounds[c + 1]] if full is not None else dist.words(c)

    penalised = recent_ids(history, settings)
    dried, amounts = dry_penalties(history, settings)
    touched = np.union1d(penalised, dried).astype(np.int64)
    if len(touched):

        def class_of(ids):
            return np.searchsorted(np.asarray(bounds), ids, side="right") - 1

        make(np.unique(class_of(touched)).tolist())
        for c in np.unique(class_of(touched)).tolist():
            local = penalised[class_of(penalised) == c] - bounds[c]
            words[c] = repeat_penalty(words[c], local, settings.repeat_penalty)
            mine = class_of(dried) == c
            words[c] = dry.apply(words[c], dried[mine] - bounds[c], amounts[mine])
    log_mass = np.array(dist.class_logp, dtype=np.float64)
    for c, scores in words.items():
        log_mass[c] = float(logsumexp(scores))

    if not settings.truncates and settings.temperature == 1:
        u = rng.random()
        cdf = np.cumsum(np.exp(log_mass - log_mass.max()))
        x = u * cdf[-1]
        c = min(int(np.searchsorted(cdf, x, side="right")), len(cdf) - 1)  # x = cdf[-1]: the last
        below = cdf[c - 1] if c else 0.0
        make([c])
        scores = words[c]
        fraction = (x - below) / (cdf[c] - below)  # where u falls within the class
        word_cdf = np.cumsum(np.exp(scores - scores.max()))
        j = int(np.searchsorted(word_cdf, fraction * word_cdf[-1], side="right"))
        return bounds[c] + min(j, int(np.flatnonzero(np.isfinite(scores))[-1]))

    log_total = float(logsumexp(log_mass))
    pending = [c for c in np.argsort(-log_mass, kind="stable").tolist() if c not in words]
    if not settings.truncates and not settings.greedy:
        make(pending)
    batch = 1
    while full is None and pending:
        known = np.concatenate(list(words.values())) if words else np.zeros(0)
        if _determined(known, float(dist.class_logp[pending[0]]), settings, log_total):
            break
        # classes in doubling batches, so the check runs a logarithmic number of times
        make(pending[:batch])
        pending, batch = pending[batch:], batch * 2
    if full is not None:  # every word is known: the chain on the (V,) vector
        scores = full.copy()
        for c in words:
            scores[bounds[c] : bounds[c + 1]] = words[c]
        return choose(truncate(scores, settings, log_total), settings, rng)
    order = sorted(words)  # classes in id order, so equal scores still go to the lower id
    ids = np.concatenate([np.arange(bounds[c], bounds[c + 1]) for c in order])
    scores = np.concatenate([words[c] for c in order])
    return int(ids[choose(truncate(scores, settings, log_total), settings, rng)])


def _determined(known, bound: float, settings: SamplerSettings, log_total: float) -> bool:
    """Whether the tokens the truncation keeps are all among `known` scores, when every other
    token scores at most `bound`."""
    if len(known) == 0:
        return False
    if settings.top_k > 0:  # top-p and min-p then work within the k
        k = settings.top_k
        return len(known) >= k and np.partition(known, len(known) - k)[len(known) - k] > bound
    if settings.top_p < 1:
        ranked = np.sort(known)[::-1]
        cut = int(np.searchsorted(np.cumsum(np.exp(ranked - log_total)), settings.top_p))
        return cut < len(ranked) and ranked[cut] > bound
    if settings.min_p > 0:
        return known.max() + math.log(settings.min_p) > bound
    return known.max() > bound  # greedy
