"""Training checkpoints: everything needed to continue a run exactly, in one validated `.npz`.

    meta          JSON: format tag, version, model, tokenizer and training configs, history,
                  loop position and counters, optimiser scalars, the random generator's state,
                  and a fingerprint of the training and validation ids
    vocab, counts the vocabulary, as in a model file
    param.<name>  the current parameters
    best.<name>   the best parameters so far (absent before the first epoch ends)
    opt.<key>     the optimiser's arrays (Adam's moments, Adagrad's sums)
    hidden        (L, K, N, H) the state carried into the next step (absent at an epoch start)

Format version 2 (rnngen 0.2) stores every training setting resolved (the learning rate too, not
None for "the default"), so a checkpoint resumes with the settings it was written with whatever
today's defaults are. Version 1 files lack the settings added since they were written; each takes
the value that applied when it was absent (LEGACY_TRAIN_SETTINGS), not today's default.

Written with storage.atomic_write; read with storage.py's public reading steps, the same checks as
a model file: member names, dtypes and shapes are checked against the configs before any array is
read, values last.
"""

import hashlib
from dataclasses import asdict, dataclass

import numpy as np

from ..core import backend
from ..core.model import ModelConfig, join_output, param_shapes, split_output
from ..core.optim import make_optimizer
from ..errors import ConfigError
from ..text.tokenize import TokenizerConfig
from ..text.vocab import Vocab
from ..training.train import DTYPES, TrainConfig, TrainState
from .storage import (
    atomic_write,
    config_from,
    expect_member,
    expect_members,
    expect_vocab,
    is_float,
    meta_array,
    model_shapes,
    open_archive,
    read_finite,
    read_meta,
    read_tokenizer,
    read_vocab,
    vocab_arrays,
)

CHECKPOINT_FORMAT = "rnngen-checkpoint"
CHECKPOINT_VERSION = 2  # 1: rnngen 0.1 (settings could be left to the defaults of the day)
# What a training setting meant in a checkpoint written before it existed: the behaviour of the
# code that wrote it. (Timed runs of version 1 ignored patience: _legacy_train sets it to 0.)
LEGACY_TRAIN_SETTINGS = {
    "val_streams": 1,  # one stream
    "val_starts": 0,  # no zero-state starts in validation
    "log_every": 10,
    "lazy_adam": False,  # dense updates
    "state_reset": 0.0,  # no state resets
    "unigram_bias": False,  # the output bias started at zero
    "time_limit": None,
    "val_every": 0,
    "validations": 8,  # VALIDATIONS and VAL_SHARE as of 0.1
    "val_share": 0.05,
}
META_KEYS = {
    "format",
    "version",
    "model",
    "tokenizer",
    "n_specials",
    "train",
    "history",
    "progress",
    "optimizer",
    "rng",
    "data",
}
PROGRESS_KEYS = {  # TrainState's counters and the JSON types they must have
    "epoch": int,
    "step": int,
    "loss_sum": (int, float),
    "loss_tokens": int,
    "tokens_seen": int,
    "elapsed": (int, float),
    "best_loss": (int, float),
    "bad_epochs": int,
    "done": bool,
    "train_seconds": (int, float),
    "val_seconds": (int, float),
    "validations": int,
    "last_val": (int, float),
    "val_limit": int,
}
# Counters a checkpoint from before time budgets lacks; they start from TrainState's defaults.
LATER_PROGRESS_KEYS = {"train_seconds", "val_seconds", "validations", "last_val", "val_limit"}


# Training settings stored under an older name -> their name now.
RENAMED_TRAIN_SETTINGS = {"sparse_embedding": "lazy_adam"}


@dataclass
class Checkpoint:
    model: ModelConfig
    train: TrainConfig
    tokenizer: TokenizerConfig
    vocab: Vocab
    state: TrainState
    data: str  # fingerprint of the ids it was trained on (data_fingerprint)


def data_fingerprint(train_ids, val_ids) -> str:
    """A hash of the training and validation ids, so a run is only resumed on the same data."""
    digest = hashlib.sha256()
    for ids in (train_ids, val_ids):
        array = np.ascontiguousarray(ids, dtype=np.int32)
        digest.update(len(array).to_bytes(8, "little"))
        digest.update(memoryview(array))  # no copy: the ids may be a memory-mapped corpus
    return digest.hexdigest()


def save_checkpoint(path, ckpt: Checkpoint) -> None:
    st = ckpt.state
    scalars, opt_arrays = st.optimizer.state()
    meta = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "model": ckpt.model.to_dict(),
        "tokenizer": ckpt.tokenizer.to_dict(),
        "n_specials": ckpt.vocab.n_specials,
        # every setting resolved, so no default of a later version changes the resumed run
        "train": {**asdict(ckpt.train), "lr": ckpt.train.learning_rate(ckpt.model.cell)},
        "history": st.history,
        "progress": {key: getattr(st, key) for key in PROGRESS_KEYS},
        "optimizer": scalars,
        "rng": st.rng.bit_generator.state,
        "data": ckpt.data,
    }
    arrays = {"meta": meta_array(meta), **vocab_arrays(ckpt.vocab)}
    host = backend.to_numpy  # arrays may live on a GPU
    # in the file layout (out.W and out.b, model.split_output), the optimiser's arrays too
    arrays.update({f"param.{k}": host(v) for k, v in split_output(st.params).items()})
    if st.best_params is not None:
        arrays.update({f"best.{k}": host(v) for k, v in split_output(st.best_params).items()})
    arrays.update({f"opt.{k}": host(v) for k, v in split_output(opt_arrays).items()})
    if st.hidden is not None:
        arrays["hidden"] = host(st.hidden)
    atomic_write(path, lambda f: np.savez(f, **arrays))


def load_checkpoint(path) -> Checkpoint:
    """Read and validate a checkpoint; any problem is a ModelFileError naming the file."""
    with open_archive(path, "checkpoint") as reader:
        meta = read_meta(reader, CHECKPOINT_FORMAT, META_KEYS, versions=(1, CHECKPOINT_VERSION))
        tokenizer = read_tokenizer(meta["tokenizer"])
        model = config_from(ModelConfig, meta["model"], "model")
        if not isinstance(meta["history"], dict) or not isinstance(meta["optimizer"], dict):
            raise ValueError("history or optimiser settings are not objects")
        train = _train_settings(meta)
        progress = _progress(meta["progress"])
        shapes, opt_templates, has_best = _expect_arrays(reader, model, train)
        vocab = read_vocab(reader, meta, tokenizer)
        state = _read_state(reader, model, train, shapes, opt_templates, has_best, meta)
        for key, value in progress.items():
            setattr(state, key, value)
    if not isinstance(meta["data"], str):
        raise ConfigError(f"{path}: the data fingerprint is missing")
    return Checkpoint(model, train, tokenizer, vocab, state, meta["data"])


def _train_settings(meta: dict) -> TrainConfig:
    """The training settings; a version 1 file's missing ones as they were then."""
    settings = _renamed(meta["train"])
    if meta["version"] == 1 and isinstance(settings, dict):
        settings = {**LEGACY_TRAIN_SETTINGS, **settings}
        if settings.get("time_limit") is not None:
            settings["patience"] = 0  # 0.1 never stopped a timed run early
        started_at = meta["history"].get("train", {}).get("lr") if meta["history"] else None
        if settings.get("lr") is None and isinstance(started_at, int | float):
            settings["lr"] = float(started_at)  # the default of the day, as the run began
    return config_from(TrainConfig, settings, "training")


def _progress(progress) -> dict:
    """The loop position and counters, checked."""
    if not isinstance(progress, dict) or not (
        set(PROGRESS_KEYS) - LATER_PROGRESS_KEYS <= set(progress) <= set(PROGRESS_KEYS)
    ):
        raise ValueError("the training progress record is incomplete")
    for key, types in PROGRESS_KEYS.items():
        if key not in progress:
            continue
        value = progress[key]
        if isinstance(value, bool) != (types is bool) or not isinstance(value, types):
            raise ValueError(f"progress {key} is {value!r}")
    counts = ("step", "validations", "val_limit")
    if progress["epoch"] < 1 or any(progress.get(key, 0) < 0 for key in counts):
        raise ValueError("the training position is out of range")
    return progress


def _expect_arrays(reader, model: ModelConfig, train: TrainConfig) -> tuple:
    """Check every member's name, dtype and shape before any array is read; returns the
    parameter shapes (file layout), the optimiser's array templates, and whether a best model
    is held."""
    shapes = model_shapes(model, reader)  # in the file layout
    dtype = np.dtype(DTYPES[train.dtype])
    templates = {k: np.zeros(s, dtype) for k, s in param_shapes(model).items()}
    _, opt_templates = make_optimizer(train.optimizer, templates, 1.0).state()
    opt_members = split_output(opt_templates)
    names = set(reader.names)
    has_best = any(n.startswith("best.") for n in names)
    expected = {"meta", "vocab", "counts", *(f"param.{n}" for n in shapes)}
    expected |= {f"best.{n}" for n in shapes} if has_best else set()
    expected |= {f"opt.{k}" for k in opt_members}
    expected |= {"hidden"} if "hidden" in names else set()
    expect_members(reader, expected)
    expect_vocab(reader, model.vocab_size)
    for prefix in ("param.", "best.") if has_best else ("param.",):
        for name, shape in shapes.items():
            expect_member(reader, prefix + name, lambda d: d == dtype, shape, str(dtype))
    for key, view in opt_members.items():
        expect_member(reader, f"opt.{key}", lambda d: d == dtype, view.shape, str(dtype))
    if "hidden" in names:
        state_shape = (model.layers, model.n_states, train.batch_size, model.hidden)
        expect_member(reader, "hidden", is_float, state_shape, "float")
    return shapes, opt_templates, has_best


def _read_state(reader, model, train, shapes, opt_templates, has_best, meta) -> TrainState:
    """The arrays and the random generator, into a TrainState (its counters still to set)."""
    device = backend.xp.asarray  # onto the GPU when training runs there
    dtype = np.dtype(DTYPES[train.dtype])
    params = join_output({k: device(read_finite(reader, f"param.{k}")) for k in shapes})
    best = None
    if has_best:
        best = join_output({k: device(read_finite(reader, f"best.{k}")) for k in shapes})
    for key, view in split_output(opt_templates).items():  # views: filling them fills templates
        view[...] = read_finite(reader, f"opt.{key}")
    optimizer = make_optimizer(train.optimizer, params, 1.0, train.lazy_adam_for(model))
    optimizer.load_state(meta["optimizer"], opt_templates)
    hidden = None
    if "hidden" in reader.names:
        hidden = device(read_finite(reader, "hidden").astype(dtype))
    rng = np.random.default_rng()
    try:
        rng.bit_generator.state = meta["rng"]
    except (TypeError, ValueError, KeyError) as e:
        raise ValueError(f"the random generator state is invalid ({e})") from None
    return TrainState(params, optimizer, rng, meta["history"], hidden=hidden, best_params=best)


def _renamed(settings):
    """Training settings with older names replaced by today's (checkpoints are read across the
    rename); a setting given under both names is refused."""
    if not isinstance(settings, dict):
        return settings  # config_from says what is wrong
    for old, new in RENAMED_TRAIN_SETTINGS.items():
        if old in settings and new in settings:
            raise ValueError(f"training settings {old} and {new} are one setting given twice")
    return {RENAMED_TRAIN_SETTINGS.get(k, k): v for k, v in settings.items()}
