"""Resume data: what a session knows about its files, so a restart skips the full recheck.

One bencoded dictionary per torrent: the verified-piece bitfield, file priorities, save path,
totals, timestamps and each file's size and mtime. Where it is kept is a ``ResumeKeeper``'s: a
file (``ResumeFile``, written atomically: temp file, fsync, rename, so a crash leaves either the
old or the new file), or a row of a manager's store (``engine/manager.py``: one transaction). It
holds only pieces that passed their hash check, and on load it is trusted only when every file
still has the size and mtime it recorded; otherwise the session rechecks. So a crash never makes
an unverified piece count as had.

Seed mode (``seed-mode`` 1: data its owner said is complete, each piece verified the first time
it is served): every piece counts as had, and ``pieces`` holds those verified so far, which a
restart does not verify again (when the files' stamps still match; else none is).

An unfinished check (``checked-up-to`` N, saved while a start-up check hashed the data): every
piece below N was hashed, ``pieces`` holds those that passed, and ``files`` the stamps the files
had when the check began. A restart whose files still have them trusts those pieces and hashes
only from N on (``check_resume_point``); anything else hashes it all. Without the key (files
written before it existed, and every complete save) the data is a finished check's, as before.
"""

from __future__ import annotations

import functools
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import anyio

from ..errors import BencodeError, StorageError
from ..formats.bencode import decode, encode

RESUME_VERSION = 1


@dataclass(slots=True)
class FileStamp:
    """Size and modification time (ns) of one data file as it was when the resume data was saved."""

    size: int
    mtime_ns: int


@dataclass(slots=True)
class ResumeData:
    """What is saved between runs: verified pieces, file priorities, totals, times and each file's size and
    mtime."""

    info_hash: bytes
    save_path: str
    have: bytes  # bitfield (BEP 3 order: high bit of byte 0 is piece 0) of verified pieces
    num_pieces: int
    file_priorities: list[int] = field(default_factory=list)
    uploaded: int = 0
    downloaded: int = 0
    added_time: int = 0
    completed_time: int = 0
    saved_time: int = 0
    files: list[FileStamp | None] = field(default_factory=list)  # None: pad file / not on disk
    seed_mode: bool = False  # every piece is had; ``have`` holds the ones verified so far
    checked_up_to: int | None = None  # an unfinished check: pieces below it hashed (None: finished)

    def pieces(self) -> set[int]:
        """The verified pieces as a set of indices."""
        return bitfield_to_set(self.have, self.num_pieces)


def set_to_bitfield(pieces: set[int] | frozenset[int], num_pieces: int) -> bytes:
    """A set of piece indices as a bitfield (BEP 3 order); out-of-range indices are ignored."""
    out = bytearray((num_pieces + 7) // 8)
    for index in pieces:
        if 0 <= index < num_pieces:
            out[index >> 3] |= 0x80 >> (index & 7)
    return bytes(out)


def bitfield_to_set(bitfield: bytes, num_pieces: int) -> set[int]:
    """The set pieces of a bitfield (BEP 3 order), ignoring bits past ``num_pieces``."""
    have: set[int] = set()
    for byte_index, byte in enumerate(bitfield[: (num_pieces + 7) // 8]):
        if not byte:
            continue
        for bit in range(8):
            if byte & (0x80 >> bit):
                index = byte_index * 8 + bit
                if index < num_pieces:
                    have.add(index)
    return have


def stamp_files(paths: list[Path | None]) -> list[FileStamp | None]:
    """Current size+mtime of each path (None for pad files or files that do not exist)."""
    out: list[FileStamp | None] = []
    for path in paths:
        if path is None:
            out.append(None)
            continue
        try:
            st = path.stat()
        except OSError:
            out.append(None)
            continue
        out.append(FileStamp(st.st_size, st.st_mtime_ns))
    return out


def encode_resume(data: ResumeData) -> bytes:
    """The resume data as bencoded bytes."""
    files: list[object] = []
    for stamp in data.files:
        files.append([] if stamp is None else [stamp.size, stamp.mtime_ns])
    value: dict[bytes, object] = {
        b"version": RESUME_VERSION,
        b"info-hash": data.info_hash,
        b"save-path": data.save_path.encode("utf-8", "surrogateescape"),
        b"pieces": data.have,
        b"num-pieces": data.num_pieces,
        b"file-priorities": list(data.file_priorities),
        b"uploaded": data.uploaded,
        b"downloaded": data.downloaded,
        b"added-time": data.added_time,
        b"completed-time": data.completed_time,
        b"saved-time": data.saved_time,
        b"files": files,
        b"seed-mode": int(data.seed_mode),
    }
    if data.checked_up_to is not None:  # (absent: a finished check, as every older file says)
        value[b"checked-up-to"] = data.checked_up_to
    return encode(value)


def decode_resume(raw: bytes) -> ResumeData:
    """Parse a resume file; raises ``BencodeError`` for anything malformed."""
    value = decode(raw)
    if not isinstance(value, dict):
        raise BencodeError("resume data is not a dictionary", 0)

    def get_int(key: bytes) -> int:
        v = value.get(key, 0)
        if not isinstance(v, int):
            raise BencodeError(f"resume key {key.decode()} is not an integer", 0)
        return v

    def get_bytes(key: bytes) -> bytes:
        v = value.get(key)
        if not isinstance(v, bytes):
            raise BencodeError(f"resume key {key.decode()} is missing or not a string", 0)
        return v

    if get_int(b"version") != RESUME_VERSION:
        raise BencodeError("unknown resume data version", 0)
    num_pieces = get_int(b"num-pieces")
    have = get_bytes(b"pieces")
    if num_pieces < 0 or len(have) != (num_pieces + 7) // 8:
        raise BencodeError("resume bitfield has the wrong length", 0)
    prios_raw = value.get(b"file-priorities", [])
    files_raw = value.get(b"files", [])
    if not isinstance(prios_raw, list) or not all(isinstance(p, int) for p in prios_raw):
        raise BencodeError("resume file-priorities is not a list of integers", 0)
    if not isinstance(files_raw, list):
        raise BencodeError("resume files is not a list", 0)
    checked_up_to = value.get(b"checked-up-to")
    if checked_up_to is not None and (not isinstance(checked_up_to, int)
                                      or not 0 <= checked_up_to <= num_pieces):
        raise BencodeError("resume checked-up-to is not a piece count up to num-pieces", 0)
    files: list[FileStamp | None] = []
    for item in files_raw:
        if item == []:
            files.append(None)
        elif (isinstance(item, list) and len(item) == 2 and isinstance(item[0], int)
              and isinstance(item[1], int)):
            files.append(FileStamp(item[0], item[1]))
        else:
            raise BencodeError("resume files entry is malformed", 0)
    return ResumeData(
        info_hash=get_bytes(b"info-hash"),
        save_path=get_bytes(b"save-path").decode("utf-8", "surrogateescape"),
        have=have,
        num_pieces=num_pieces,
        file_priorities=[p for p in prios_raw if isinstance(p, int)],
        uploaded=get_int(b"uploaded"),
        downloaded=get_int(b"downloaded"),
        added_time=get_int(b"added-time"),
        completed_time=get_int(b"completed-time"),
        saved_time=get_int(b"saved-time"),
        files=files,
        seed_mode=bool(get_int(b"seed-mode")),
        checked_up_to=checked_up_to,
    )


_TEMP_NAME = re.compile(r"^.+\.[A-Za-z0-9_]{8}\.tmp$")  # what write_atomic's mkstemp names look like


def remove_stale_temp_files(folder: Path) -> list[Path]:
    """Remove what interrupted ``write_atomic`` calls left in ``folder`` (a crash between the
    temp file and the rename); call it when starting on a state directory nobody else writes.
    Returns what was removed."""
    removed: list[Path] = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for entry in entries:
        if _TEMP_NAME.match(entry.name) and entry.is_file() and not entry.is_symlink():
            try:
                entry.unlink()
            except OSError:
                continue
            removed.append(entry)
    return removed


def write_atomic(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Write ``data`` to ``path`` so that a crash leaves the old file or the new one, never half.
    ``durable=False``: without the two ``fsync`` (the file's and its folder's) — for a file whose
    loss or emptiness after a crash only costs work again (resume data that vouches for pieces a
    check just found: without it, a start checks them again), never for one a record relies on."""
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    except FileNotFoundError:  # (its folder made first: the first file there)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except OSError:
            pass
        raise
    if durable:
        _sync_folder(path.parent)  # make the rename itself durable


def _sync_folder(folder: Path) -> None:
    """fsync ``folder`` (the renames into it survive a crash); a folder that cannot be opened or
    synced is left as it is (the file itself was synced)."""
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def save_resume(path: Path, data: ResumeData, *, durable: bool = True) -> None:
    """Write the resume data to ``path`` atomically (``durable``: as ``write_atomic``);
    ``StorageError`` when that fails."""
    try:
        write_atomic(path, encode_resume(data), durable=durable)
    except OSError as exc:
        raise StorageError(f"cannot write resume data {path}: {exc}") from exc


def load_resume(path: Path) -> ResumeData | None:
    """The resume data at ``path``, or None when it is missing or unreadable (→ recheck)."""
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    try:
        return decode_resume(raw)
    except BencodeError:
        return None


class ResumeKeeper(Protocol):
    """Where one torrent's resume data is kept: a file (``ResumeFile``), or a row of a
    manager's store. ``load``, ``store`` and ``delete`` block (a worker thread); ``save`` is
    ``store`` from the event loop. Saving fails with ``StorageError``."""

    def load(self) -> ResumeData | None:
        """The resume data kept, None when there is none or it cannot be read (→ recheck)."""
        ...

    def store(self, data: ResumeData, *, durable: bool = True) -> None:
        """Keep ``data`` in place of what was kept (``durable``: as ``write_atomic``'s)."""
        ...

    async def save(self, data: ResumeData, *, durable: bool = True) -> None:
        """``store`` off the event loop."""
        ...

    def delete(self) -> None:
        """Forget what was kept (nothing when there is none)."""
        ...


@dataclass(frozen=True, slots=True)
class ResumeFile:
    """Resume data kept as one file (``save_resume``, ``load_resume``): a session without a
    manager, as the CLI's."""

    path: Path

    def load(self) -> ResumeData | None:
        """The file's resume data (``load_resume``)."""
        return load_resume(self.path)

    def store(self, data: ResumeData, *, durable: bool = True) -> None:
        """Written atomically (``save_resume``)."""
        save_resume(self.path, data, durable=durable)

    async def save(self, data: ResumeData, *, durable: bool = True) -> None:
        """``store`` in a worker thread."""
        await anyio.to_thread.run_sync(functools.partial(self.store, data, durable=durable))

    def delete(self) -> None:
        """The file removed."""
        self.path.unlink(missing_ok=True)


def trusted_pieces(data: ResumeData | None, *, info_hash: bytes, num_pieces: int, save_path: str,
                   current: list[FileStamp | None]) -> set[int] | None:
    """The verified pieces to start from, or None when the data must be rechecked.

    Trusted only if it is for this torrent and save path, and every file has exactly the size
    and mtime recorded (a file touched since, e.g. after a crash mid-download, forces a recheck).
    The data of an unfinished check is never trusted as a whole (``check_resume_point``).
    """
    if data is not None and data.checked_up_to is not None:
        return None
    return _matching_pieces(data, info_hash=info_hash, num_pieces=num_pieces, save_path=save_path,
                            current=current)


def check_resume_point(data: ResumeData | None, *, info_hash: bytes, num_pieces: int, save_path: str,
                       current: list[FileStamp | None]) -> tuple[set[int], int] | None:
    """Where an unfinished check saved in ``data`` can go on from: the pieces it verified and the
    first piece it had not hashed; None when the data is not an unfinished check's or cannot be
    trusted (another torrent, save path or piece count, a file's stamp changed since the check
    began): then everything is hashed again."""
    if data is None or data.checked_up_to is None or not 0 <= data.checked_up_to <= num_pieces:
        return None
    pieces = _matching_pieces(data, info_hash=info_hash, num_pieces=num_pieces, save_path=save_path,
                              current=current)
    if pieces is None:
        return None
    return {i for i in pieces if i < data.checked_up_to}, data.checked_up_to


def _matching_pieces(data: ResumeData | None, *, info_hash: bytes, num_pieces: int, save_path: str,
                     current: list[FileStamp | None]) -> set[int] | None:
    """The pieces of ``data`` when it is for this torrent, save path and files as they are now."""
    if data is None or data.info_hash != info_hash or data.num_pieces != num_pieces:
        return None
    if os.path.abspath(data.save_path) != os.path.abspath(save_path):
        return None
    if len(data.files) != len(current):
        return None
    for saved, now in zip(data.files, current, strict=True):
        if saved != now:
            return None
    return data.pieces()
