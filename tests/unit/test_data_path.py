"""The data path of DESIGN.md section 3 with picker + storage + verify together (no sockets):
blocks picked from several peers, written across file boundaries, each finished piece read back
and hashed, failed pieces re-downloaded and a peer sending bad data found and dropped; the files
on disk end up identical to the source."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest

from tests.unit.torrent_factory import make_torrent, payload
from torrent_engine.bitfield import Bitfield
from torrent_engine.metainfo import Torrent
from torrent_engine.picker import BLOCK_SIZE, PiecePicker
from torrent_engine.storage import Storage
from torrent_engine.verify import check_piece_on_disk, recheck

PL = 2 * BLOCK_SIZE
FILES = [
    (("a.bin",), payload(3 * PL + 5000, 1)),
    (("empty",), b""),
    (("dir", "b.bin"), payload(PL - 1, 2)),
    (("dir", "c.bin"), payload(2 * PL + 77, 3)),
]


def source_blob(t: Torrent) -> bytes:
    content = {p: d for p, d in FILES}
    blob = bytearray(t.total_length)
    for f in t.files:
        if not f.pad and f.length:
            blob[f.offset : f.offset + f.length] = content[f.path[1:]]
    return bytes(blob)


@pytest.mark.anyio
@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
async def test_download_with_a_lying_peer_completes_and_drops_the_liar(tmp_path: Path, version: str) -> None:
    t = make_torrent(FILES, PL, version=version, pad=True)
    blob = source_blob(t)
    rng = random.Random(7)
    picker = PiecePicker(t, rng)
    storage = Storage(t, tmp_path)
    peers = ["honest", "liar", "half"]
    picker.peer_have_all("honest")
    picker.peer_have_all("liar")
    picker.peer_bitfield("half", Bitfield(t.num_pieces, range(0, t.num_pieces, 2)))
    suspects: dict[int, dict[int, tuple[bytes, str]]] = {}  # piece -> block -> (digest, sender)
    sent_by: dict[int, dict[int, str]] = {}
    banned: set[str] = set()
    failures = 0

    for _ in range(500):
        if picker.is_complete():
            break
        for peer in [p for p in peers if p not in banned]:
            for b in picker.pick(peer, None, 3):
                start = b.index * PL + b.begin
                data = bytearray(blob[start : start + b.length])
                if peer == "liar":
                    data[0] ^= 0xFF
                got = picker.block_received(peer, b)
                assert got.cancels == () or picker.in_endgame()
                if not got.accepted:
                    continue
                await storage.write_block(b.index, b.begin, bytes(data))
                sent_by.setdefault(b.index, {})[b.begin // BLOCK_SIZE] = peer
                if not got.piece_complete:
                    continue
                senders = sent_by.pop(b.index)
                if await check_piece_on_disk(t, storage, b.index):
                    picker.piece_passed(b.index)
                    piece = await storage.read_piece(b.index)
                    for j, (digest, who) in suspects.pop(b.index, {}).items():
                        if hashlib.sha1(piece[j * BLOCK_SIZE : (j + 1) * BLOCK_SIZE]).digest() != digest:
                            banned.add(who)  # it sent a block that differs from the good one
                            picker.peer_gone(who)
                else:
                    failures += 1
                    assert picker.piece_failed(b.index) == set(senders.values())
                    bad = await storage.read_piece(b.index)
                    suspects[b.index] = {
                        j: (hashlib.sha1(bad[j * BLOCK_SIZE : (j + 1) * BLOCK_SIZE]).digest(), who)
                        for j, who in senders.items()
                    }
                    if len(set(senders.values())) == 1:
                        banned.update(senders.values())
                        picker.peer_gone(next(iter(senders.values())))
    await storage.close()

    assert picker.is_complete() and picker.left_bytes() == 0
    assert failures > 0 and banned == {"liar"}
    for path, data in FILES:
        assert (tmp_path / "t").joinpath(*path).read_bytes() == data
    assert not (tmp_path / "t" / ".pad").exists()
    again = await recheck(t, Storage(t, tmp_path))
    assert again.all()
