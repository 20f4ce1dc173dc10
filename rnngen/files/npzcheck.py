"""Reading an untrusted `.npz` archive one checked step at a time, never allocating on its word.

An `.npz` is a zip archive with one `.npy` file per array. `NpzReader` checks the zip directory as
soon as it is opened (plain member names, no duplicates, only stored or deflated members, sizes
under MAX_BYTES, no member that inflates far beyond its compressed size), reads each member's
`.npy` header on its own (dtype and shape, through numpy.lib.format, never np.load and never
pickle), checks that the header agrees with the size the zip directory declares, and only then
reads the data into a buffer of exactly that size. Deciding which members, dtypes and shapes a
file should have is the caller's job (storage.py); this module only makes sure nothing it reads
can claim more memory, time or trust than the bytes on disk justify.
"""

import math
import os
import re
import struct
import zipfile
from typing import NamedTuple

import numpy as np
from numpy.lib import format as npy

MAX_BYTES = 4 * 2**30  # the uncompressed size of all members together
MAX_RATIO = 100  # uncompressed / compressed size allowed for a member past RATIO_FLOOR
RATIO_FLOOR = 2**20  # small members may compress well (a bias of zeros), big ones may not
MAX_HEADER_BYTES = 2**16  # a .npy magic string and header; numpy writes about 128 bytes
CHUNK = 2**20  # data is read in pieces of this size, so reading never holds a second copy

# `meta.npy`, `param.rnn0.Wx.npy`: no folders, no `..`, no leading dot.
_MEMBER_NAME = re.compile(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*\.npy")
_ALLOWED_KINDS = "biufcU"  # numbers and unicode strings; never objects, bytes or structures
_LOCAL_HEADER = 30  # bytes of a zip local file header before the member's name


class NpzError(ValueError):
    """A problem with the archive's structure; the message names the member."""


class Header(NamedTuple):
    dtype: np.dtype
    shape: tuple
    fortran_order: bool
    offset: int  # bytes of magic string and header before the data
    nbytes: int  # bytes of data the dtype and shape imply


class NpzReader:
    """The members of an open zip archive, checked before anything is read from them.

    Member names are given without `.npy` (`"meta"`, `"param.embed"`), as np.load names them.
    """

    def __init__(self, archive: zipfile.ZipFile, file_bytes: int):
        self._zip = archive
        infos = archive.infolist()
        seen = set()
        for info in infos:
            if info.filename in seen:
                raise NpzError(f"member {info.filename!r} appears twice")
            seen.add(info.filename)
            _check_entry(info)
            if not 0 <= info.header_offset <= file_bytes - _LOCAL_HEADER - info.compress_size:
                raise NpzError(f"member {info.filename!r} lies outside the file")
        total = sum(info.file_size for info in infos)
        if total > MAX_BYTES:
            raise NpzError(f"members add up to {total:,} bytes, over the {MAX_BYTES:,} limit")
        # Members sharing compressed bytes could each inflate the same data (an overlapping bomb).
        if sum(info.compress_size for info in infos) > file_bytes:
            raise NpzError("members claim more compressed data than the file holds")
        self._infos = {info.filename[: -len(".npy")]: info for info in infos}
        self._headers = {}

    @property
    def names(self) -> list:
        return list(self._infos)

    def header(self, name: str) -> Header:
        """The dtype and shape a member declares, checked against its size in the zip directory."""
        if name not in self._headers:
            self._headers[name] = self._read_header(name, self._infos[name])
        return self._headers[name]

    def _read_header(self, name, info) -> Header:
        with self._zip.open(info) as member:
            stream = _Bounded(member, MAX_HEADER_BYTES)
            try:
                version = npy.read_magic(stream)
                if version == (1, 0):
                    shape, fortran_order, dtype = npy.read_array_header_1_0(stream)
                elif version == (2, 0):
                    shape, fortran_order, dtype = npy.read_array_header_2_0(stream)
                else:
                    raise NpzError(f".npy format version {version} is not supported")
            except Exception as e:  # numpy parses the header text; a damaged one raises anything
                reason = str(e).splitlines()[0] if str(e).strip() else type(e).__name__
                raise NpzError(f"{name}: {reason}") from None
        if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
            raise NpzError(f"{name}: dtype {dtype} is not a plain array type")
        if dtype.kind not in _ALLOWED_KINDS or dtype.itemsize == 0:
            raise NpzError(f"{name}: dtype {dtype} is not allowed")
        if not all(type(n) is int and n >= 0 for n in shape):
            raise NpzError(f"{name}: shape {shape} is not a list of sizes")
        nbytes = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
        if info.file_size != stream.consumed + nbytes:
            raise NpzError(
                f"{name}: header says {dtype} {shape} ({nbytes:,} bytes), "
                f"but its zip entry holds {info.file_size - stream.consumed:,} bytes of data"
            )
        return Header(dtype, shape, fortran_order, stream.consumed, nbytes)

    def read(self, name: str) -> np.ndarray:
        """The member's array, read into a buffer of the size its checked header declares."""
        head = self.header(name)
        buffer = np.empty(head.nbytes, dtype=np.uint8)
        view = memoryview(buffer)
        with self._zip.open(self._infos[name]) as member:
            member.read(head.offset)
            done = 0
            while done < head.nbytes:
                chunk = member.read(min(CHUNK, head.nbytes - done))
                if not chunk:
                    raise NpzError(f"{name}: data ends after {done:,} of {head.nbytes:,} bytes")
                view[done : done + len(chunk)] = chunk
                done += len(chunk)
            member.read(1)  # reaching the end is what makes zipfile compare the CRC
        if head.dtype.kind == "U":
            _check_code_points(name, buffer.view(np.dtype("u4").newbyteorder(head.dtype.byteorder)))
        array = buffer.view(head.dtype)
        if head.fortran_order:
            array = array.reshape(head.shape[::-1]).T
        else:
            array = array.reshape(head.shape)
        if not array.dtype.isnative:
            array = array.astype(array.dtype.newbyteorder("="))
        return array

    def memmap(self, name: str):
        """The member's array mapped from the file instead of read, for large id arrays; None when
        the member is not stored uncompressed in native C order (read() it then). Its CRC is not
        checked, since that would read it all; the caller checks the values it relies on."""
        head = self.header(name)
        info = self._infos[name]
        if (
            info.compress_type != zipfile.ZIP_STORED
            or head.fortran_order
            or not head.dtype.isnative
            or head.dtype.kind not in "biuf"
        ):
            return None
        fp = self._zip.fp
        fp.seek(info.header_offset)
        local = fp.read(_LOCAL_HEADER)
        if len(local) != _LOCAL_HEADER or local[:4] != b"PK\x03\x04":
            raise NpzError(f"{name}: damaged local zip header")
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        start = info.header_offset + _LOCAL_HEADER + name_len + extra_len + head.offset
        if start + head.nbytes > os.fstat(fp.fileno()).st_size:
            raise NpzError(f"{name}: data runs past the end of the file")
        return np.memmap(fp, dtype=head.dtype, mode="r", offset=start, shape=head.shape)


def _check_entry(info: zipfile.ZipInfo) -> None:
    """Refuse a zip directory entry whose name, method or sizes a plain np.savez never writes."""
    name = info.filename
    if not _MEMBER_NAME.fullmatch(name) or ".." in name:
        raise NpzError(f"member name {name!r} is not a plain .npy file name")
    if info.flag_bits & 0x1:
        raise NpzError(f"member {name!r} is encrypted")
    if info.file_size > MAX_BYTES:
        raise NpzError(f"member {name!r} declares {info.file_size:,} bytes, over the limit")
    if info.compress_type == zipfile.ZIP_STORED:
        if info.compress_size != info.file_size:
            raise NpzError(
                f"member {name!r} is stored uncompressed but declares {info.file_size:,} bytes "
                f"and holds {info.compress_size:,}"
            )
    elif info.compress_type == zipfile.ZIP_DEFLATED:
        if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * info.compress_size:
            raise NpzError(
                f"member {name!r} would inflate {info.compress_size:,} bytes to "
                f"{info.file_size:,} (a decompression bomb)"
            )
    else:
        raise NpzError(f"member {name!r} uses zip compression method {info.compress_type}")


def _check_code_points(name: str, codes: np.ndarray) -> None:
    """numpy stores strings as UTF-32 and trusts them: a value past U+10FFFF makes converting to
    str raise SystemError, and a lone surrogate cannot be printed. Refuse both."""
    if codes.size and (codes.max() > 0x10FFFF or ((codes >= 0xD800) & (codes <= 0xDFFF)).any()):
        raise NpzError(f"{name}: strings with invalid Unicode code points")


class _Bounded:
    """A read-only view of a stream that refuses to read past `limit` bytes, so a forged header
    length cannot make numpy read (or inflate) more than a header's worth."""

    def __init__(self, stream, limit: int):
        self._stream, self._left, self.consumed = stream, limit, 0

    def read(self, n: int) -> bytes:
        if n > self._left:
            raise NpzError(f"the .npy header is longer than {MAX_HEADER_BYTES:,} bytes")
        data = self._stream.read(n)
        self._left -= len(data)
        self.consumed += len(data)
        return data
