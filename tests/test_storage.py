"""Model and corpus files: bit-exact round trips, atomic writes, and clean refusal of bad files."""

import json
import os

import numpy as np
import pytest

from rnngen.core import model as M
from rnngen.errors import MissingInputError, ModelFileError, OutputError
from rnngen.files.storage import (
    TrainedModel,
    atomic_write,
    load_corpus,
    load_model,
    save_corpus,
    save_model,
)
from rnngen.text.corpus import encode_text
from rnngen.text.tokenize import TokenizerConfig


@pytest.fixture
def trained(book_text):
    corpus = encode_text(book_text[:3000], TokenizerConfig())
    cfg = M.ModelConfig(vocab_size=len(corpus.vocab), embed=6, hidden=8, layers=2)
    params = M.split_output(M.init_params(cfg, np.random.default_rng(0)))  # the file layout
    return TrainedModel(cfg, corpus.tokenizer, corpus.vocab, params, {"epochs": 3})


def test_model_round_trip_is_exact(tmp_path, trained):
    path = tmp_path / "m.npz"
    save_model(path, trained)
    loaded = load_model(path)
    assert loaded.config == trained.config
    assert loaded.tokenizer == trained.tokenizer
    assert loaded.vocab == trained.vocab
    assert loaded.history == trained.history
    assert list(loaded.params) == list(trained.params)
    for k, v in trained.params.items():
        assert loaded.params[k].dtype == v.dtype
        assert loaded.params[k].tobytes() == v.tobytes()


def test_float64_model_round_trip_keeps_the_dtype(tmp_path, trained):
    trained.params = {k: v.astype(np.float64) for k, v in trained.params.items()}
    save_model(tmp_path / "m.npz", trained)
    loaded = load_model(tmp_path / "m.npz")
    assert all(loaded.params[k].dtype == np.float64 for k in trained.params)


def test_corpus_round_trip(tmp_path, book_text):
    corpus = encode_text(book_text, TokenizerConfig(lowercase=True), max_vocab=50)
    save_corpus(tmp_path / "c.npz", corpus)
    loaded = load_corpus(tmp_path / "c.npz")
    assert loaded.tokenizer == corpus.tokenizer and loaded.vocab == corpus.vocab
    assert (loaded.ids == corpus.ids).all()


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")

    def failing(f):
        f.write(b"half")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        atomic_write(path, failing)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f.bin"]  # no temporary file left behind


def test_unwritable_output(tmp_path, trained):
    with pytest.raises(OutputError, match="cannot write"):
        save_model(tmp_path / "no" / "such" / "folder.npz", trained)


def _arrays(path):
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def _rewrite(path, arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _meta_change(key, value):
    def change(a):
        meta = json.loads(str(a["meta"]))
        meta[key] = value
        a["meta"] = np.array(json.dumps(meta))

    return change


CORRUPTIONS = {
    "missing member": lambda a: a.pop("param.out.b"),
    "extra member": lambda a: a.update(extra=np.zeros(3)),
    "wrong shape": lambda a: a.update({"param.rnn0.Wh": np.zeros((3, 3), np.float32)}),
    "wrong dtype": lambda a: a.update({"param.out.b": a["param.out.b"].astype(np.int64)}),
    "NaN weight": lambda a: a["param.embed"].__setitem__((0, 0), np.nan),
    "duplicate vocabulary": lambda a: a["vocab"].__setitem__(2, a["vocab"][1]),
    "counts mismatch": lambda a: a.update(counts=a["counts"][:-1]),
    "wrong format": _meta_change("format", "something-else"),
    "future version": _meta_change("version", 99),
    "unknown config key": _meta_change("model", {"vocab_size": 3, "colour": "red"}),
    "meta not json": lambda a: a.update(meta=np.array("{not json")),
    "meta not string": lambda a: a.update(meta=np.zeros(2)),
}


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_corrupt_model_is_refused(tmp_path, trained, name):
    path = tmp_path / "m.npz"
    save_model(path, trained)
    arrays = _arrays(path)
    CORRUPTIONS[name](arrays)
    _rewrite(path, arrays)
    with pytest.raises(ModelFileError, match="m.npz"):
        load_model(path)


@pytest.mark.parametrize(
    "content",
    [b"", b"hello, I am text", b"PK\x03\x04 truncated zip"],
    ids=["empty", "text", "truncated"],
)
def test_non_model_files_are_refused(tmp_path, content):
    path = tmp_path / "m.npz"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match="not an rnngen file"):
        load_model(path)


def test_truncated_model_is_refused(tmp_path, trained):
    path = tmp_path / "m.npz"
    save_model(path, trained)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError):
        load_model(path)


def test_pickled_object_array_is_refused(tmp_path, trained):
    path = tmp_path / "m.npz"
    save_model(path, trained)
    arrays = _arrays(path)
    arrays["vocab"] = np.array(list(arrays["vocab"]), dtype=object)
    with open(path, "wb") as f:
        np.savez(f, **arrays)  # saving object arrays pickles them
    with pytest.raises(ModelFileError):
        load_model(path)


def test_corpus_file_is_not_a_model(tmp_path, book_text):
    save_corpus(tmp_path / "c.npz", encode_text(book_text, TokenizerConfig()))
    with pytest.raises(ModelFileError, match="format is 'rnngen-corpus'"):
        load_model(tmp_path / "c.npz")


@pytest.mark.parametrize("load", [load_model, load_corpus])
def test_missing_file_is_missing_input(tmp_path, load):
    with pytest.raises(MissingInputError, match="does not exist"):
        load(tmp_path / "nothing.npz")


@pytest.mark.parametrize("load", [load_model, load_corpus])
def test_folder_is_refused(tmp_path, load):
    with pytest.raises(MissingInputError, match="is a folder"):
        load(tmp_path)


def test_corpus_ids_can_be_memory_mapped(tmp_path, book_text):
    corpus = encode_text(book_text, TokenizerConfig())
    save_corpus(tmp_path / "c.npz", corpus)
    mapped = load_corpus(tmp_path / "c.npz", mmap=True)
    assert isinstance(mapped.ids, np.memmap)
    assert (mapped.ids == corpus.ids).all()


def test_written_files_get_the_usual_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "f.bin", lambda f: f.write(b"x"))
    finally:
        os.umask(old)
    assert (tmp_path / "f.bin").stat().st_mode & 0o777 == 0o644
