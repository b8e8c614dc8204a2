"""Placing a file already held at a new torrent's file path (reflink, hard link or copy), and
hashing a file's BEP 52 ``pieces root``: the blocking I/O of v2 deduplication (policy/dedup.py
decides; run these in a worker thread).

A placed file is never seen half-written: it is made under a temporary name in the target's
folder (``.NAME.XXXXXXXX.dedup``) and renamed into place only once whole; what a crash in the
middle of one leaves under that name is removed by ``remove_temporaries`` (its owner keeps the
targets being placed where a start finds them).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import secrets
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import StorageError
from ..formats.merkle import BLOCK_SIZE, pieces_root
from ..formats.metainfo import Torrent
from ..policy.dedup import Method

__all__ = ["FICLONE", "TEMPORARY_SUFFIX", "FileRoot", "PlaceError", "Placed", "file_pieces_root",
           "file_roots", "place_file", "remove_temporaries", "wanted_roots"]

FileRoot = tuple[int, bytes, int]
"""A v2 file of a torrent: its index, pieces root and length."""


def file_roots(torrent: Torrent, priorities: Sequence[int] | None = None) -> list[FileRoot]:
    """(index, pieces root, length) of each wanted, non-empty v2 file of ``torrent`` (none for
    a v1 torrent; ``priorities`` None: every one)."""
    files = [(i, f.pieces_root, f.length) for i, f in enumerate(torrent.files)
             if f.pieces_root is not None and f.length > 0 and not f.pad and "l" not in f.attr]
    return files if priorities is None else wanted_roots(files, priorities)


def wanted_roots(files: Sequence[FileRoot], priorities: Sequence[int]) -> list[FileRoot]:
    """Those of ``files`` that ``priorities`` want (a file past their end is not)."""
    return [f for f in files if f[0] < len(priorities) and priorities[f[0]] > 0]


FICLONE = 0x40049409  # linux/fs.h: _IOW(0x94, 9, int), share the source's extents (reflink)
_READ = 1024 * 1024  # bytes read at once while hashing or copying
_COPY = 64 * 1024 * 1024  # bytes copied within the kernel at once (a stop is seen between two)
TEMPORARY_SUFFIX = ".dedup"  # a file being placed: ".NAME." + 8 hex digits + this, beside NAME
_TOKEN = 4  # random bytes in a temporary's name (8 hex digits)
# errors that say "this way does not work here" (try the next way), not "this file is bad"
_UNSUPPORTED = {errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EINVAL, errno.ENOTTY, errno.ENOSYS,
                errno.EPERM, errno.EMLINK}


class PlaceError(StorageError):
    """A file could not be placed by any of the ways asked (says which file and why)."""


@dataclass(frozen=True, slots=True)
class Placed:
    """A file placed: how, and the ways tried before it that the file system refused (each with
    its reason), so a fallback is reported."""

    method: Method
    refused: tuple[tuple[Method, str], ...] = ()


def file_pieces_root(path: str | os.PathLike[str], length: int | None = None) -> bytes:
    """The BEP 52 pieces root of the file at ``path`` (its 16 KiB blocks' SHA-256 merkle root;
    it does not depend on a torrent's piece length). ``length``: the length expected, read no
    further (``OSError`` if the file is shorter)."""
    leaves: list[bytes] = []
    sha = hashlib.sha256
    left = length
    with open(path, "rb") as f:  # (buffered: a read is short only at the end of the file)
        while left is None or left > 0:
            want = _READ if left is None else min(_READ, left)
            chunk = f.read(want)
            if not chunk:
                break
            view = memoryview(chunk)
            leaves.extend(sha(view[i:i + BLOCK_SIZE]).digest() for i in range(0, len(view), BLOCK_SIZE))
            if left is not None:
                left -= len(chunk)
            if len(chunk) < want:
                break
    if left:
        raise OSError(errno.ENODATA, f"{os.fspath(path)} is shorter than {length} bytes")
    return pieces_root(leaves, BLOCK_SIZE)


def place_file(source: str | os.PathLike[str], target: str | os.PathLike[str], length: int,
               ways: Sequence[Method], stop: threading.Event | None = None) -> Placed:
    """Make ``target`` (which must not exist) hold the ``length`` bytes of ``source``, by the
    first of ``ways`` the file system takes; the folders above ``target`` are made. ``PlaceError``
    when none could (the target is then left absent), when ``source`` is not ``length`` long, or
    when ``stop`` is set during a copy (its owner was cancelled)."""
    src, dst = Path(source), Path(target)
    if not ways:
        raise PlaceError(f"no way to place {dst} asked")
    try:
        size = src.stat().st_size
    except OSError as exc:
        raise PlaceError(f"cannot read {src}: {exc.strerror or exc}") from None
    if size != length:
        raise PlaceError(f"{src} is {size} bytes, not {length}")
    dst.parent.mkdir(parents=True, exist_ok=True)
    refused: list[tuple[Method, str]] = []
    for way in ways:
        tmp = dst.with_name(f".{dst.name}.{secrets.token_hex(_TOKEN)}{TEMPORARY_SUFFIX}")
        try:
            if way == "hardlink":
                os.link(src, tmp)
            else:
                _copy(src, tmp, length, reflink=way == "reflink", stop=stop)
            if dst.exists():  # (something came there meanwhile: it is the torrent's to check)
                raise PlaceError(f"{dst} appeared while it was being placed")
            os.replace(tmp, dst)
            return Placed(method=way, refused=tuple(refused))
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            if exc.errno in _UNSUPPORTED:
                refused.append((way, exc.strerror or str(exc)))
                continue
            raise PlaceError(f"cannot place {dst} from {src} by {way}: {exc.strerror or exc}") from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    said = "; ".join(f"{w}: {why}" for w, why in refused)
    raise PlaceError(f"cannot place {dst} from {src}: {said}")


def remove_temporaries(targets: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """(Blocking.) Remove what placements of ``targets`` left under their temporary names (a
    crash in the middle of one: ``place_file`` removes its own otherwise): each folder read once,
    only names of that shape beside a target removed, never the targets. The paths removed; a
    folder that cannot be read or a file that cannot be removed is passed over."""
    names: dict[Path, set[str]] = {}
    for target in targets:
        path = Path(target)
        names.setdefault(path.parent, set()).add(path.name)
    removed: list[Path] = []
    hex_len = 2 * _TOKEN
    for folder, targets_here in names.items():
        try:
            with os.scandir(folder) as entries:
                found = [e for e in entries if e.name.startswith(".") and e.name.endswith(TEMPORARY_SUFFIX)]
        except OSError:
            continue
        for entry in found:
            base, _, token = entry.name[1:-len(TEMPORARY_SUFFIX)].rpartition(".")
            if base not in targets_here or len(token) != hex_len or token.strip("0123456789abcdef"):
                continue
            try:
                if entry.is_symlink() or not entry.is_file():
                    continue
                os.unlink(entry.path)
            except OSError:
                continue
            removed.append(Path(entry.path))
    return removed


def _copy(src: Path, tmp: Path, length: int, *, reflink: bool, stop: threading.Event | None) -> None:
    """``src`` into the new file ``tmp``: its extents shared (FICLONE) when ``reflink``, else
    its bytes copied (``copy_file_range``, within the kernel, then read and write if refused)."""
    with open(src, "rb") as fin, open(tmp, "xb") as fout:
        if reflink:
            fcntl.ioctl(fout.fileno(), FICLONE, fin.fileno())
            return
        done = 0
        try:
            while done < length:
                _stopped(stop, src)
                n = os.copy_file_range(fin.fileno(), fout.fileno(), min(length - done, _COPY))
                if n == 0:
                    break
                done += n
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                raise
            fin.seek(done)
            fout.seek(done)
            while done < length:
                _stopped(stop, src)
                chunk = fin.read(min(_READ, length - done))
                if not chunk:
                    break
                fout.write(chunk)
                done += len(chunk)
        if done != length:
            raise OSError(errno.ENODATA, f"{src} ended after {done} of {length} bytes")
        fout.flush()
        os.fsync(fout.fileno())


def _stopped(stop: threading.Event | None, src: Path) -> None:
    if stop is not None and stop.is_set():
        raise PlaceError(f"the copy of {src} was stopped")
