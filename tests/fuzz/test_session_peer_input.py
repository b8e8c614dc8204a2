"""Malformed and hostile peer input against a running seeder: it closes that peer, never crashes.

200 connections (fixed seeds), each sending a random mix of valid, out-of-range, oversized and
garbage messages after a correct handshake; then an honest leecher must still get every file.
"""

from __future__ import annotations

import logging
import os
import random
import struct
from pathlib import Path

import anyio
import pytest

from tests.integration.helpers import loopback_config, make_payload, make_torrent, same_files
from torrent_engine.net.peer import messages as m
from torrent_engine.session import Session
from torrent_engine.session.state_table import State

pytestmark = pytest.mark.anyio


def _frame(msg_id: int, payload: bytes) -> bytes:
    return struct.pack(">IB", 1 + len(payload), msg_id) + payload


def _random_message(rng: random.Random, num_pieces: int) -> bytes:
    kind = rng.randrange(14)
    index = rng.choice([0, num_pieces - 1, num_pieces, rng.getrandbits(32)])
    begin = rng.choice([0, 16384, 16383, rng.getrandbits(32)])
    length = rng.choice([16384, 1, 0, 16385, rng.getrandbits(32)])
    if kind == 0:
        return m.Have(index % (1 << 32)).to_bytes()
    if kind == 1:
        size = rng.choice([(num_pieces + 7) // 8, 0, 1, 1000])
        return _frame(5, rng.randbytes(size))
    if kind == 2:
        return _frame(6, struct.pack(">III", index, begin, length))  # request
    if kind == 3:
        return _frame(7, struct.pack(">II", index, begin) + rng.randbytes(rng.choice([0, 1, 16384])))
    if kind == 4:
        return _frame(8, struct.pack(">III", index, begin, length))  # cancel
    if kind == 5:
        return _frame(20, bytes([rng.randrange(4)]) + rng.randbytes(rng.randrange(60)))  # extended
    if kind == 6:
        return _frame(20, b"\x00d1:md11:ut_metadatai2e6:ut_pexi3ee13:metadata_sizei99999999999ee")
    if kind == 7:
        piece = str(rng.choice([0, 5, -1])).encode()
        return _frame(20, bytes([2]) + b"d8:msg_typei0e5:piecei" + piece + b"ee")  # ut_metadata request
    if kind == 8:
        return _frame(20, bytes([3]) + b"d5:added" + b"3:abce")  # ut_pex with a bad compact list
    if kind == 9:
        return struct.pack(">I", rng.choice([1 << 20, 1 << 31])) + b"\x07"  # oversized length
    if kind == 10:
        return _frame(rng.randrange(21, 256), rng.randbytes(rng.randrange(20)))  # unknown id
    if kind == 11:
        simple: list[m.Message] = [m.Interested(), m.NotInterested(), m.Choke(), m.Unchoke(), m.KeepAlive()]
        return rng.choice(simple).to_bytes()
    if kind == 12:
        return _frame(rng.choice([0x0D, 0x0E, 0x0F, 0x10, 0x11]), rng.randbytes(rng.choice([0, 4, 12])))
    return rng.randbytes(rng.randrange(1, 40))  # plain garbage


async def test_hostile_peers_never_crash_the_seeder(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="torrent_engine")
    torrent = make_torrent(make_payload(tmp_path / "seed"))
    cfg = loopback_config(encryption="disable")
    async with Session(torrent, tmp_path / "seed", config=cfg) as seeder:
        await seeder.wait_ready()
        for seed in range(200):
            rng = random.Random(seed)
            peer_id = b"-XX0003-" + os.urandom(6).hex().encode()
            handshake = m.Handshake(m.make_reserved(), torrent.info_hash, peer_id)
            try:
                async with await anyio.connect_tcp("127.0.0.1", seeder.listen_port) as stream:
                    await stream.send(handshake.to_bytes())
                    count = rng.randrange(1, 12)
                    msgs = [_random_message(rng, torrent.num_pieces) for _ in range(count)]
                    await stream.send(b"".join(msgs))
                    with anyio.move_on_after(0.5):
                        while await stream.receive():  # until the seeder closes on us (or quiet)
                            pass
            except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                pass
            assert seeder.state is State.SEEDING, seed
        async with Session(torrent, tmp_path / "leech", config=cfg,
                           peers=[("127.0.0.1", seeder.listen_port)]) as leecher:
            with anyio.fail_after(60):
                await leecher.wait_completed()
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []
    # nothing reached the "unexpected error" path (a bug) or failed the session
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_hostile_peers_never_crash_a_leecher(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="torrent_engine")
    torrent = make_torrent(make_payload(tmp_path / "seed"), piece_length=16 * 1024)
    cfg = loopback_config(encryption="disable")
    slow = loopback_config(upload_rate_limit=100_000)
    async with Session(torrent, tmp_path / "seed", config=slow) as seeder:
        await seeder.wait_ready()
        async with Session(torrent, tmp_path / "leech", config=cfg,
                           peers=[("127.0.0.1", seeder.listen_port)]) as leecher:
            await leecher.wait_ready()
            for seed in range(100):
                rng = random.Random(1000 + seed)
                peer_id = b"-XX0004-" + os.urandom(6).hex().encode()
                handshake = m.Handshake(m.make_reserved(), torrent.info_hash, peer_id)
                try:
                    async with await anyio.connect_tcp("127.0.0.1", leecher.listen_port) as stream:
                        await stream.send(handshake.to_bytes())
                        # claim every piece, unchoke, then the random mix (blocks of garbage included)
                        full = m.Bitfield.from_indexes(range(torrent.num_pieces), torrent.num_pieces)
                        msgs = [full.to_bytes(), m.Unchoke().to_bytes()]
                        count = rng.randrange(1, 12)
                        msgs += [_random_message(rng, torrent.num_pieces) for _ in range(count)]
                        await stream.send(b"".join(msgs))
                        with anyio.move_on_after(0.2):
                            while await stream.receive():
                                pass
                except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                    pass
                assert leecher.state in (State.DOWNLOADING, State.SEEDING), seed
            with anyio.fail_after(60):
                await leecher.wait_completed()
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
