"""Model and encoded-corpus files: versioned `.npz` archives, written atomically, validated on load.

A model file holds everything `sample` and `eval` need:
    meta            JSON: format tag, version, model config, tokenizer config, training history
    vocab           (V,) unicode, the tokens in id order
    counts          (V,) int64, each token's frequency in the training text
    param.<name>    one array per parameter, names and shapes fixed by the model config
    stats.<name>    optional, all or none: each parameter's mean squared gradient on training text
                    (float32, its shape), for dynamic evaluation (adapt.py)
Meta may also hold "adapt": the neural cache and dynamic evaluation settings `rnngen tune --write`
stored (adapt.CacheSettings, adapt.DynamicSettings; see adapt_settings).
An encoded corpus has `meta`, `vocab`, `counts` and `ids` (n_tokens,) int32.

Loading trusts nothing in the file. npzcheck.py checks the zip directory and reads each member's
`.npy` header on its own (never np.load, never pickle); this module checks those dtypes and shapes
against what the small meta JSON says the file must hold before any array is read, and checks the
values last: finite weights, a unique vocabulary with the specials first, counts that are not
negative, ids inside the vocabulary. Sizes are capped (npzcheck.MAX_BYTES, MAX_META_BYTES).
Anything unexpected is a ModelFileError naming the file and the problem, never a traceback.

The reading steps are public (open_archive, read_meta, config_from, model_shapes, expect_members,
expect_member, expect_vocab, read_vocab, read_finite; vocab_arrays and meta_array for writing), so
that checkpoint.py reads its own format with the same checks.
"""

import json
import math
import os
import struct
import tempfile
import zipfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from ..core import backend
from ..core.model import ModelConfig, file_shapes, split_output
from ..errors import ConfigError, MissingInputError, ModelFileError, OutputError
from ..text.corpus import Corpus
from ..text.tokenize import LEGACY_SETTINGS, TokenizerConfig
from ..text.vocab import Vocab
from .npzcheck import MAX_BYTES, NpzReader

MODEL_FORMAT = "rnngen-model"
CORPUS_FORMAT = "rnngen-corpus"
VERSION = 1


@dataclass
class TrainedModel:
    config: ModelConfig
    tokenizer: TokenizerConfig
    vocab: Vocab
    params: dict  # name -> array, in the file layout: see model.file_shapes
    history: dict = field(default_factory=dict)  # training summary: epochs, best validation, time
    stats: dict | None = None  # name -> mean squared gradient (dynamic evaluation), or None
    adapt: dict | None = None  # tuned settings: {"cache": {...}, "dynamic": {...}}, either optional


# --- writing --------------------------------------------------------------------------------


def atomic_write(path, write) -> None:
    """Call write(file) on a temporary file in the target's folder, fsync it, then rename it over
    the target and fsync the folder: readers see the old file or the new one, never a mixture."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as e:
        raise OutputError(
            f"cannot write {path}: {e.strerror}; choose another output path"
        ) from None
    try:
        # mkstemp makes the file private (0600); give it the mode a plain open() would have.
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise OutputError(f"cannot write {path}: {e.strerror}") from None
        raise
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def meta_array(meta: dict) -> np.ndarray:
    return np.array(json.dumps(meta, sort_keys=True))


def vocab_arrays(vocab: Vocab) -> dict:
    return {
        "vocab": np.array(vocab.tokens, dtype=str),
        "counts": np.array(vocab.counts, dtype=np.int64),
    }


def save_model(path, model: TrainedModel) -> None:
    meta = {
        "format": MODEL_FORMAT,
        "version": VERSION,
        "model": model.config.to_dict(),
        "tokenizer": model.tokenizer.to_dict(),
        "n_specials": model.vocab.n_specials,
        "history": model.history,
    }
    if model.adapt:
        meta["adapt"] = adapt_settings(model.adapt)  # checked before anything is written
    arrays = {"meta": meta_array(meta), **vocab_arrays(model.vocab)}
    params = split_output(model.params)  # parameters as training holds them are split here
    for name in file_shapes(model.config):
        arrays[f"param.{name}"] = backend.to_numpy(params[name])  # from a GPU too
    if model.stats is not None:
        stats = split_output(model.stats)
        for name in file_shapes(model.config):
            arrays[f"stats.{name}"] = backend.to_numpy(stats[name]).astype(np.float32)
    atomic_write(path, lambda f: np.savez(f, **arrays))


def save_corpus(path, corpus: Corpus) -> None:
    meta = {
        "format": CORPUS_FORMAT,
        "version": VERSION,
        "tokenizer": corpus.tokenizer.to_dict(),
        "n_specials": corpus.vocab.n_specials,
    }
    arrays = {"meta": meta_array(meta), **vocab_arrays(corpus.vocab), "ids": corpus.ids}
    atomic_write(path, lambda f: np.savez(f, **arrays))


# --- reading --------------------------------------------------------------------------------
# A file is checked from the outside in, and nothing is allocated on its word: the zip directory
# (npzcheck), then the small meta member that says what the file should hold, then every member's
# declared dtype and shape against that, and only then the data, whose values are checked last.

ZIP_MAGIC = b"PK\x03\x04"
MAX_META_BYTES = 4 * 2**20  # the meta JSON, stored as UTF-32; a long training history fits
MODEL_META_KEYS = {"format", "version", "model", "tokenizer", "n_specials", "history"}
MODEL_META_OPTIONAL = {"adapt"}
CORPUS_META_KEYS = {"format", "version", "tokenizer", "n_specials"}

# Whatever numpy, zipfile, zlib, json or struct raise on a damaged file becomes a ModelFileError.
# (RuntimeError covers zipfile's NotImplementedError and json's RecursionError.)
_FAILURES = (
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    ArithmeticError,
    RuntimeError,
    OSError,
    EOFError,
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    struct.error,
    ConfigError,
)


def is_npz(path) -> bool:
    """True when the file starts like a zip archive (an `.npz`), whatever its name."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == ZIP_MAGIC
    except OSError:
        return False


def _reason(e: Exception) -> str:
    text = str(e).splitlines()[0] if str(e).strip() else type(e).__name__
    return text if len(text) <= 160 else text[:157] + "..."


@contextmanager
def open_archive(path, what, name=None):
    """A checked NpzReader over the file; any failure in the block becomes a ModelFileError,
    naming the file as `name` (for a spooled standard input), else by its path."""
    path = Path(path)
    label = name or path
    if not path.exists():
        hint = "train one with `rnngen train`" if what == "model" else "check the path"
        raise MissingInputError(f"{label} does not exist; {hint}")
    try:
        file = open(path, "rb")
    except IsADirectoryError:
        # A folder where a file should be: the file is missing (66), as for a text input.
        raise MissingInputError(f"{label} is a folder; give the path of an rnngen {what}") from None
    except OSError as e:
        raise MissingInputError(f"cannot read {label}: {e.strerror}") from None
    with file:
        try:
            if file.read(len(ZIP_MAGIC)) != ZIP_MAGIC:
                raise ModelFileError(f"{label} is not an rnngen file (not an .npz archive)")
            archive = zipfile.ZipFile(file)
        except ModelFileError:
            raise
        except _FAILURES as e:
            raise ModelFileError(
                f"{label} is not an rnngen file (unreadable zip archive: {_reason(e)})"
            ) from None
        with archive:
            try:
                yield NpzReader(archive, os.fstat(file.fileno()).st_size)
            except ModelFileError:
                raise
            except _FAILURES as e:
                raise ModelFileError(
                    f"{label} is not a valid rnngen {what} ({_reason(e)})"
                ) from None


def read_meta(
    reader: NpzReader, expected_format: str, keys: set, optional=frozenset(), versions=(VERSION,)
) -> dict:
    """The meta JSON, read first (it is small and capped) because it says what else to expect;
    its format version must be one of `versions`."""
    if "meta" not in reader.names:
        held = ", ".join(sorted(reader.names)) or "nothing"
        raise ValueError(f"no meta member; it holds: {held}")
    head = reader.header("meta")
    if head.dtype.kind != "U" or head.shape != ():
        raise ValueError("meta member is not a JSON string")
    if head.nbytes > MAX_META_BYTES:
        raise ValueError(f"meta member is {head.nbytes:,} bytes, over the {MAX_META_BYTES:,} limit")
    try:
        meta = json.loads(reader.read("meta").item())
    except (ValueError, RecursionError) as e:
        raise ValueError(f"meta is not JSON: {e}") from None
    if not isinstance(meta, dict):
        raise ValueError("meta is not a JSON object")
    if meta.get("format") != expected_format:
        raise ValueError(f"format is {meta.get('format')!r}, expected {expected_format!r}")
    version = meta.get("version")
    if type(version) is not int or version not in versions:
        readable = " and ".join(str(v) for v in versions)
        raise ValueError(f"format version {version!r}; this rnngen reads version {readable}")
    if not keys <= set(meta) <= keys | optional:
        missing, unknown = sorted(keys - set(meta)), sorted(set(meta) - keys - optional)
        raise ValueError(f"meta keys missing: {missing or 'none'}, unknown: {unknown or 'none'}")
    return meta


# The JSON types each config field type accepts (bool is an int to Python, but not here), keyed by
# the type and by its name too, in case a config module postpones its annotations into strings.
_JSON_TYPES = {int: int, float: (int, float), bool: bool, str: str}
_JSON_TYPES.update({t.__name__: v for t, v in list(_JSON_TYPES.items())})


def config_from(cls, data, what):
    if not isinstance(data, dict):
        raise ValueError(f"{what} settings are not an object")
    types = {f.name: f.type for f in fields(cls)}
    unknown = set(data) - set(types)
    if unknown:
        raise ValueError(f"unknown {what} settings: {', '.join(sorted(unknown))}")
    for key, value in data.items():
        expected = _JSON_TYPES.get(types[key])
        if expected is not None and (
            isinstance(value, bool) != (expected is bool) or not isinstance(value, expected)
        ):
            wanted = getattr(types[key], "__name__", types[key])
            raise ValueError(f"{what} setting {key} is {value!r}, expected {wanted}")
    return cls(**data)


def read_tokenizer(data) -> TokenizerConfig:
    """The tokenizer settings of a file; a setting the file predates takes the value that meant
    what the file's tokens mean (tokenize.LEGACY_SETTINGS: a model made before `lines` existed
    kept every line break, one made before `attach` spaced punctuation by the built-in rules)."""
    if isinstance(data, dict):
        data = {**LEGACY_SETTINGS, **data}
    return config_from(TokenizerConfig, data, "tokenizer")


def is_float(dtype) -> bool:
    return dtype.kind == "f" and dtype.itemsize in (4, 8)


def is_int(dtype) -> bool:
    return dtype.kind in "iu"


def is_str(dtype) -> bool:
    return dtype.kind == "U"


def expect_member(reader: NpzReader, name: str, dtype_ok, shape: tuple, what: str) -> None:
    """Refuse a member whose header declares another dtype or shape (None: any length), before
    any of its data is read."""
    head = reader.header(name)
    shape_ok = len(head.shape) == len(shape) and all(
        want is None or got == want for got, want in zip(head.shape, shape, strict=False)
    )
    if not dtype_ok(head.dtype) or not shape_ok:
        wanted = str(tuple("n" if n is None else n for n in shape)).replace("'", "")
        raise ValueError(f"{name} is {head.dtype} {head.shape}, expected {what} {wanted}")


def expect_members(reader: NpzReader, expected: set) -> None:
    names = set(reader.names)
    if names != expected:
        missing, extra = sorted(expected - names), sorted(names - expected)
        raise ValueError(f"members missing: {missing or 'none'}, unexpected: {extra or 'none'}")


def expect_vocab(reader: NpzReader, V) -> None:
    expect_member(reader, "vocab", is_str, (V,), "strings")
    V = reader.header("vocab").shape[0]
    expect_member(reader, "counts", is_int, (V,), "integers")


def read_vocab(reader: NpzReader, meta: dict, tokenizer: TokenizerConfig) -> Vocab:
    """The vocabulary, whose headers expect_vocab has checked: unique non-empty strings, the
    tokenizer's specials first, counts that are not negative."""
    tokens = reader.read("vocab").tolist()
    counts = reader.read("counts")
    if not tokens or not all(tokens):
        raise ValueError("the vocabulary is empty or has an empty token")
    if len(set(tokens)) != len(tokens):
        raise ValueError("the vocabulary has duplicate tokens")
    n_specials = meta["n_specials"]
    if (
        type(n_specials) is not int
        or n_specials != len(tokenizer.specials)
        or tuple(tokens[:n_specials]) != tokenizer.specials
    ):
        raise ValueError("the vocabulary does not start with the special tokens")
    if (counts < 0).any():
        raise ValueError("the token counts have negative values")
    return Vocab(tuple(tokens), tuple(counts.tolist()), n_specials)


def model_shapes(config: ModelConfig, reader: NpzReader) -> dict:
    """file_shapes(config), once the config is known to describe a file of a sane size."""
    # Every layer has at least three members, so this bounds file_shapes' loop over layers.
    if config.layers > len(reader.names):
        raise ValueError(f"{config.layers} layers in a file of {len(reader.names)} members")
    shapes = file_shapes(config)
    nbytes = 4 * sum(math.prod(shape) for shape in shapes.values())
    if nbytes > MAX_BYTES:
        raise ValueError(f"the model settings imply {nbytes:,} bytes of weights, over the limit")
    return shapes


def adapt_settings(data) -> dict:
    """Tuned adaptation settings, checked: {"cache": {size, theta, lambda}, "dynamic": {lr, decay,
    length}, "both": {the cache's, when used with dynamic}, "both_dynamic": {dynamic's, when used
    with the cache}}, each part optional, each value of its type and in its range."""
    from ..reading.settings import CacheSettings, DynamicSettings

    parts = {
        "cache": (CacheSettings, {"size": int, "theta": float, "lambda": float}),
        "dynamic": (DynamicSettings, {"lr": float, "decay": float, "length": int}),
        "both": (CacheSettings, {"size": int, "theta": float, "lambda": float}),  # with dynamic
        "both_dynamic": (DynamicSettings, {"lr": float, "decay": float, "length": int}),
    }
    if not isinstance(data, dict) or not set(data) <= set(parts):
        raise ValueError("adapt settings are not an object of cache and dynamic settings")
    for part, values in data.items():
        cls, types = parts[part]
        optional = {"params": str} if part == "dynamic" else {}  # absent from older files
        if not isinstance(values, dict) or not set(types) <= set(values) <= {*types, *optional}:
            raise ValueError(f"adapt {part} settings need exactly: {', '.join(types)}")
        for key, kind in {**types, **optional}.items():
            if key not in values:
                continue
            value = values[key]
            if isinstance(value, bool) or not isinstance(value, _JSON_TYPES[kind]):
                raise ValueError(
                    f"adapt {part} setting {key} is {value!r}, expected {kind.__name__}"
                )
        try:
            cls.from_dict(values)  # the ranges
        except ConfigError as e:  # named as in the file, not as a command-line option
            tuned = "the model file's tuned {}" + (" (with dynamic)" if part == "both" else "")
            raise ValueError(e.named(tuned.format)) from None
    if "both" in data and "dynamic" not in data:
        raise ValueError("adapt settings for cache with dynamic need the dynamic settings")
    return data


def read_finite(reader: NpzReader, name: str, label: str | None = None) -> np.ndarray:
    """A member whose header expect_member has checked, refused (as `label`, else its name) if it
    holds NaN or infinity."""
    array = reader.read(name)
    if not np.isfinite(array).all():
        raise ValueError(f"{label or name} has NaN or infinite values")
    return array


def load_model(path, name=None) -> TrainedModel:
    """Read and validate a model file; any problem is a ModelFileError naming it as `name`, else
    by its path."""
    with open_archive(path, "model", name) as reader:
        meta = read_meta(reader, MODEL_FORMAT, MODEL_META_KEYS, MODEL_META_OPTIONAL)
        tokenizer = read_tokenizer(meta["tokenizer"])
        config = config_from(ModelConfig, meta["model"], "model")
        if not isinstance(meta["history"], dict):
            raise ValueError("history is not an object")
        adapt = adapt_settings(meta["adapt"]) if "adapt" in meta else None
        shapes = model_shapes(config, reader)
        members = {"meta", "vocab", "counts", *(f"param.{n}" for n in shapes)}
        has_stats = any(name.startswith("stats.") for name in reader.names)
        if has_stats:  # all or none
            members |= {f"stats.{n}" for n in shapes}
        expect_members(reader, members)
        expect_vocab(reader, config.vocab_size)
        for name, shape in shapes.items():
            expect_member(reader, f"param.{name}", is_float, shape, "float32 or float64")
            if has_stats:
                expect_member(reader, f"stats.{name}", is_float, shape, "float32 or float64")
        vocab = read_vocab(reader, meta, tokenizer)
        params = {n: read_finite(reader, f"param.{n}", f"parameter {n}") for n in shapes}
        stats = None
        if has_stats:
            stats = {
                n: read_finite(reader, f"stats.{n}", f"gradient statistics {n}") for n in shapes
            }
            for name, values in stats.items():
                if (values < 0).any():
                    raise ValueError(f"gradient statistics {name} have negative values")
    return TrainedModel(config, tokenizer, vocab, params, meta["history"], stats, adapt)


def load_corpus(path, mmap: bool = False) -> Corpus:
    """Read and validate an encoded corpus written by `rnngen encode`. With mmap, the ids are
    mapped from the file rather than read into memory (training reads them batch by batch)."""
    with open_archive(path, "corpus") as reader:
        meta = read_meta(reader, CORPUS_FORMAT, CORPUS_META_KEYS)
        tokenizer = read_tokenizer(meta["tokenizer"])
        expect_members(reader, {"meta", "vocab", "counts", "ids"})
        expect_vocab(reader, None)
        expect_member(reader, "ids", is_int, (None,), "integers")
        vocab = read_vocab(reader, meta, tokenizer)
        ids = reader.memmap("ids") if mmap else None
        if ids is None:
            ids = reader.read("ids")
        if len(ids) == 0:
            raise ValueError("ids are empty")
        if ids.min() < 0 or ids.max() >= len(vocab):
            raise ValueError("ids outside the vocabulary")
    return Corpus(tokenizer, vocab, ids.astype(np.int32, copy=False))
