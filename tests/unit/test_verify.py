"""verify: v1 SHA-1 and v2 merkle piece checks (hybrid needs both), and recheck of files on disk
(complete, missing, short, corrupt, unreadable) with progress."""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from pathlib import Path

import pytest

from tests.unit.test_storage import FailingReads
from tests.unit.torrent_factory import make_torrent, payload
from torrent_engine.formats.bitfield import Bitfield
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.storage import Storage
from torrent_engine.storage.verify import hash_piece_v1, piece_ok, recheck, verify_piece

PL = 32768
# odd sizes: a file smaller than a piece, one spanning several with a short tail, one tiny
FILES = [(("a",), payload(3 * PL + 1234, 1)), (("b",), payload(20000, 2)), (("c",), payload(7, 3))]


def piece_space(t: Torrent) -> bytes:
    """The torrent's piece space built from FILES (pad and v2 alignment as zeros)."""
    content = {f[0]: f[1] for f in FILES}
    blob = bytearray(t.total_length)
    for f in t.files:
        if not f.pad and f.length:
            blob[f.offset : f.offset + f.length] = content[f.path[1:]]
    return bytes(blob)


def pieces_of(t: Torrent) -> list[bytes]:
    blob = piece_space(t)
    return [blob[i * PL : i * PL + t.piece_size(i)] for i in range(t.num_pieces)]


def test_hash_piece_v1_is_sha1() -> None:
    assert hash_piece_v1(b"abc") == hashlib.sha1(b"abc").digest()


@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
def test_every_piece_passes_and_a_flipped_byte_fails(version: str) -> None:
    t = make_torrent(FILES, PL, version=version)
    pieces = pieces_of(t)
    assert len(pieces) == t.num_pieces >= 4
    for i, data in enumerate(pieces):
        assert piece_ok(t, i, data), i
        bad = bytearray(data)
        bad[len(bad) // 2] ^= 1
        assert not piece_ok(t, i, bytes(bad)), i
        assert not piece_ok(t, i, data[:-1])  # wrong length
    assert not piece_ok(t, t.num_pieces, b"")


def test_v2_single_piece_files_use_their_pieces_root() -> None:
    t = make_torrent(FILES, PL, version="v2")
    small = [i for i in range(t.num_pieces) if (f := t.file_of_piece(i)) is not None and f.length < PL]
    assert small  # b and c are smaller than a piece
    for i in small:
        assert piece_ok(t, i, pieces_of(t)[i])


def test_hybrid_needs_both_hashes() -> None:
    t = make_torrent(FILES, PL, version="hybrid")
    pieces = pieces_of(t)
    wrong_v1 = dataclasses.replace(t, piece_hashes=tuple(bytes(20) for _ in t.piece_hashes))
    assert not piece_ok(wrong_v1, 0, pieces[0])  # the v2 tree alone is not enough
    wrong_v2 = dataclasses.replace(
        t, piece_layers={root: bytes(len(v)) for root, v in t.piece_layers.items()}
    )
    assert not piece_ok(wrong_v2, 0, pieces[0])  # nor the v1 hash alone


def test_v2_piece_without_known_layer_does_not_verify() -> None:
    t = make_torrent(FILES, PL, version="v2")
    bare = Torrent.from_info_bytes(t.info_bytes)  # a magnet download before piece layers arrive
    assert not piece_ok(bare, 0, pieces_of(t)[0])


@pytest.mark.anyio
async def test_verify_piece_in_a_thread() -> None:
    t = make_torrent(FILES, PL)
    assert await verify_piece(t, 1, pieces_of(t)[1])
    assert not await verify_piece(t, 1, pieces_of(t)[0][: t.piece_size(1)])


async def _write_all(t: Torrent, root: Path) -> None:
    st = Storage(t, root)
    for i, data in enumerate(pieces_of(t)):
        await st.write_block(i, 0, data)
    await st.close()


@pytest.mark.anyio
@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
async def test_recheck_counts_only_pieces_on_disk_that_verify(tmp_path: Path, version: str) -> None:
    t = make_torrent(FILES, PL, version=version, pad=True)
    await _write_all(t, tmp_path)
    complete = await recheck(t, Storage(t, tmp_path))
    assert complete.all()

    # corrupt one byte in piece 1 of a, cut a short so its last full piece stays, delete b
    path_a, path_b = tmp_path / "t" / "a", tmp_path / "t" / "b"
    data_a = bytearray(path_a.read_bytes())
    data_a[PL + 5] ^= 0xFF
    path_a.write_bytes(bytes(data_a[: 3 * PL]))  # wrong size: pieces 0..2 complete, 3 cut
    path_b.unlink()
    seen: list[tuple[int, int]] = []
    got = await recheck(t, Storage(t, tmp_path), progress=lambda done, total: seen.append((done, total)))
    index_of = {f.path[-1]: f for f in t.files if not f.pad}
    first_b = index_of["b"].offset // PL
    first_c = index_of["c"].offset // PL
    assert 0 in got and 2 in got  # a's untouched complete pieces
    assert 1 not in got  # corrupt
    assert 3 not in got  # the file is too short for it
    assert first_b not in got  # file missing
    assert first_c in got  # pad files keep c in its own piece
    assert seen[0] == (0, t.num_pieces) and seen[-1] == (t.num_pieces, t.num_pieces)
    counts = [d for d, _ in seen]
    assert counts == sorted(set(counts))  # strictly increasing


@pytest.mark.anyio
async def test_recheck_of_nothing_on_disk_and_unreadable_pieces(tmp_path: Path) -> None:
    t = make_torrent(FILES, PL)
    assert len(await recheck(t, Storage(t, tmp_path), threads=1)) == 0
    assert not (tmp_path / "t").exists()  # recheck never creates files
    await _write_all(t, tmp_path)
    got = await recheck(t, FailingReads(Storage(t, tmp_path), {2}), threads=3)
    assert set(got) == set(range(t.num_pieces)) - {2}


class MeetingStorage(Storage):
    """Each piece read waits (bounded) until another worker thread is reading too."""

    def __init__(self, *args: object, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.met = False
        # (generous: a loaded machine starts threads late). The meeting is marked by the barrier's
        # action, before it lets either thread go: marked after, a thread let go first could read
        # its next piece before the other had marked it, and wait for a second meeting alone.
        self.barrier = threading.Barrier(2, action=self._meet, timeout=30)

    def _meet(self) -> None:
        self.met = True

    def read_piece_blocking(self, index: int) -> bytes:
        if not self.met:
            self.barrier.wait()  # BrokenBarrierError (test failure) if only one thread ever reads
        return super().read_piece_blocking(index)


@pytest.mark.anyio
async def test_recheck_reads_and_hashes_in_two_threads_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = make_torrent(FILES, PL)
    await _write_all(t, tmp_path)
    monkeypatch.setattr("torrent_engine.storage.verify.RECHECK_BATCH_BYTES", PL)  # one piece per hop
    storage = MeetingStorage(t, tmp_path)
    got = await recheck(t, storage, threads=2)
    assert got.all() and storage.met


class CountingReads(Storage):
    """Records which pieces are read."""

    def __init__(self, *args: object, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.read: list[int] = []

    def read_piece_blocking(self, index: int) -> bytes:
        self.read.append(index)
        return super().read_piece_blocking(index)


@pytest.mark.anyio
async def test_recheck_from_a_piece_on_reads_only_those_and_says_how_far_it_got_without_a_gap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = make_torrent(FILES, PL)
    await _write_all(t, tmp_path)
    monkeypatch.setattr("torrent_engine.storage.verify.RECHECK_BATCH_BYTES", PL)  # one piece per hop
    storage = CountingReads(t, tmp_path)
    seen: list[tuple[int, int]] = []
    points: list[tuple[int, set[int]]] = []

    async def checkpoint(up_to: int, found: Bitfield) -> None:
        points.append((up_to, set(found)))

    got = await recheck(t, storage, progress=lambda done, total: seen.append((done, total)),
                        threads=2, start=2, checkpoint=checkpoint)
    assert sorted(storage.read) == list(range(2, t.num_pieces))  # nothing below 2 is read again
    assert set(got) == set(range(2, t.num_pieces))
    assert seen[0] == (2, t.num_pieces) and seen[-1] == (t.num_pieces, t.num_pieces)
    ups = [up for up, _ in points]
    assert ups == sorted(set(ups)) and ups[-1] == t.num_pieces  # forward only, to the end
    for up_to, found in points:  # every piece below it was hashed (each verifies)
        assert set(range(2, up_to)) <= found
    with pytest.raises(ValueError):
        await recheck(t, storage, start=t.num_pieces + 1)
    assert len(await recheck(t, storage, start=t.num_pieces)) == 0
