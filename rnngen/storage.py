"""Model and encoded-corpus files: versioned `.npz` archives, written atomically, validated on load.

A model file holds everything `sample` and `eval` need:
    meta            JSON: format tag, version, model config, tokenizer config, training history
    vocab           (V,) unicode, the tokens in id order
    counts          (V,) int64, each token's frequency in the training text
    param.<name>    one array per parameter, names and shapes fixed by the model config
An encoded corpus has `meta`, `vocab`, `counts` and `ids` (n_tokens,) int32.
Files are read with allow_pickle=False, and anything unexpected is a ModelFileError naming the
file and the problem, never a traceback.
"""

import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from .corpus import Corpus
from .errors import ConfigError, MissingInputError, ModelFileError, OutputError
from .model import ModelConfig, param_shapes
from .tokenize import TokenizerConfig
from .vocab import Vocab

MODEL_FORMAT = "rnngen-model"
CORPUS_FORMAT = "rnngen-corpus"
VERSION = 1


@dataclass
class TrainedModel:
    config: ModelConfig
    tokenizer: TokenizerConfig
    vocab: Vocab
    params: dict  # name -> array, see model.param_shapes
    history: dict = field(default_factory=dict)  # training summary: epochs, best validation, time


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


def _meta_array(meta: dict) -> np.ndarray:
    return np.array(json.dumps(meta, sort_keys=True))


def _vocab_arrays(vocab: Vocab) -> dict:
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
    arrays = {"meta": _meta_array(meta), **_vocab_arrays(model.vocab)}
    for name in param_shapes(model.config):
        arrays[f"param.{name}"] = np.asarray(model.params[name])
    atomic_write(path, lambda f: np.savez(f, **arrays))


def save_corpus(path, corpus: Corpus) -> None:
    meta = {
        "format": CORPUS_FORMAT,
        "version": VERSION,
        "tokenizer": corpus.tokenizer.to_dict(),
        "n_specials": corpus.vocab.n_specials,
    }
    arrays = {"meta": _meta_array(meta), **_vocab_arrays(corpus.vocab), "ids": corpus.ids}
    atomic_write(path, lambda f: np.savez(f, **arrays))


# --- reading --------------------------------------------------------------------------------


def is_npz(path) -> bool:
    """True when the file starts like a zip archive (an `.npz`), whatever its name."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"PK\x03\x04"
    except OSError:
        return False


def _open_npz(path, expected_format):
    path = Path(path)
    if not path.exists():
        hint = (
            "train one with `rnngen train`" if expected_format == MODEL_FORMAT else "check the path"
        )
        raise MissingInputError(f"{path} does not exist; {hint}")
    if not is_npz(path):
        raise ModelFileError(f"{path} is not an rnngen file (not an .npz archive)")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise ModelFileError(f"{path} is not an rnngen file ({_reason(e)})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ModelFileError(f"{path} is not an rnngen file (a single array, not an archive)")
    return archive


def _reason(e: Exception) -> str:
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    return text[:120]


def _config_from(cls, data, what):
    if not isinstance(data, dict):
        raise ValueError(f"{what} settings are not an object")
    names = {f.name for f in fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"unknown {what} settings: {', '.join(sorted(unknown))}")
    return cls(**data)


def _read_common(archive, expected_format, extra_names):
    names = set(archive.files)
    if "meta" not in names:
        raise ValueError("no meta member")
    meta_array = archive["meta"]
    if meta_array.dtype.kind != "U" or meta_array.shape != ():
        raise ValueError("meta member is not a JSON string")
    meta = json.loads(str(meta_array))
    if not isinstance(meta, dict) or meta.get("format") != expected_format:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise ValueError(f"format is {found!r}, expected {expected_format!r}")
    if meta.get("version") != VERSION:
        raise ValueError(
            f"format version {meta.get('version')!r}; this rnngen reads version {VERSION}"
        )
    expected = {"meta", "vocab", "counts"} | set(extra_names(meta))
    if names != expected:
        missing, extra = sorted(expected - names), sorted(names - expected)
        raise ValueError(f"members missing: {missing or 'none'}, unexpected: {extra or 'none'}")
    tokens, counts = archive["vocab"], archive["counts"]
    if tokens.dtype.kind != "U" or tokens.ndim != 1 or len(tokens) < 1:
        raise ValueError("vocab is not a list of strings")
    if counts.dtype.kind not in "iu" or counts.shape != tokens.shape:
        raise ValueError("counts do not match the vocabulary")
    token_list = tokens.tolist()
    if len(set(token_list)) != len(token_list):
        raise ValueError("the vocabulary has duplicate tokens")
    tokenizer = _config_from(TokenizerConfig, meta.get("tokenizer"), "tokenizer")
    n_specials = meta.get("n_specials")
    if (
        n_specials != len(tokenizer.specials)
        or tuple(token_list[:n_specials]) != tokenizer.specials
    ):
        raise ValueError("the vocabulary does not start with the special tokens")
    vocab = Vocab(tuple(token_list), tuple(int(c) for c in counts), n_specials)
    return meta, tokenizer, vocab


def load_model(path) -> TrainedModel:
    """Read and validate a model file; any problem is a ModelFileError."""
    archive = _open_npz(path, MODEL_FORMAT)
    try:
        with archive:
            meta, tokenizer, vocab = _read_common(
                archive,
                MODEL_FORMAT,
                lambda m: (f"param.{n}" for n in param_shapes(_model_config(m))),
            )
            config = _model_config(meta)
            if config.vocab_size != len(vocab):
                raise ValueError(f"vocab has {len(vocab)} tokens, the model {config.vocab_size}")
            params = {}
            for name, shape in param_shapes(config).items():
                array = archive[f"param.{name}"]
                if array.dtype not in (np.float32, np.float64) or array.shape != shape:
                    raise ValueError(
                        f"parameter {name} is {array.dtype} {array.shape}, expected float {shape}"
                    )
                if not np.isfinite(array).all():
                    raise ValueError(f"parameter {name} has NaN or infinite values")
                params[name] = array
            history = meta.get("history", {})
            if not isinstance(history, dict):
                raise ValueError("history is not an object")
    except ModelFileError:
        raise
    except (
        ValueError,
        KeyError,
        TypeError,
        OSError,
        EOFError,
        zipfile.BadZipFile,
        ConfigError,
    ) as e:
        raise ModelFileError(f"{path} is not a valid rnngen model ({_reason(e)})") from None
    return TrainedModel(config, tokenizer, vocab, params, history)


def _model_config(meta) -> ModelConfig:
    return _config_from(ModelConfig, meta.get("model"), "model")


def load_corpus(path) -> Corpus:
    """Read and validate an encoded corpus written by `rnngen encode`."""
    archive = _open_npz(path, CORPUS_FORMAT)
    try:
        with archive:
            _, tokenizer, vocab = _read_common(archive, CORPUS_FORMAT, lambda m: ("ids",))
            ids = archive["ids"]
            if ids.dtype.kind not in "iu" or ids.ndim != 1 or len(ids) == 0:
                raise ValueError("ids are not a list of integers")
            if ids.min() < 0 or ids.max() >= len(vocab):
                raise ValueError("ids outside the vocabulary")
            ids = ids.astype(np.int32, copy=False)
    except ModelFileError:
        raise
    except (
        ValueError,
        KeyError,
        TypeError,
        OSError,
        EOFError,
        zipfile.BadZipFile,
        ConfigError,
    ) as e:
        raise ModelFileError(f"{path} is not a valid rnngen corpus ({_reason(e)})") from None
    return Corpus(tokenizer, vocab, ids)
