"""A torrent's data on disk checked against its hashes, without a session: which pieces verify
and, file by file, whether each is there, at its size, and whole (``check_data``; the ``verify``
command's). Nothing is written, created, truncated or moved: a file is only opened to be read.

A file is *complete* when it is there at its size and every piece it lies in verifies. In a v1
torrent a piece may span two files, so a whole file next to a missing one counts its shared piece
as not verified (its own bytes cannot be told apart from the piece's): the report says how many of
the file's pieces verified, as libtorrent's file progress does.
"""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import StorageError
from ..formats.bitfield import Bitfield
from ..formats.layout import FileMap
from ..formats.metainfo import Torrent
from ..jsonvalue import JSON
from .core import Storage
from .paths import check_inside, real_path
from .verify import ProgressCallback, recheck

__all__ = ["DataCheck", "FileCheck", "FileState", "check_data", "file_checks", "look_at"]

# complete: there, at its size, every piece it lies in verified; incomplete: there at its size,
# some piece not verified; missing: no file at its path; wrong_size: another size on disk (what
# verified of it still said); unreadable: something else there (a folder), or it cannot be read
FileState = Literal["complete", "incomplete", "missing", "wrong_size", "unreadable"]


@dataclass(frozen=True, slots=True)
class FileCheck:
    """One file of the torrent as found on disk (pad files and symlinks are not stored: not listed)."""

    index: int  # the metainfo's file index
    path: str  # below the save path, "/"-joined
    length: int  # its size in the torrent
    state: FileState
    pieces: int  # the pieces it lies in
    verified: int  # of them, verified
    size_on_disk: int | None  # None: no file there (or not a regular file)
    reason: str = ""  # why it could not be read (unreadable)

    def to_json(self) -> dict[str, JSON]:
        """The file as ``verify --json`` shows it."""
        return {"index": self.index, "path": self.path, "length": self.length, "state": self.state,
                "pieces": self.pieces, "verified_pieces": self.verified, "size_on_disk": self.size_on_disk,
                "reason": self.reason}


@dataclass(frozen=True, slots=True)
class DataCheck:
    """What ``check_data`` found under ``save_path``."""

    save_path: Path
    num_pieces: int
    verified: Bitfield  # the pieces that verified
    verified_bytes: int  # the bytes of those pieces
    total_bytes: int  # the bytes of every piece
    files: tuple[FileCheck, ...]
    seconds: float  # how long the hashing took

    @property
    def complete(self) -> bool:
        """Whether every piece verified and every file is complete."""
        return len(self.verified) == self.num_pieces and all(f.state == "complete" for f in self.files)


def look_at(save_path: Path, path: Path) -> tuple[int | None, str]:
    """(Blocking.) The size of the regular file at ``path`` (None: nothing there) and why it
    cannot be read, "" when it can (a folder there, a link leading out of ``save_path``, no
    permission to read it)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None, ""
    except OSError as exc:
        return None, exc.strerror or str(exc)
    if not stat.S_ISREG(st.st_mode):
        return None, "a folder is there" if stat.S_ISDIR(st.st_mode) else "not a regular file"
    try:
        check_inside(save_path, path)  # (as the storage reads it: a link out of the folder is not)
    except StorageError:
        return st.st_size, "a link to a place outside the folder (not read)"
    if not os.access(path, os.R_OK):
        return st.st_size, "no permission to read it"
    return st.st_size, ""


def file_checks(torrent: Torrent, found: dict[int, tuple[int | None, str]],
                verified: Bitfield) -> tuple[FileCheck, ...]:
    """Each stored file's state from what ``look_at`` found of it (by index) and the pieces that
    verified (pure)."""
    spans = FileMap(torrent)
    out: list[FileCheck] = []
    for index, f in enumerate(torrent.files):
        if index not in found:
            continue
        size, reason = found[index]
        pieces = spans.file_pieces(index) if f.length else range(0)
        done = verified.count_in(pieces.start, pieces.stop) if len(pieces) else 0
        state: FileState
        if reason:
            state = "unreadable"
        elif size is None:
            state = "missing"
        elif size != f.length:
            state = "wrong_size"
        else:
            state = "complete" if done == len(pieces) else "incomplete"
        out.append(FileCheck(index=index, path="/".join(f.path), length=f.length, state=state,
                             pieces=len(pieces), verified=done, size_on_disk=size, reason=reason))
    return tuple(out)


async def check_data(torrent: Torrent, save_path: str | os.PathLike[str], *, threads: int = 2,
                     progress: ProgressCallback | None = None) -> DataCheck:
    """Hash every piece of ``torrent`` from its files under ``save_path`` (the folder it was
    downloaded into: a multi-file torrent's own folder is below it) with ``threads`` worker
    threads; ``progress(pieces checked, pieces)`` as ``verify.recheck`` calls it. A file that is
    missing, short or unreadable only leaves its pieces unverified. ``StorageError`` when
    ``save_path`` is not a folder."""
    import anyio.to_thread

    root = real_path(save_path)
    if not root.is_dir():
        raise StorageError(f"{save_path} is not a folder: give the folder the torrent was downloaded into")
    storage = Storage(torrent, root, write_mode="cached")
    try:
        stored = {i: p for i in range(len(torrent.files)) if (p := storage.file_path(i)) is not None}

        def look() -> dict[int, tuple[int | None, str]]:
            return {i: look_at(root, p) for i, p in stored.items()}

        found = await anyio.to_thread.run_sync(look)
        started = time.monotonic()
        verified = await recheck(torrent, storage, progress, threads=max(1, threads))
        seconds = time.monotonic() - started
    finally:
        await storage.close()
    sizes = [torrent.piece_size(i) for i in range(torrent.num_pieces)]
    return DataCheck(save_path=root, num_pieces=torrent.num_pieces, verified=verified,
                     verified_bytes=sum(sizes[i] for i in verified), total_bytes=sum(sizes),
                     files=file_checks(torrent, found, verified), seconds=seconds)
