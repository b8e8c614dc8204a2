"""Making .torrent files (BEP 3, 12, 19, 27, 47, 52) from a file or a folder: v1, v2 or hybrid.

Hashing reads the data in large chunks and hashes them in worker threads: hashlib releases the
GIL on large buffers, so two threads keep two cores busy. The result goes through the same
validation as any loaded torrent (:meth:`Torrent.from_bytes`) before it is returned.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import os
import threading
import urllib.parse
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypedDict, Unpack

from ..errors import MetainfoError
from ..formats.bencode import BValue, encode
from ..formats.merkle import BLOCK_SIZE, merkle_root, root_from_piece_layer
from ..formats.metainfo import MAX_PIECE_LENGTH, MIN_PIECE_LENGTH, Torrent

__all__ = [
    "CHUNK_SIZE",
    "ProgressCallback",
    "Version",
    "auto_piece_length",
    "create_torrent",
    "create_torrent_async",
]

Version = Literal["v1", "v2", "hybrid"]
ProgressCallback = Callable[[int, int], None]  # (bytes hashed, total bytes)

# Bytes read and hashed per task (whole pieces): small enough that a chunk is still in the
# CPU cache when it is hashed, large enough to amortise the hand-off to a worker.
CHUNK_SIZE = 1024 * 1024
TARGET_PIECES = 1500  # auto piece length aims at about this many pieces
AUTO_MAX_PIECE_LENGTH = 16 * 1024 * 1024
CREATED_BY = "torrent_engine/0.1"


@dataclass(frozen=True)
class _Segment:
    """A stretch of the piece space: a file's bytes, or zeros (BEP 47 pad / v2 alignment)."""

    offset: int
    length: int
    path: Path | None  # None: zeros


@dataclass(frozen=True)
class _SourceFile:
    components: tuple[bytes, ...]  # path inside the torrent root (UTF-8 / filesystem bytes)
    disk_path: Path
    length: int


def auto_piece_length(total_size: int) -> int:
    """A power of two giving about ``TARGET_PIECES`` pieces, within 16 KiB .. 16 MiB."""
    pl = MIN_PIECE_LENGTH
    while pl < AUTO_MAX_PIECE_LENGTH and total_size > pl * TARGET_PIECES:
        pl *= 2
    return pl


def _scan(root: Path, skip_hidden: bool = False) -> tuple[bool, list[_SourceFile]]:
    """Regular files under ``root`` in BEP 52 file-tree order (bytewise, component by
    component); symlinks are not followed, and with ``skip_hidden`` neither are files and
    folders whose name starts with a dot (qBittorrent's "ignore dotfiles")."""
    if root.is_file():
        return False, [_SourceFile((os.fsencode(root.name),), root, root.stat().st_size)]
    if not root.is_dir():
        raise FileNotFoundError(f"no such file or directory: {root}")
    found: list[_SourceFile] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        base = Path(dirpath)
        rel = base.relative_to(root)
        prefix = tuple(os.fsencode(p) for p in rel.parts)
        for fn in filenames:
            p = base / fn
            if p.is_symlink() or not p.is_file() or (skip_hidden and fn.startswith(".")):
                continue
            found.append(_SourceFile((*prefix, os.fsencode(fn)), p, p.stat().st_size))
        dirnames[:] = [d for d in dirnames
                       if not (base / d).is_symlink() and not (skip_hidden and d.startswith("."))]
    found.sort(key=lambda f: f.components)
    return True, found


def _tiers(trackers: Iterable[str | Sequence[str]]) -> list[list[str]]:
    tiers: list[list[str]] = []
    for t in trackers:
        tier = [t] if isinstance(t, str) else [u for u in t]
        if tier:
            tiers.append(tier)
    return tiers


TRACKER_SCHEMES = ("http", "https", "udp")  # BEP 3 (HTTP), BEP 15 (UDP)
WEB_SEED_SCHEMES = ("http", "https")  # BEP 19


def check_url(url: str, schemes: tuple[str, ...], field: str) -> None:
    """``MetainfoError`` naming ``field`` unless ``url`` is an absolute URL with one of
    ``schemes`` and a host (and, if it has one, a valid port)."""
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not one
    except ValueError as exc:
        raise MetainfoError(f"{url!r} is not a URL: {exc}", field) from None
    if parts.scheme.lower() not in schemes or not parts.hostname:
        raise MetainfoError(f"{url!r} is not a {'/'.join(schemes)} URL with a host", field)


class _Hasher:
    """Reads piece-space chunks and hashes them; one instance shared by the worker threads."""

    def __init__(
        self,
        segments: list[_Segment],
        piece_length: int,
        v1: bool,
        v2: bool,
        file_ends: list[tuple[int, int, int]],
    ) -> None:
        self.segments = segments
        self.starts = [s.offset for s in segments]
        self.pl = piece_length
        self.v1 = v1
        self.v2 = v2
        # (file start, file end, file length) of each non-empty file, for v2 piece hashes
        self.file_ends = file_ends
        self.file_starts = [f[0] for f in file_ends]
        self.local = threading.local()

    def _buffer(self, size: int) -> bytearray:
        buf: bytearray | None = getattr(self.local, "buf", None)
        if buf is None or len(buf) < size:
            buf = bytearray(size)
            self.local.buf = buf
        return buf

    def read(self, start: int, end: int) -> memoryview:
        """The piece-space bytes [start, end) in a reused per-thread buffer."""
        view = memoryview(self._buffer(end - start))[: end - start]
        i = max(0, bisect.bisect_right(self.starts, start) - 1)
        pos = start
        while pos < end and i < len(self.segments):
            seg = self.segments[i]
            seg_end = seg.offset + seg.length
            if seg_end <= pos:
                i += 1
                continue
            take = min(end, seg_end) - pos
            dst = view[pos - start : pos - start + take]
            if seg.path is None:
                dst[:] = bytes(take)
            else:
                with open(seg.path, "rb", buffering=0) as fh:
                    fh.seek(pos - seg.offset)
                    got = 0
                    while got < take:
                        n = fh.readinto(dst[got:])
                        if not n:
                            raise OSError(f"{seg.path}: file shrank while it was being hashed")
                        got += n
            pos += take
            i += 1
        if pos < end:
            view[pos - start :] = bytes(end - pos)
        return view

    def hash_range(
        self, first_piece: int, last_piece: int, space_end: int
    ) -> tuple[list[bytes], list[bytes]]:
        """SHA-1 of each v1 piece and the v2 piece hash of each piece in [first, last)."""
        pl = self.pl
        start = first_piece * pl
        end = min(last_piece * pl, space_end)
        data = self.read(start, end)
        sha1 = hashlib.sha1
        sha256 = hashlib.sha256
        v1_out: list[bytes] = []
        v2_out: list[bytes] = []
        for p in range(first_piece, last_piece):
            a = p * pl - start
            piece = data[a : min(a + pl, end - start)]
            if self.v1:
                v1_out.append(sha1(piece).digest())
            if self.v2:
                k = bisect.bisect_right(self.file_starts, p * pl) - 1
                f_start, f_end, f_len = self.file_ends[k]
                n = min(pl, f_end - p * pl)
                if n <= 0:  # alignment gap after the file: no v2 piece here
                    v2_out.append(b"")
                    continue
                leaves = [sha256(piece[i : min(i + BLOCK_SIZE, n)]).digest() for i in range(0, n, BLOCK_SIZE)]
                if f_len <= pl:
                    v2_out.append(merkle_root(leaves))
                else:
                    v2_out.append(merkle_root(leaves, pad_to=pl // BLOCK_SIZE))
        return v1_out, v2_out


def _hash_in_order(
    hasher: _Hasher, num_pieces: int, per_task: int, threads: int, space_end: int
) -> Iterator[tuple[int, list[bytes], list[bytes]]]:
    """(end piece, v1 hashes, v2 hashes) of consecutive piece ranges, in order.

    One thread hashes inline (no hand-off cost); more keep ``2 * threads`` ranges in flight so
    every worker always has the next chunk ready, and memory stays bounded.
    """
    ranges = ((a, min(num_pieces, a + per_task)) for a in range(0, num_pieces, per_task))
    if threads == 1:
        for first, last in ranges:
            yield (last, *hasher.hash_range(first, last, space_end))
        return
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="te-hash") as pool:
        pending: deque[tuple[int, Future[tuple[list[bytes], list[bytes]]]]] = deque()
        try:
            for first, last in ranges:
                pending.append((last, pool.submit(hasher.hash_range, first, last, space_end)))
                if len(pending) >= threads * 2:
                    end, fut = pending.popleft()
                    yield (end, *fut.result())
            while pending:
                end, fut = pending.popleft()
                yield (end, *fut.result())
        finally:
            for _, fut in pending:
                fut.cancel()


def create_torrent(
    path: str | os.PathLike[str],
    *,
    version: Version = "hybrid",
    piece_length: int | None = None,
    trackers: Iterable[str | Sequence[str]] = (),
    web_seeds: Iterable[str] = (),
    private: bool = False,
    comment: str | None = None,
    created_by: str | None = CREATED_BY,
    creation_date: int | None = None,
    name: str | None = None,
    source: str | None = None,
    skip_hidden: bool = False,
    threads: int = 2,
    progress: ProgressCallback | None = None,
) -> Torrent:
    """Hash ``path`` (a file or a folder) and return the validated :class:`Torrent`.

    ``trackers`` are tiers (BEP 12) or plain URLs (each its own tier). ``creation_date`` is
    left out unless given (no clock is read here). ``source`` goes in the info dict (private
    trackers' convention: the same data gets another info-hash per tracker). ``progress`` is
    called after each chunk of pieces, on the calling thread: an exception it raises (a
    cancellation, ``anyio.from_thread.check_cancelled``) stops the hashing there. Write the
    file with ``torrent.to_bytes()``.
    """
    if version not in ("v1", "v2", "hybrid"):
        raise ValueError(f"version must be 'v1', 'v2' or 'hybrid', not {version!r}")
    if threads < 1:
        raise ValueError("threads must be at least 1")
    trackers, web_seeds = list(trackers), list(web_seeds)
    for tier in _tiers(trackers):  # (before the hashing: a typo must not cost the whole of it)
        for url in tier:
            check_url(url, TRACKER_SCHEMES, "announce")
    for url in web_seeds:
        check_url(url, WEB_SEED_SCHEMES, "url-list")
    root = Path(path)
    multi, sources = _scan(root, skip_hidden)
    total_data = sum(f.length for f in sources)
    if total_data == 0:
        raise MetainfoError(f"{root}: nothing to share (no data)", "info.length")
    pl = piece_length if piece_length is not None else auto_piece_length(total_data)
    if pl < MIN_PIECE_LENGTH or pl > MAX_PIECE_LENGTH or pl & (pl - 1):
        raise MetainfoError(
            f"{pl} is not a power of two in {MIN_PIECE_LENGTH}..{MAX_PIECE_LENGTH}", "info.piece length"
        )
    v1 = version in ("v1", "hybrid")
    v2 = version in ("v2", "hybrid")
    aligned = v2  # BEP 52: each file starts on a piece boundary (BEP 47 pads in the v1 view)

    # Lay the files out in the piece space.
    segments: list[_Segment] = []
    v1_files: list[BValue] = []
    placed: list[tuple[_SourceFile, int]] = []
    pos = 0
    for i, src in enumerate(sources):
        if src.length:
            segments.append(_Segment(pos, src.length, src.disk_path))
        placed.append((src, pos))
        v1_files.append({b"length": src.length, b"path": [*src.components]})
        pos += src.length
        gap = (-pos) % pl
        if aligned and gap and i < len(sources) - 1:
            segments.append(_Segment(pos, gap, None))
            # BEP 47: pad files live in .pad/ and are named after their size
            v1_files.append({b"attr": b"p", b"length": gap, b"path": [b".pad", str(gap).encode()]})
            pos += gap
    space_end = pos
    num_pieces = -(-space_end // pl)
    file_ends = [(off, off + s.length, s.length) for s, off in placed if s.length]

    hasher = _Hasher(segments, pl, v1, v2, file_ends)
    per_task = max(1, CHUNK_SIZE // pl)
    v1_hashes: list[bytes] = []
    v2_hashes: list[bytes] = []
    for last, h1, h2 in _hash_in_order(hasher, num_pieces, per_task, threads, space_end):
        v1_hashes.extend(h1)
        v2_hashes.extend(h2)
        if progress is not None:
            progress(min(space_end, last * pl), space_end)

    info: dict[bytes, BValue] = {}
    torrent_name = name if name is not None else root.name
    encoded_name = info[b"name"] = torrent_name.encode("utf-8", errors="surrogateescape")
    info[b"piece length"] = pl
    if private:
        info[b"private"] = 1  # BEP 27
    if source:
        info[b"source"] = source.encode()
    if v1:
        info[b"pieces"] = b"".join(v1_hashes)
        if multi:
            info[b"files"] = v1_files
        else:
            info[b"length"] = sources[0].length
    layers: dict[bytes, BValue] = {}
    if v2:
        info[b"meta version"] = 2  # BEP 52
        tree: dict[bytes, BValue] = {}
        for src, off in placed:
            entry: dict[bytes, BValue] = {b"length": src.length}
            if src.length:
                first = off // pl
                count = -(-src.length // pl)
                hashes = v2_hashes[first : first + count]
                pieces_root = hashes[0] if src.length <= pl else root_from_piece_layer(hashes, pl)
                entry[b"pieces root"] = pieces_root
                if src.length > pl:
                    layers[pieces_root] = b"".join(hashes)
            # a single file is named by the torrent's name in both views
            _place(tree, src.components if multi else (encoded_name,), entry)
        info[b"file tree"] = tree

    top: dict[bytes, BValue] = {b"info": info}
    tiers = _tiers(trackers)
    if tiers:
        top[b"announce"] = tiers[0][0].encode()
        if len(tiers) > 1 or len(tiers[0]) > 1:
            top[b"announce-list"] = [[u.encode() for u in t] for t in tiers]  # BEP 12
    seeds = list(dict.fromkeys(web_seeds))
    if seeds:
        top[b"url-list"] = [u.encode() for u in seeds]  # BEP 19
    if comment is not None:
        top[b"comment"] = comment.encode()
    if created_by is not None:
        top[b"created by"] = created_by.encode()
    if creation_date is not None:
        top[b"creation date"] = creation_date
    if layers:
        top[b"piece layers"] = layers  # BEP 52
    return Torrent.from_bytes(encode(top))


class CreateOptions(TypedDict, total=False):
    """The keywords of :func:`create_torrent`."""

    version: Version
    piece_length: int | None
    trackers: Iterable[str | Sequence[str]]
    web_seeds: Iterable[str]
    private: bool
    comment: str | None
    created_by: str | None
    creation_date: int | None
    name: str | None
    source: str | None
    skip_hidden: bool
    threads: int
    progress: ProgressCallback | None


def _place(tree: dict[bytes, BValue], path: Sequence[bytes], entry: dict[bytes, BValue]) -> None:
    """Put a file's ``entry`` at ``path`` in a v2 ``file tree`` (BEP 52: ``{name: {..., b"": entry}}``)."""
    node = tree
    for comp in path:
        child = node.setdefault(comp, {})
        if not isinstance(child, dict):  # (a walk of a folder names nothing as both)
            raise MetainfoError(f"{comp!r} is both a file and a folder", "info.file tree")
        node = child
    node[b""] = entry


async def create_torrent_async(path: str | os.PathLike[str], **kwargs: Unpack[CreateOptions]) -> Torrent:
    """:func:`create_torrent` run in a worker thread, for use on the event loop."""
    import anyio.to_thread

    return await anyio.to_thread.run_sync(functools.partial(create_torrent, path, **kwargs))
