"""Before writing a file: never lose a user's file to it.

Every command that writes calls check_output first. An output that is the same file as one of the
inputs (compared by identity, so a link or another spelling of the path counts) is refused. An
existing file is replaced only when it is an rnngen file of the kind being written (a model by a
new model, a checkpoint by the checkpoint it was resumed from, a log appended to, a plot redrawn);
anything else, a text above all, is replaced only with force. An empty file holds nothing to lose.
"""

import json
import os
from pathlib import Path

from ..errors import ConfigError, RnngenError
from .checkpoint import CHECKPOINT_FORMAT
from .storage import CORPUS_FORMAT, MAX_META_BYTES, MODEL_FORMAT, open_archive

# The kinds of file rnngen writes, and how each is recognised.
NPZ_KINDS = {"model": MODEL_FORMAT, "corpus": CORPUS_FORMAT, "checkpoint": CHECKPOINT_FORMAT}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
KINDS = (*NPZ_KINDS, "log", "png")
NAMES = {"corpus": "encoded corpus", "log": "training log", "png": "PNG image"}


def _npz_format(path: Path) -> str | None:
    """The format tag in an rnngen `.npz` file's meta, or None for any other file."""
    try:
        with open_archive(path, "file") as reader:
            if "meta" not in reader.names:
                return None
            head = reader.header("meta")
            if head.dtype.kind != "U" or head.shape != () or head.nbytes > MAX_META_BYTES:
                return None
            meta = json.loads(reader.read("meta").item())
    except (RnngenError, ValueError):
        return None
    return meta.get("format") if isinstance(meta, dict) else None


def _is_log(path: Path) -> bool:
    """Whether the file starts like a training log: a JSON record of a run on its first line."""
    try:
        with open(path, "rb") as f:
            first = f.readline(1 << 20)
        record = json.loads(first)
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and "event" in record and "run" in record


def is_kind(path, kind: str) -> bool:
    """Whether the existing file at path is an rnngen file of this kind."""
    path = Path(path)
    if kind in NPZ_KINDS:
        return _npz_format(path) == NPZ_KINDS[kind]
    if kind == "log":
        return _is_log(path)
    if kind == "png":
        try:
            with open(path, "rb") as f:
                return f.read(len(PNG_MAGIC)) == PNG_MAGIC
        except OSError:
            return False
    raise ValueError(f"unknown kind of output {kind!r}; one of {', '.join(KINDS)}")


def same_file(a, b) -> bool:
    """Whether two paths name one file: by identity (device and inode) when both exist, else by
    their resolved paths (an output not written yet)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()


def check_output(path, kind: str, inputs=(), force: bool = False, outputs=()) -> None:
    """Refuse to write a `kind` file at path when that would lose a file: when it is one of the
    inputs or of the command's other outputs (paths; None and `-` are skipped), or an existing
    file of another kind, unless force. `-` (standard output) is always fine."""
    if path is None or str(path) == "-":
        return
    for role, others in (("input", inputs), ("other output", outputs)):
        for other in others:
            if other is not None and str(other) != "-" and same_file(path, other):
                raise ConfigError(
                    f"the output {path} is the same file as the {role} {other}; give another "
                    "output path"
                )
    target = Path(path)
    if not target.is_file() or target.stat().st_size == 0 or force or is_kind(target, kind):
        return
    raise ConfigError(
        f"{path} exists and is not an rnngen {NAMES.get(kind, kind)}; give another path, or {{0}} "
        "to replace it",
        "output.force",
    )
