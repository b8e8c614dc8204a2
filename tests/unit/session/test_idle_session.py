"""An idle session (seeding, no peer) runs no timer: its tick and its dialer wait for something
to happen rather than waking every interval, so a thousand idle torrents cost nothing; a peer
arriving wakes the tick again. The periodic resume save writes only when something changed."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import anyio
import anyio.abc
import pytest

from torrent_engine.config import Config
from torrent_engine.engine.shared import SharedResources
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.session import Session
from torrent_engine.storage.create import create_torrent

pytestmark = pytest.mark.anyio


def seeding_torrent(tmp_path: Path) -> Torrent:
    payload = tmp_path / "data" / "p.bin"
    payload.parent.mkdir(parents=True)
    payload.write_bytes(os.urandom(64 * 1024))
    return create_torrent(payload, piece_length=16 * 1024, version="v1")


def config(**extra: object) -> Config:
    return Config(listen_host="127.0.0.1", listen_port=0, dht_enabled=False, port_mapping=False,
                  lsd_enabled=False, tracker_enabled=False, encryption="disable",
                  stats_interval=0.01, **extra)  # type: ignore[arg-type]


async def test_an_idle_seeding_session_stops_ticking_and_dialing(tmp_path: Path) -> None:
    torrent = seeding_torrent(tmp_path)
    with anyio.fail_after(30):
        async with Session(torrent, tmp_path / "data", config=config()) as s:
            await s.wait_ready()
            assert s.state.value == "seeding"
            await anyio.sleep(0.2)  # (the first ticks after start may run)
            ticks, rounds = s.tick.ticks, s.connector.rounds
            await anyio.sleep(2.5)  # 250 stats intervals, more than one dial round of 2 s
            assert s.tick.ticks == ticks
            assert s.connector.rounds == rounds


async def test_a_download_connected_to_every_address_it_knows_dials_no_more_until_one_leaves(
        tmp_path: Path) -> None:
    """Its dialer woke every 2 s to find nothing to dial (a thousand torrents, each connected to
    its one peer, a timer each); it ends until an address arrives or a peer leaves, and the
    address of a peer that left is dialed again after its back-off."""
    torrent = seeding_torrent(tmp_path)
    with anyio.fail_after(30):  # (two downloads, neither with data: connected, idle)
        async with Session(torrent, tmp_path / "a", config=config()) as a, \
                Session(torrent, tmp_path / "b", config=config()) as b:
            await a.wait_ready()
            await b.wait_ready()
            a.add_peer("127.0.0.1", b.listen_port)
            while not a.peers or not b.peers or a.connector.running:  # (a round after the dial)
                await anyio.sleep(0.01)
            rounds = a.connector.rounds
            await anyio.sleep(2.5)  # (more than one dial round of 2 s)
            assert a.connector.rounds == rounds and not a.connector.running
            b.peers[0].close("gone for the test")
            while a.peers:
                await anyio.sleep(0.01)
            while a.connector.rounds == rounds:  # (woken by the peer leaving)
                await anyio.sleep(0.01)
            while not a.peers:  # (dialed again after its back-off, 3 s)
                await anyio.sleep(0.05)


async def test_a_peer_arriving_wakes_the_tick(tmp_path: Path) -> None:
    torrent = seeding_torrent(tmp_path)
    with anyio.fail_after(30):
        async with Session(torrent, tmp_path / "data", config=config()) as s:
            await s.wait_ready()
            await anyio.sleep(0.2)
            ticks = s.tick.ticks
            stream = await anyio.connect_tcp("127.0.0.1", s.listen_port)
            async with stream:
                await stream.send(b"\x13BitTorrent protocol" + bytes(8) + torrent.info_hash
                                  + b"-XX0001-" + bytes(12))
                while s.status().peers == 0:
                    await anyio.sleep(0.01)
                while s.tick.ticks < ticks + 3:  # ticking again (bounded by fail_after)
                    await anyio.sleep(0.01)


async def test_periodic_resume_save_writes_only_what_changed(tmp_path: Path) -> None:
    torrent = seeding_torrent(tmp_path)
    resume_path = tmp_path / "state" / "t.resume"
    with anyio.fail_after(30):
        async with Session(torrent, tmp_path / "data", config=config(), resume_path=resume_path) as s:
            await s.wait_ready()
            assert s.checker.unsaved()  # no resume file yet
            await s.checker.save()
            assert not s.checker.unsaved()
            s.uploaded += 1
            assert s.checker.unsaved()
        # started again over good resume data: nothing to save until something changes
        async with Session(torrent, tmp_path / "data", config=config(), resume_path=resume_path) as s:
            await s.wait_ready()
            assert not s.checker.rechecked
            assert not s.checker.unsaved()


async def test_what_the_check_found_is_saved_at_once_not_a_save_interval_later(tmp_path: Path) -> None:
    """A thousand torrents added at once each saved their resume data a minute after their check,
    in the same second; now each saves once its check is over (then sleeps: nothing changes)."""
    from torrent_engine.storage.resume import load_resume

    torrent = seeding_torrent(tmp_path)
    resume = tmp_path / "state" / "t.resume"
    resume.parent.mkdir()
    with anyio.fail_after(30):
        async with Session(torrent, tmp_path / "data", resume_path=resume,
                           config=config(resume_save_interval=3600.0)) as s:
            await s.wait_ready()
            while load_resume(resume) is None or s.tick.ticks < 1:  # (bounded by fail_after)
                await anyio.sleep(0.01)
            data = load_resume(resume)
            assert data is not None and data.have == s.picker.have.to_bytes()


def _session_tasks(before: set[asyncio.Task[object]]) -> list[str]:
    """The tasks started since ``before`` (the session's: the shared services run already), by
    the name anyio gives a task (its function's)."""
    return sorted(t.get_name().rpartition(".")[0].rpartition(".")[2] + "." + t.get_name().rpartition(".")[2]
                  for t in asyncio.all_tasks() - before if not t.done())


async def _read_message(stream: anyio.abc.ByteStream, buffer: bytearray) -> bytes:
    while len(buffer) < 4 or len(buffer) < 4 + int.from_bytes(buffer[:4], "big"):
        buffer += await stream.receive()
    n = int.from_bytes(buffer[:4], "big")
    msg = bytes(buffer[4:4 + n])
    del buffer[:4 + n]
    return msg


async def test_an_idle_seeding_session_holds_one_task_and_a_peer_brings_its_loops_back(
        tmp_path: Path) -> None:
    """Ten thousand idle seeding torrents in one daemon: each is its run's one task, not a tick,
    a dialer and a choker parked on events besides, and the engine's clock sleeps for none of
    them. A peer connecting and asking for a block starts them again and is served."""
    torrent = seeding_torrent(tmp_path)
    payload = (tmp_path / "data" / "p.bin").read_bytes()
    with anyio.fail_after(30):
        async with SharedResources(config()) as shared:
            await shared.acquire()  # (the listener and the shared services run before the session)
            try:
                before = asyncio.all_tasks()
                async with Session(torrent, tmp_path / "data", config=config(), shared=shared) as s:
                    await s.wait_ready()
                    assert s.state.value == "seeding"
                    await anyio.sleep(0.5)  # (the first ticks after the check, the resume save)
                    assert _session_tasks(before) == ["Life.run"]

                    stream = await anyio.connect_tcp("127.0.0.1", s.listen_port)
                    async with stream:
                        await stream.send(b"\x13BitTorrent protocol" + bytes(8) + torrent.info_hash
                                          + b"-XX0001-" + bytes(12))
                        buffer = bytearray()
                        while len(buffer) < 68:
                            buffer += await stream.receive()
                        del buffer[:68]
                        await stream.send((1).to_bytes(4, "big") + bytes([2]))  # interested
                        while (msg := await _read_message(stream, buffer))[:1] != bytes([1]):
                            pass  # (its bitfield first) ... until it unchokes us
                        assert "Uploader.choker_loop" in _session_tasks(before)
                        # its tick is in the engine clock's round: the clock's one task, no tick
                        # task of its own
                        assert s.tick.running and "EngineClock._run" in _session_tasks(before)
                        assert not any(t.startswith("SessionTick.") for t in _session_tasks(before))
                        await stream.send((13).to_bytes(4, "big") + bytes([6]) + (1).to_bytes(4, "big")
                                          + (0).to_bytes(4, "big") + (16384).to_bytes(4, "big"))
                        while (msg := await _read_message(stream, buffer))[:1] != bytes([7]):
                            pass
                        assert msg[9:] == payload[16384:32768]
                    while s.status().peers:
                        await anyio.sleep(0.01)
                    # idle again, the engine's clock too (nobody wants it): bounded by fail_after
                    while _session_tasks(before) != ["Life.run"]:
                        await anyio.sleep(0.01)
            finally:
                await shared.release()
