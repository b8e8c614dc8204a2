"""Pause and resume around completion, on a Session that is not running (no peers, no sockets)."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from torrent_engine.config import Config
from torrent_engine.errors import StorageError
from torrent_engine.session import Session
from torrent_engine.session.state_table import State
from torrent_engine.storage.create import create_torrent

pytestmark = pytest.mark.anyio


async def test_last_piece_verified_while_paused_completes_on_resume(tmp_path: Path) -> None:
    """The last piece's hash check finishes after pause(): resume() finds the torrent complete,
    and it must count as completed (event, wait_completed), not only look like seeding."""
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "a").write_bytes(b"x" * 100_000)
    torrent = create_torrent(tmp_path / "p", piece_length=32 * 1024, version="v1")
    cfg = Config(listen_host="127.0.0.1", listen_port=0, dht_enabled=False, port_mapping=False,
                 lsd_enabled=False,
                 tracker_enabled=False)
    completed_event = anyio.Event()
    with anyio.fail_after(10):
        async with Session(torrent, tmp_path / "dl", config=cfg) as s:  # no data, no peers
            s.events.subscribe("session.completed", lambda e: completed_event.set())
            await s.wait_ready()
            assert s.state is State.DOWNLOADING
            for index in range(torrent.num_pieces - 1):
                await s.pieces.passed(index)
            await s.pause()
            await s.pieces.passed(torrent.num_pieces - 1)  # its verification was already under way
            assert s.state is State.PAUSED
            await s.resume()  # (completing runs in the session's task group, not in the caller)
            await s.wait_completed()
            assert s.state is State.SEEDING
            await completed_event.wait()


async def test_a_magnet_paused_before_it_runs_stays_paused(tmp_path: Path) -> None:
    """E.g. a magnet paused by the user before its session runs: when it runs it must stay
    paused, not start fetching the metadata."""
    from torrent_engine.formats.magnet import parse_magnet

    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "a").write_bytes(b"x" * 100_000)
    torrent = create_torrent(tmp_path / "p", piece_length=32 * 1024, version="v1")
    cfg = Config(listen_host="127.0.0.1", listen_port=0, dht_enabled=False, port_mapping=False,
                 lsd_enabled=False,
                 tracker_enabled=False)
    s = Session(parse_magnet(torrent.magnet_uri()), tmp_path / "dl", config=cfg)
    await s.pause()
    with anyio.fail_after(10):
        async with s:
            assert s.state is State.PAUSED
            await s.resume()
            assert s.state is State.DOWNLOADING_METADATA


async def test_stopping_a_session_that_never_ran_ends_its_waiters(tmp_path: Path) -> None:
    """E.g. a torrent removed from a TorrentManager before its session ran: wait_completed()
    raises instead of waiting forever, and the session says it stopped."""
    from torrent_engine.errors import SessionError

    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "a").write_bytes(b"x" * 100_000)
    torrent = create_torrent(tmp_path / "p", piece_length=32 * 1024, version="v1")
    s = Session(torrent, tmp_path / "dl", config=Config(dht_enabled=False, port_mapping=False,
                                                        lsd_enabled=False))
    outcome: list[str] = []

    async def waiter() -> None:
        try:
            await s.wait_completed()
        except SessionError:
            outcome.append("ended")

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            await anyio.lowlevel.checkpoint()
            await s.stop()
    assert outcome == ["ended"]
    assert s.state is State.STOPPED and s.finished


async def test_a_pause_of_a_session_that_just_failed_does_nothing(tmp_path: Path) -> None:
    """The session failed (its disk), its run not ended yet: a pause then raised ``SessionError``
    ("illegal session transition error -> paused"), and a job service's pause with it, untyped
    (a 500 in the API). Found by tests/fuzz/test_jobs_stateful.py: a resume and a pause at once
    of a job whose files are missing (the resumed session fails at once). The failed session is
    left as it is."""
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "a").write_bytes(b"x" * 100_000)
    torrent = create_torrent(tmp_path / "p", piece_length=32 * 1024, version="v1")
    cfg = Config(listen_host="127.0.0.1", listen_port=0, dht_enabled=False, port_mapping=False,
                 lsd_enabled=False, tracker_enabled=False)
    with anyio.fail_after(10):
        async with Session(torrent, tmp_path / "dl", config=cfg) as s:  # no data, no peers
            await s.wait_ready()
            s._life.fail(StorageError("the disk is gone"))
            assert s.state is State.ERROR
            await s.pause()
            assert s.state is State.ERROR and s.error == "the disk is gone"
