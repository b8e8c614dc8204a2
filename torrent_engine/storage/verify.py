"""Piece verification: SHA-1 (v1) and SHA-256 merkle (v2, BEP 52), in worker threads.

``piece_ok`` is pure and synchronous; ``verify_piece`` runs it in a worker thread (hashlib
releases the GIL, so hashing uses the second core); ``recheck`` reads and hashes every piece
of existing files (or those from a given piece on: a check that goes on where one stopped) with
several threads at once.

Hybrid torrents must pass both checks. A v2 piece is hashed over its file's bytes only (the
pad that follows a file in the hybrid piece space is not part of the v2 tree).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable

import anyio
import anyio.to_thread

from ..errors import StorageError
from ..formats.bitfield import Bitfield
from ..formats.merkle import piece_hash_v2
from ..formats.metainfo import Torrent
from . import PieceStorage

__all__ = [
    "RECHECK_BATCH_BYTES",
    "CheckpointCallback",
    "ProgressCallback",
    "check_piece_on_disk",
    "hash_piece_v1",
    "piece_ok",
    "piece_ok_and_v2_hash",
    "recheck",
    "verify_piece",
]

ProgressCallback = Callable[[int, int], None]  # (pieces checked so far, total pieces)
# (every piece below this one is hashed, the pieces found verified so far): where a check stands
CheckpointCallback = Callable[[int, Bitfield], Awaitable[None]]


def hash_piece_v1(data: bytes | memoryview) -> bytes:
    """The 20-byte SHA-1 of a piece as listed in ``info.pieces`` (BEP 3)."""
    return hashlib.sha1(data).digest()


def piece_ok(torrent: Torrent, index: int, data: bytes | memoryview) -> bool:
    """True when ``data`` is piece ``index``: SHA-1 for v1, merkle SHA-256 for v2, both for hybrid.

    False as well for a wrong length or a v2 piece whose hash is not known yet (piece layers
    missing); never raises for bad data.
    """
    if not 0 <= index < torrent.num_pieces or len(data) != torrent.piece_size(index):
        return False
    if torrent.piece_hashes and hash_piece_v1(data) != torrent.piece_hashes[index]:
        return False
    if torrent.is_v2:
        expected = torrent.expected_piece_hash_v2(index)
        f = torrent.file_of_piece(index)
        if expected is None or f is None:
            return bool(torrent.piece_hashes)  # hybrid: the v1 hash has vouched for it
        start = index * torrent.piece_length
        own = min(len(data), f.offset + f.length - start)  # file bytes, without trailing pad
        if piece_hash_v2(memoryview(data)[:own], torrent.piece_length, f.length) != expected:
            return False
    return True


def piece_ok_and_v2_hash(torrent: Torrent, index: int, data: bytes | memoryview) -> tuple[bool, bytes | None]:
    """``piece_ok``, and for a piece that passed, its v2 piece-layer hash when its file has more
    than one piece (None otherwise): how a hybrid whose layers are missing learns them from the
    data its SHA-1 hashes vouch for."""
    if not piece_ok(torrent, index, data):
        return False, None
    f = torrent.file_of_piece(index)
    if f is None or f.length <= torrent.piece_length:
        return True, None
    own = min(len(data), f.offset + f.length - index * torrent.piece_length)
    return True, piece_hash_v2(memoryview(data)[:own], torrent.piece_length, f.length)


async def verify_piece(
    torrent: Torrent, index: int, data: bytes | memoryview, *, limiter: anyio.CapacityLimiter | None = None
) -> bool:
    """``piece_ok`` in a worker thread."""
    return await anyio.to_thread.run_sync(piece_ok, torrent, index, data, limiter=limiter)


def _read_and_check(torrent: Torrent, storage: PieceStorage, index: int) -> bool:
    try:
        data = storage.read_piece_blocking(index)
    except StorageError:
        return False
    return piece_ok(torrent, index, data)


async def check_piece_on_disk(
    torrent: Torrent, storage: PieceStorage, index: int, *, limiter: anyio.CapacityLimiter | None = None
) -> bool:
    """Read piece ``index`` back from storage and verify it, in one worker-thread hop; False if
    unreadable or wrong."""
    return await anyio.to_thread.run_sync(_read_and_check, torrent, storage, index, limiter=limiter)


RECHECK_BATCH_BYTES = 4 * 1024 * 1024  # pieces per worker-thread hop in recheck, by size


def _check_batch(torrent: Torrent, storage: PieceStorage, batch: list[int]) -> list[bool]:
    return [_read_and_check(torrent, storage, i) for i in batch]


async def recheck(
    torrent: Torrent,
    storage: PieceStorage,
    progress: ProgressCallback | None = None,
    threads: int = 2,
    *,
    start: int = 0,
    checkpoint: CheckpointCallback | None = None,
) -> Bitfield:
    """Read and hash every piece on disk from piece ``start`` on; the pieces that verify (none
    below ``start``: the caller knows those).

    ``threads`` workers read and hash at once (2 = both cores of a small machine); each
    worker-thread hop handles a batch of consecutive pieces (about ``RECHECK_BATCH_BYTES``), so
    small pieces do not pay a hop each and a busy event loop does not starve the hashing threads.
    A piece that cannot be read (missing file, file too short) does not count; nothing is
    written. ``progress(checked, total)`` is called at the start (``checked`` = ``start``) and
    after each batch, ending with ``(total, total)``. ``checkpoint(up_to, found)`` is awaited each
    time the pieces hashed from ``start`` with no gap reach further (the workers end their
    batches out of order): every piece below ``up_to`` is hashed, ``found`` the verified so far.
    """
    total = torrent.num_pieces
    if not 0 <= start <= total:
        raise ValueError(f"recheck start {start} is not a piece of 0..{total}")
    result = Bitfield(total)
    workers = max(1, threads)
    limiter = anyio.CapacityLimiter(workers)
    batch_pieces = max(1, RECHECK_BATCH_BYTES // max(1, torrent.piece_length))
    batches = iter([list(range(i, min(i + batch_pieces, total))) for i in range(start, total, batch_pieces)])
    checked = start
    up_to = start  # every piece below it hashed
    ended: dict[int, int] = {}  # batches hashed beyond ``up_to``: first piece -> end
    if progress is not None:
        progress(start, total)

    async def worker() -> None:
        nonlocal checked, up_to
        for batch in batches:  # the shared iterator hands each batch to one worker
            oks = await anyio.to_thread.run_sync(_check_batch, torrent, storage, batch, limiter=limiter)
            for index, ok in zip(batch, oks, strict=True):
                if ok:
                    result.add(index)
            checked += len(batch)
            ended[batch[0]] = batch[-1] + 1
            reached = up_to
            while reached in ended:
                reached = ended.pop(reached)
            if reached != up_to:
                up_to = reached
                if checkpoint is not None:
                    await checkpoint(up_to, result)
            if progress is not None:
                progress(checked, total)

    async with anyio.create_task_group() as tg:
        for _ in range(workers):
            tg.start_soon(worker)
    return result
