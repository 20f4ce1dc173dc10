"""Malformed model and corpus files: every one refused with a one-line ModelFileError, quickly,
without large allocations, and a property test that mutated model files never get further.

Each case builds its file from the bytes of a small valid model (or corpus): members are rewritten
as raw `.npy` bytes and zipped again, or the zip's own bytes are patched, so the damage is exactly
the one the case names.
"""

import io
import json
import math
import struct
import time
import tracemalloc
import warnings
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rnngen.core import model as M
from rnngen.errors import ModelFileError
from rnngen.files.storage import TrainedModel, load_corpus, load_model, save_corpus, save_model
from rnngen.text.corpus import encode_text
from rnngen.text.tokenize import TokenizerConfig

TEXT = "the cat sat on the mat . the dog sat on the log .\n\nthe end , said the cat ."
BOMB_BYTES = 200_000_000  # zeros a zip-bomb member inflates to
MAX_PEAK = 50 * 2**20  # peak Python and NumPy memory allowed while refusing a file
MAX_SECONDS = 1.0  # time allowed to refuse one file


# --- building files --------------------------------------------------------------------------


def _model_file(tmp_path):
    corpus = encode_text(TEXT, TokenizerConfig())
    cfg = M.ModelConfig(vocab_size=len(corpus.vocab), embed=4, hidden=5, layers=2)
    params = M.init_params(cfg, np.random.default_rng(0))
    path = tmp_path / "valid-model.npz"
    save_model(path, TrainedModel(cfg, corpus.tokenizer, corpus.vocab, params, {"epochs": 1}))
    return path.read_bytes()


def _corpus_file(tmp_path):
    path = tmp_path / "valid-corpus.npz"
    save_corpus(path, encode_text(TEXT, TokenizerConfig()))
    return path.read_bytes()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The bytes of a valid model file and a valid corpus file."""
    folder = tmp_path_factory.mktemp("valid")
    model, corpus = _model_file(folder), _corpus_file(folder)
    return {"model": model, "corpus": corpus}


def _members(data: bytes) -> dict:
    """Member name -> raw `.npy` bytes, in archive order."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def _zip(members, compression=zipfile.ZIP_STORED) -> bytes:
    """A zip of (name, bytes) pairs or a dict; repeated names are written as given."""
    items = members.items() if isinstance(members, dict) else members
    out = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about duplicate names, which we want
        with zipfile.ZipFile(out, "w", compression) as zf:
            for name, raw in items:
                zf.writestr(name, raw)
    return out.getvalue()


def _npy(array, allow_pickle=False) -> bytes:
    out = io.BytesIO()
    np.lib.format.write_array(out, np.asanyarray(array), allow_pickle=allow_pickle)
    return out.getvalue()


def _header(descr, shape, fortran_order=False) -> bytes:
    out = io.BytesIO()
    d = {"descr": descr, "fortran_order": fortran_order, "shape": shape}
    np.lib.format.write_array_header_1_0(out, d)
    return out.getvalue()


def _array(members, name):
    return np.lib.format.read_array(io.BytesIO(members[name]), allow_pickle=False)


def _meta(members) -> dict:
    return json.loads(str(_array(members, "meta.npy")))


def _replace(data, name, raw) -> bytes:
    members = _members(data)
    members[name] = raw
    return _zip(members)


def _change_array(name, change):
    """A case that rewrites one member: change(array) returns the new array."""
    return lambda data: _replace(data, name, _npy(change(_array(_members(data), name))))


def _change_meta(change):
    """A case that rewrites the meta JSON: change(meta) edits the dict in place."""

    def build(data):
        meta = _meta(_members(data))
        change(meta)
        return _replace(data, "meta.npy", _npy(np.array(json.dumps(meta))))

    return build


def _set_item(array, index, value):
    array = array.copy()
    array[index] = value
    return array


def _central_entry(data: bytes, name: str) -> int:
    """Offset of `name`'s entry in the zip's central directory."""
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        (name_len,) = struct.unpack_from("<H", data, at + 28)
        if data[at + 46 : at + 46 + name_len] == name.encode():
            return at
        at = data.find(b"PK\x01\x02", at + 1)
    raise AssertionError(f"{name} not in the central directory")


def _patch_central(name, field_offset, fmt, value):
    """A case that overwrites one field of a member's central directory entry."""

    def build(data):
        out = bytearray(data)
        struct.pack_into(fmt, out, _central_entry(data, name) + field_offset, value)
        return bytes(out)

    return build


def _flip_in_data(name):
    """A case that flips one byte in the middle of a stored member's array data."""

    def build(data):
        raw = _members(data)[name]
        at = data.find(raw) + len(raw) - 3  # inside the last value
        return data[:at] + bytes([data[at] ^ 0x40]) + data[at + 1 :]

    return build


def _patch_data(name, offset, raw_value: bytes):
    """A case that overwrites bytes of a member's array data (past its .npy header)."""

    def build(data):
        members = _members(data)
        raw = bytearray(members[name])
        start = len(raw) - _array(members, name).nbytes + offset
        raw[start : start + len(raw_value)] = raw_value
        return _replace(data, name, bytes(raw))

    return build


def _write_bomb(path, members: dict, bombs: dict) -> None:
    """A deflated zip of `members` in which each member named in `bombs` (name -> shape) is a
    float32 array of zeros, written in chunks so the test itself never holds it."""
    zeros = bytes(2**20)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, raw in members.items():
            if name not in bombs:
                zf.writestr(name, raw)
        for name, shape in bombs.items():
            with zf.open(name, "w", force_zip64=True) as f:
                f.write(_header("<f4", shape))
                left = 4 * math.prod(shape)
                while left:
                    f.write(zeros[: min(left, len(zeros))])
                    left -= min(left, len(zeros))


# --- the cases ---------------------------------------------------------------------------------
# name -> (build(valid bytes) -> malformed bytes, a fragment the refusal message must contain)

NOT_ZIP = "not an .npz archive"
NOT_READABLE = "is not an rnngen file"


def _cut(fraction):
    return lambda d: d[: int(len(d) * fraction)]


def _members_where(keep=lambda name: True, rename=lambda name: name):
    return lambda d: _zip({rename(k): v for k, v in _members(d).items() if keep(k)})


MODEL_CASES = {
    # not a zip, or not a readable one
    "empty file": (lambda d: b"", NOT_ZIP),
    "text file": (lambda d: b"hello, I am a text file and not a model\n", NOT_ZIP),
    "plain .npy file": (lambda d: _npy(np.zeros(3)), NOT_ZIP),
    "zip magic only": (lambda d: b"PK\x03\x04", NOT_READABLE),
    "truncated after 10 bytes": (lambda d: d[:10], NOT_READABLE),
    "truncated after 200 bytes": (lambda d: d[:200], NOT_READABLE),
    "truncated at a third": (_cut(1 / 3), NOT_READABLE),
    "truncated at half": (_cut(1 / 2), NOT_READABLE),
    "truncated before the directory end": (lambda d: d[:-22], NOT_READABLE),
    "truncated by one byte": (lambda d: d[:-1], NOT_READABLE),
    "bytes cut from the middle": (lambda d: d[:300] + d[310:], "not a valid rnngen model"),
    "bad CRC in a weight": (_flip_in_data("param.embed.npy"), "Bad CRC-32"),
    "bad CRC in the vocabulary": (_flip_in_data("vocab.npy"), "Bad CRC-32"),
    # member names
    "missing member": (_members_where(keep=lambda k: "out.b" not in k), "missing: ['param.out.b']"),
    "extra member": (
        lambda d: _zip({**_members(d), "extra.npy": _npy(np.zeros(3))}),
        "unexpected: ['extra']",
    ),
    "duplicate member": (
        lambda d: _zip([*_members(d).items(), ("meta.npy", _members(d)["meta.npy"])]),
        "appears twice",
    ),
    "nested folder member names": (_members_where(rename=lambda k: "a/" + k), "plain .npy"),
    "parent folder member name": (
        _members_where(rename=lambda k: "../" + k if "embed" in k else k),
        "plain .npy",
    ),
    "member names without .npy": (_members_where(rename=lambda k: k[:-4]), "plain .npy"),
    "zip of other files": (lambda d: _zip({"readme.txt": b"hi"}), "plain .npy"),
    "zip without a meta member": (_members_where(keep=lambda k: k != "meta.npy"), "no meta"),
    "encrypted member flag": (_patch_central("param.embed.npy", 8, "<H", 1), "encrypted"),
    "unsupported compression method": (
        _patch_central("param.embed.npy", 10, "<H", 12),
        "compression method 12",
    ),
    # forged sizes and headers
    "stored member claims 4 GB": (
        _patch_central("param.embed.npy", 24, "<I", 0xFFFFFFF0),
        "declares 4,294,967,280 bytes",
    ),
    "huge declared shape, small data": (
        lambda d: _replace(d, "param.embed.npy", _header("<f4", (10**12,)) + bytes(64)),
        "header says float32 (1000000000000,)",
    ),
    "huge declared vocabulary": (
        lambda d: _replace(d, "vocab.npy", _header("<U10", (10**12,)) + bytes(400)),
        "header says <U10 (1000000000000,)",
    ),
    "header longer than its data": (
        lambda d: _replace(d, "param.embed.npy", _members(d)["param.embed.npy"][:-4]),
        "holds 204 bytes of data",
    ),
    "header length field forged": (
        lambda d: _replace(
            d, "param.embed.npy", b"\x93NUMPY\x02\x00" + struct.pack("<I", 2**31) + b"{" * 100
        ),
        "header is longer than",
    ),
    "npy format version 3": (
        lambda d: _replace(
            d, "param.embed.npy", b"\x93NUMPY\x03" + _members(d)["param.embed.npy"][7:]
        ),
        "version (3, 0)",
    ),
    "header not a dict": (
        lambda d: _replace(d, "param.out.b.npy", b"\x93NUMPY\x01\x00\x04\x00[1]\n"),
        "param.out.b: Header is not a dictionary",
    ),
    "shape disagrees with the config": (
        _change_array("param.embed.npy", lambda a: a[:, :-1]),
        "param.embed is float32 (13, 3), expected float32 or float64 (13, 4)",
    ),
    "transposed weight": (
        _change_array("param.rnn0.Wx.npy", lambda a: np.ascontiguousarray(a.T)),
        "param.rnn0.Wx is float32 (5, 4)",
    ),
    # dtypes
    "pickled object vocabulary": (
        lambda d: _replace(
            d, "vocab.npy", _npy(np.array(list(_array(_members(d), "vocab.npy")), object), True)
        ),
        "vocab: dtype object",
    ),
    "pickled object weight": (
        lambda d: _replace(d, "param.out.b.npy", _npy(np.array([{}] * 13, dtype=object), True)),
        "param.out.b: dtype object",
    ),
    "integer weight": (
        _change_array("param.out.b.npy", lambda a: a.astype(np.int64)),
        "param.out.b is int64",
    ),
    "float16 weight": (
        _change_array("param.out.b.npy", lambda a: a.astype(np.float16)),
        "param.out.b is float16",
    ),
    "complex weight": (
        _change_array("param.out.b.npy", lambda a: a.astype(np.complex64)),
        "param.out.b is complex64",
    ),
    "structured weight": (
        _change_array("param.out.b.npy", lambda a: np.zeros(a.shape, dtype=[("x", "<f4")])),
        "not a plain array type",
    ),
    "bytes vocabulary": (_change_array("vocab.npy", lambda a: a.astype("S")), "vocab: dtype |S"),
    "float counts": (_change_array("counts.npy", lambda a: a.astype(np.float64)), "counts is"),
    "counts shorter than the vocabulary": (
        _change_array("counts.npy", lambda a: a[:-1]),
        "counts is int64 (12,), expected integers (13,)",
    ),
    # meta
    "meta not JSON": (lambda d: _replace(d, "meta.npy", _npy(np.array("{not"))), "not JSON"),
    "meta a JSON list": (
        lambda d: _replace(d, "meta.npy", _npy(np.array("[1, 2]"))),
        "not a JSON object",
    ),
    "meta deeply nested": (
        lambda d: _replace(d, "meta.npy", _npy(np.array("[" * 100_000))),
        "not JSON",
    ),
    "meta not a string": (
        lambda d: _replace(d, "meta.npy", _npy(np.zeros(2))),
        "meta member is not a JSON string",
    ),
    "meta a list of strings": (
        lambda d: _replace(d, "meta.npy", _npy(np.array(["{}", "{}"]))),
        "meta member is not a JSON string",
    ),
    "meta too large": (
        _change_meta(lambda m: m["history"].update(notes="x" * 2_000_000)),
        "meta member is 8,00",
    ),
    "wrong format tag": (
        _change_meta(lambda m: m.update(format="something-else")),
        "format is 'something-else', expected 'rnngen-model'",
    ),
    "future format version": (_change_meta(lambda m: m.update(version=99)), "version 99"),
    "format version true": (_change_meta(lambda m: m.update(version=True)), "version True"),
    "unknown meta key": (_change_meta(lambda m: m.update(colour="red")), "unknown: ['colour']"),
    "missing meta key": (_change_meta(lambda m: m.pop("history")), "missing: ['history']"),
    "unknown config key": (
        _change_meta(lambda m: m["model"].update(colour="red")),
        "unknown model settings: colour",
    ),
    "config value of the wrong type": (
        _change_meta(lambda m: m["model"].update(embed=True)),
        "embed is True, expected int",
    ),
    "unknown cell": (
        _change_meta(lambda m: m["model"].update(cell="transformer")),
        "model.cell must be one of rnn, lstm, gru, got 'transformer'",
    ),
    "a billion layers": (
        _change_meta(lambda m: m["model"].update(layers=10**9)),
        "1000000000 layers in a file of 12 members",
    ),
    "terabyte of weights in the config": (
        _change_meta(lambda m: m["model"].update(vocab_size=10**6, embed=10**6)),
        "bytes of weights, over the limit",
    ),
    "history not an object": (
        _change_meta(lambda m: m.update(history=[1, 2])),
        "history is not an object",
    ),
    "n_specials wrong": (
        _change_meta(lambda m: m.update(n_specials=0)),
        "does not start with the special tokens",
    ),
    # values
    "NaN weight": (
        _change_array("param.embed.npy", lambda a: _set_item(a, (1, 1), np.nan)),
        "parameter embed has NaN or infinite values",
    ),
    "infinite weight": (
        _change_array("param.rnn1.Wh.npy", lambda a: _set_item(a, (0, 2), np.inf)),
        "parameter rnn1.Wh has NaN or infinite values",
    ),
    "negative infinite bias": (
        _change_array("param.out.b.npy", lambda a: _set_item(a, 3, -np.inf)),
        "parameter out.b has NaN or infinite values",
    ),
    "duplicate vocabulary": (
        _change_array("vocab.npy", lambda a: _set_item(a, 2, a[1])),
        "duplicate tokens",
    ),
    "vocabulary without the specials first": (
        _change_array("vocab.npy", lambda a: a[::-1].copy()),
        "does not start with the special tokens",
    ),
    "empty token": (_change_array("vocab.npy", lambda a: _set_item(a, 3, "")), "empty token"),
    "code point past U+10FFFF": (
        _patch_data("vocab.npy", 0, struct.pack("<I", 0x110000)),
        "vocab: strings with invalid Unicode code points",
    ),
    "lone surrogate in the meta": (
        lambda d: _replace(d, "meta.npy", _npy(np.array('{"format": "\ud800"}'))),
        "meta: strings with invalid Unicode code points",
    ),
    "negative counts": (
        _change_array("counts.npy", lambda a: _set_item(a, 1, -5)),
        "counts have negative values",
    ),
}

CORPUS_CASES = {
    "ids outside the vocabulary": (
        _change_array("ids.npy", lambda a: _set_item(a, 0, 10**6)),
        "ids outside the vocabulary",
    ),
    "negative ids": (
        _change_array("ids.npy", lambda a: _set_item(a, 0, -1)),
        "ids outside the vocabulary",
    ),
    "float ids": (
        _change_array("ids.npy", lambda a: a.astype(np.float32)),
        "ids is float32 (22,), expected integers (n,)",
    ),
    "ids as a matrix": (
        _change_array("ids.npy", lambda a: a[: len(a) // 2 * 2].reshape(2, -1)),
        "ids is int32 (2, 11)",
    ),
    "no ids": (_change_array("ids.npy", lambda a: a[:0]), "ids are empty"),
    "huge declared ids, small data": (
        lambda d: _replace(d, "ids.npy", _header("<i4", (10**12,)) + bytes(64)),
        "header says int32 (1000000000000,)",
    ),
    "corpus with a model config": (
        _change_meta(lambda m: m.update(model={"vocab_size": 3})),
        "unknown: ['model']",
    ),
}

# Each kind of file passed where the other is expected.
CROSS_CASES = {
    "corpus passed as a model": (
        "corpus",
        load_model,
        "format is 'rnngen-corpus', expected 'rnngen-model'",
    ),
    "model passed as a corpus": (
        "model",
        load_corpus,
        "format is 'rnngen-model', expected 'rnngen-corpus'",
    ),
}


def _refuse(path, load):
    """Load the file; return the refusal's message, the seconds taken, and the peak memory traced
    (Python objects and NumPy arrays both) while loading."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(ModelFileError) as info:
            load(path)
    finally:
        seconds = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return str(info.value), seconds, peak


def _assert_refused(path, load, fragment):
    message, seconds, peak = _refuse(path, load)
    assert str(path) in message and "\n" not in message, message
    assert fragment in message
    assert seconds < MAX_SECONDS, f"took {seconds:.2f}s: {message}"
    assert peak < MAX_PEAK, f"peak {peak / 2**20:.1f} MB: {message}"
    return message, peak


@pytest.mark.parametrize("case", list(MODEL_CASES))
def test_malformed_model_is_refused(tmp_path, files, case):
    build, fragment = MODEL_CASES[case]
    path = tmp_path / "bad.npz"
    path.write_bytes(build(files["model"]))
    _assert_refused(path, load_model, fragment)


@pytest.mark.parametrize("case", list(CORPUS_CASES))
def test_malformed_corpus_is_refused(tmp_path, files, case):
    build, fragment = CORPUS_CASES[case]
    path = tmp_path / "bad.npz"
    path.write_bytes(build(files["corpus"]))
    _assert_refused(path, load_corpus, fragment)


@pytest.mark.parametrize("case", list(CROSS_CASES))
def test_the_other_kind_of_file_is_refused(tmp_path, files, case):
    kind, load, fragment = CROSS_CASES[case]
    path = tmp_path / "other.npz"
    path.write_bytes(files[kind])
    _assert_refused(path, load, fragment)


def test_the_valid_files_load(tmp_path, files):
    """The files every case starts from are valid, so each refusal is the case's doing."""
    (tmp_path / "m.npz").write_bytes(files["model"])
    (tmp_path / "c.npz").write_bytes(files["corpus"])
    assert load_model(tmp_path / "m.npz").config.layers == 2
    assert len(load_corpus(tmp_path / "c.npz").ids) == 22


# --- bombs and forged sizes, with their memory measured ----------------------------------------


@pytest.fixture(scope="module")
def bombs(tmp_path_factory, files):
    """Zip bombs, each a few hundred kB on disk: a deflated param.embed of BOMB_BYTES zeros whose
    header disagrees with the config; and a file whose config asks for a huge embedding, with every
    member consistent with it (embed and rnn0.Wx are the bombs), so that only the compression
    ratio gives it away before inflating."""
    folder = tmp_path_factory.mktemp("bombs")
    members = _members(files["model"])
    paths = {
        "bomb, header disagrees with the config": folder / "bomb1.npz",
        "bomb the config asks for": folder / "bomb2.npz",
    }
    n = BOMB_BYTES // 4
    _write_bomb(paths["bomb, header disagrees with the config"], members, {"param.embed.npy": (n,)})
    meta = _meta(members)
    meta["model"]["embed"] = E = n // meta["model"]["vocab_size"]
    cfg = M.ModelConfig(**meta["model"])
    members["meta.npy"] = _npy(np.array(json.dumps(meta)))
    shapes = {f"param.{k}.npy": v for k, v in M.file_shapes(cfg).items()}
    huge = {name: shape for name, shape in shapes.items() if E in shape}
    assert sorted(huge) == ["param.embed.npy", "param.rnn0.Wx.npy"]
    _write_bomb(paths["bomb the config asks for"], members, huge)
    with zipfile.ZipFile(paths["bomb the config asks for"]) as zf:  # headers only, no inflating
        for name, shape in shapes.items():
            with zf.open(name) as f:
                np.lib.format.read_magic(f)
                assert np.lib.format.read_array_header_1_0(f)[0] == shape
    return paths


@pytest.mark.parametrize(
    "case", ["bomb, header disagrees with the config", "bomb the config asks for"]
)
def test_zip_bomb_is_refused_without_inflating(bombs, case):
    _, peak = _assert_refused(bombs[case], load_model, "decompression bomb")
    print(f"{case}: peak {peak / 2**20:.2f} MB")


def test_forged_deflated_size_is_refused(tmp_path, files):
    """A deflated member whose directory entry claims BOMB_BYTES: refused on the ratio alone."""
    data = _zip(_members(files["model"]), zipfile.ZIP_DEFLATED)
    path = tmp_path / "forged.npz"
    path.write_bytes(_patch_central("param.embed.npy", 24, "<I", BOMB_BYTES)(data))
    _assert_refused(path, load_model, "decompression bomb")


@pytest.mark.parametrize(
    "case",
    ["huge declared shape, small data", "huge declared vocabulary", "stored member claims 4 GB"],
)
def test_forged_size_is_refused_with_little_memory(tmp_path, files, case):
    build, fragment = MODEL_CASES[case]
    path = tmp_path / "forged.npz"
    path.write_bytes(build(files["model"]))
    _, peak = _assert_refused(path, load_model, fragment)
    print(f"{case}: peak {peak / 2**20:.2f} MB")


# --- files that look unusual but are valid -----------------------------------------------------


def test_deflated_model_loads(tmp_path, files):
    """np.savez_compressed output is fine: weights do not compress past the bomb ratio."""
    path = tmp_path / "compressed.npz"
    path.write_bytes(_zip(_members(files["model"]), zipfile.ZIP_DEFLATED))
    assert load_model(path).config.embed == 4


def test_big_endian_and_fortran_order_weights_load(tmp_path, files):
    members = _members(files["model"])
    embed = _array(members, "param.embed.npy")
    Wx = _array(members, "param.rnn0.Wx.npy")
    members["param.embed.npy"] = _npy(embed.astype(">f4"))
    members["param.rnn0.Wx.npy"] = _npy(np.asfortranarray(Wx))
    path = tmp_path / "unusual.npz"
    path.write_bytes(_zip(members))
    loaded = load_model(path)
    assert loaded.params["embed"].dtype == np.float32 and loaded.params["embed"].dtype.isnative
    assert (loaded.params["embed"] == embed).all() and (loaded.params["rnn0.Wx"] == Wx).all()


# --- mutated files: refused, or a valid model -------------------------------------------------


class MutationTarget:
    """What the mutation tests start from: the valid model's bytes and members, the offsets where
    its zip structure lives, and a file to write to. (Its short repr keeps Hypothesis's failure
    reports readable.)"""

    def __init__(self, data: bytes, path):
        self.data, self.members, self.path = data, _members(data), path
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            hot = [0, zf.start_dir, len(data) - 22]
            for info in zf.infolist():
                name_len, extra_len = struct.unpack_from("<HH", data, info.header_offset + 26)
                npy_start = info.header_offset + 30 + name_len + extra_len
                hot += [info.header_offset, npy_start, npy_start + 40]
                hot.append(_central_entry(data, info.filename))
        self.hot = sorted(hot)

    def __repr__(self):
        return f"<valid model file, {len(self.data)} bytes>"


@pytest.fixture(scope="module")
def target(tmp_path_factory, files):
    return MutationTarget(files["model"], tmp_path_factory.mktemp("mutated") / "m.npz")


def _position(size, hot):
    """Anywhere in the file, or (more often) just after where a header or directory starts."""
    near_hot = st.sampled_from(hot).flatmap(lambda h: st.integers(h, h + 80))
    return st.one_of(st.integers(0, size - 1), near_hot, near_hot).map(lambda p: min(p, size - 1))


@st.composite
def mutation(draw, size, hot):
    kind = draw(st.sampled_from(["flip", "overwrite", "int", "truncate", "insert", "delete"]))
    at = draw(_position(size, hot))
    if kind == "flip":
        return kind, at, draw(st.integers(1, 255))
    if kind == "overwrite" or kind == "insert":
        return kind, at, draw(st.binary(min_size=1, max_size=16))
    if kind == "int":  # a size, offset or count field set to an edge value
        return kind, at, draw(st.sampled_from([0, 1, 2**16 - 1, 2**31, 2**32 - 1]))
    if kind == "delete":
        return kind, at, draw(st.integers(1, 64))
    return kind, at, None


def _mutate(data: bytes, ops) -> bytes:
    out = bytearray(data)
    for kind, at, arg in ops:
        at = min(at, max(len(out) - 1, 0))
        if kind == "flip" and out:
            out[at] ^= arg
        elif kind == "overwrite":
            out[at : at + len(arg)] = arg
        elif kind == "int":
            out[at : at + 4] = struct.pack("<I", arg)
        elif kind == "insert":
            out[at:at] = arg
        elif kind == "delete":
            del out[at : at + arg]
        elif kind == "truncate":
            del out[at:]
    return bytes(out)


def _assert_valid(model):
    shapes = M.file_shapes(model.config)
    assert list(model.params) == list(shapes)
    for name, shape in shapes.items():
        array = model.params[name]
        assert array.shape == shape and array.dtype in (np.float32, np.float64)
        assert np.isfinite(array).all()
    assert len(model.vocab) == model.config.vocab_size == len(set(model.vocab.tokens))


def _load_refused_or_valid(path):
    """The property both mutation tests check: a clean refusal, or a model fit to use."""
    try:
        model = load_model(path)
    except ModelFileError as e:
        assert str(path) in str(e) and "\n" not in str(e)
        event(f"refused: {str(e).partition('(')[2][:30]}")
    else:
        _assert_valid(model)
        event("loaded, valid")


# No database: keep .hypothesis/ out of the working tree. No deadline: a loaded machine is slower.
FUZZ = settings(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@settings(FUZZ, max_examples=500)
@given(st.data())
def test_mutated_model_files_are_refused_or_valid(target, data):
    """Bytes of the whole file mutated: mostly caught by the zip layer (offsets, CRCs)."""
    size = len(target.data)
    ops = data.draw(st.lists(mutation(size, target.hot), min_size=1, max_size=3), label="mutations")
    target.path.write_bytes(_mutate(target.data, ops))
    _load_refused_or_valid(target.path)


NPY_HOT = [0, 6, 8, 10, 20, 40, 60, 80, 100, 120]  # magic, version, header length, the dict


@settings(FUZZ, max_examples=300)
@given(st.data())
def test_mutated_members_with_good_crcs_are_refused_or_valid(target, data):
    """One member's .npy bytes mutated and the zip rebuilt around them, CRCs and sizes right, so
    the .npy header and value checks are what has to catch it."""
    members = dict(target.members)
    name = data.draw(st.sampled_from(sorted(members)), label="member")
    raw = members[name]
    ops = data.draw(
        st.lists(mutation(len(raw), NPY_HOT), min_size=1, max_size=3), label="mutations"
    )
    members[name] = _mutate(raw, ops)
    target.path.write_bytes(_zip(members))
    _load_refused_or_valid(target.path)
