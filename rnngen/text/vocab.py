"""The vocabulary: token strings <-> integer ids, in a deterministic order.

Special tokens come first (`<unk>` is always id 0), then tokens by falling frequency, ties broken by
the token string, so the same text always gives the same ids.
"""

import difflib
from collections import Counter
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from .tokenize import UNK


@dataclass(frozen=True)
class Vocab:
    tokens: tuple  # id -> token string
    counts: tuple  # id -> how often the token occurred in the text the vocabulary was built from
    n_specials: int  # the first n_specials ids are special tokens

    def __post_init__(self):
        object.__setattr__(self, "_index", {t: i for i, t in enumerate(self.tokens)})

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token) -> bool:
        return token in self._index

    def id(self, token: str) -> int:
        """The id of `token`, or of `<unk>` when it is not in the vocabulary."""
        return self._index.get(token, 0)

    def encode(self, tokens) -> np.ndarray:
        """Token strings -> int32 ids, unknown tokens mapped to `<unk>` (id 0)."""
        index = self._index
        return np.fromiter((index.get(t, 0) for t in tokens), dtype=np.int32, count=len(tokens))

    def decode(self, ids) -> list:
        return [self.tokens[i] for i in ids]


def build_vocab(tokens, specials=(UNK,), max_size=None, min_count=1) -> Vocab:
    """Build a vocabulary from a token list.

    max_size limits the number of ordinary tokens kept (specials are not counted); tokens seen fewer
    than min_count times are dropped. Dropped tokens' occurrences are counted under `<unk>`.
    """
    return build_vocab_from_counts(Counter(tokens), specials, max_size, min_count)


def build_vocab_from_counts(counts: Counter, specials=(UNK,), max_size=None, min_count=1) -> Vocab:
    """The same from token counts (for inputs counted piece by piece)."""
    if max_size is not None and max_size < 1:
        raise ConfigError(
            f"--max-vocab must be at least 1 (tokens kept besides the special ones), "
            f"got {max_size}; leave it out to keep every token"
        )
    if min_count < 1:
        raise ConfigError(f"--min-count must be at least 1 (1: keep every token), got {min_count}")
    counter = Counter(counts)
    special_counts = [counter.pop(s, 0) for s in specials]
    ranked = sorted(counter.items(), key=lambda item: (-item[1], item[0]))
    kept = [(t, c) for t, c in ranked if c >= min_count]
    if max_size is not None:
        kept = kept[:max_size]
    dropped = sum(counter.values()) - sum(c for _, c in kept)
    special_counts[0] += dropped  # specials[0] is <unk>
    return Vocab(
        tokens=tuple(specials) + tuple(t for t, _ in kept),
        counts=tuple(special_counts) + tuple(c for _, c in kept),
        n_specials=len(specials),
    )


# --- a start text typed on a keyboard -------------------------------------------------------------
# Keyboards type straight quotes; many books print curly ones. A straight quote or apostrophe the
# vocabulary lacks becomes the curly one it has: double quotes alternate opening and closing (`"Oh,"
# he said` -> “Oh,” he said), a single quote after a word closes (`Marooners'`), else opens, and an
# apostrophe inside a word is the curly one (`don't` -> `don’t`).
_CURLY = {"'": "’", '"': "”"}
_OPENING = {"'": "‘", '"': "“"}


def keyboard_tokens(tokens: list, vocab: Vocab) -> list:
    """The start text's tokens with straight quotes the vocabulary lacks made curly, where the
    curly form is known (anything else is left for the caller to report)."""
    out = []
    doubles = 0
    for i, token in enumerate(tokens):
        if token not in vocab:
            if token == '"':
                candidate = "“" if doubles % 2 == 0 else "”"
                doubles += 1
            elif token == "'":
                after_word = i > 0 and (tokens[i - 1][:1].isalnum() or tokens[i - 1][:1] == "_")
                candidate = "’" if after_word else "‘"
            else:
                candidate = token.replace("'", "’")
            if candidate in vocab:
                token = candidate
        elif token == '"':
            doubles += 1
        out.append(token)
    return out


def closest_known(token: str, vocab: Vocab, n: int = 3) -> list:
    """Known tokens to suggest for an unknown one: the same word in another case first (the most
    frequent first: `GAMES` -> `games`), then the closest spellings."""
    known = vocab.tokens[vocab.n_specials :]
    folded = token.casefold()
    same = [t for t in known if t.casefold() == folded and t != token]
    same.sort(key=lambda t: -vocab.counts[vocab.id(t)])  # stable: vocabulary order on ties
    close = [t for t in difflib.get_close_matches(token, known, n=n) if t not in same]
    return (same + close)[:n]
