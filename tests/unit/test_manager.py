"""What ``TorrentManager`` promises: one session per info-hash, queueing of downloads, remove with
and without the files, persistence in the state directory and reload, nothing left running at
exit, and every session's events on the manager's bus. Real sessions over 127.0.0.1, no DHT."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from tests.integration.helpers import (
    loopback_config,
    make_payload,
    make_torrent,
    open_fds,
    same_files,
    task_count,
)
from torrent_engine import events as ev
from torrent_engine.engine.manager import TorrentManager
from torrent_engine.errors import SessionError
from torrent_engine.formats.magnet import parse_magnet
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.session import Session
from torrent_engine.session.state_table import State

pytestmark = pytest.mark.anyio

FILES = (("a.bin", 150_001), ("sub/b.bin", 40_000))


def payload_and_torrent(root: Path, name: str = "payload", seed: int = 1) -> tuple[Path, Torrent]:
    payload = make_payload(root, FILES, name=name, seed=seed)
    return payload, make_torrent(payload, version="v1")


async def wait_for(condition: Callable[[], bool], seconds: float = 20.0) -> None:
    with anyio.fail_after(seconds):
        while not condition():
            await anyio.sleep(0.02)


async def test_the_same_info_hash_twice_is_refused_and_the_first_session_runs_on(tmp_path: Path) -> None:
    payload, torrent = payload_and_torrent(tmp_path / "data")
    async with TorrentManager(loopback_config()) as manager:
        session = await manager.add(torrent, tmp_path / "data")
        with anyio.fail_after(20):
            await session.wait_ready()
        # the same torrent again, in every form add() takes: refused, whatever the save path
        for again in (torrent, torrent.to_bytes(), parse_magnet(torrent.magnet_uri()), torrent.magnet_uri()):
            with pytest.raises(SessionError, match="already added"):
                await manager.add(again, tmp_path / "elsewhere")
        assert manager.sessions == [session]
        assert manager.get(torrent.info_hash) is session and manager.get(torrent.info_hash.hex()) is session
        assert session.state is State.SEEDING and not session.finished
    assert not (tmp_path / "elsewhere").exists()


async def test_downloads_beyond_the_limit_wait_and_start_in_order_as_slots_free(tmp_path: Path) -> None:
    torrents = [payload_and_torrent(tmp_path / "src", name=f"t{n}", seed=n)[1] for n in range(3)]
    # no peer has them: each download would run for ever, so only the limit decides who runs
    async with TorrentManager(loopback_config(max_active_downloads=1)) as manager:
        a, b, c = [await manager.add(t, tmp_path / "dl") for t in torrents]
        assert manager.queued == [b, c]
        await wait_for(lambda: a.state is State.DOWNLOADING)
        assert b.state is State.QUEUED and c.state is State.QUEUED and manager.queued == [b, c]
        await manager.remove(a)
        await wait_for(lambda: b.state is State.DOWNLOADING)
        assert c.state is State.QUEUED and manager.queued == [c]
        await manager.remove(c)  # a queued torrent can be removed: it never ran
        assert manager.queued == [] and manager.sessions == [b]
        assert c.finished and c.status().state == State.STOPPED.value


async def test_seeding_and_paused_torrents_take_no_download_slot(tmp_path: Path) -> None:
    _, complete = payload_and_torrent(tmp_path / "data", name="complete", seed=1)
    _, paused = payload_and_torrent(tmp_path / "src", name="paused", seed=2)
    _, wanted = payload_and_torrent(tmp_path / "src", name="wanted", seed=3)
    async with TorrentManager(loopback_config(max_active_downloads=1)) as manager:
        seeding = await manager.add(complete, tmp_path / "data")
        with anyio.fail_after(20):
            await seeding.wait_ready()
        assert seeding.state is State.SEEDING
        held = await manager.add(paused, tmp_path / "dl", paused=True)
        await wait_for(lambda: held.state is State.PAUSED)
        running = await manager.add(wanted, tmp_path / "dl")
        assert manager.queued == []
        await wait_for(lambda: running.state is State.DOWNLOADING)


async def test_remove_keeps_the_files_unless_asked_and_forgets_the_state_files(tmp_path: Path) -> None:
    payload, torrent = payload_and_torrent(tmp_path / "data")
    state = tmp_path / "state"
    stored = [state / "torrents" / f"{torrent.info_hash.hex()}{s}" for s in (".torrent", ".resume")]
    async with TorrentManager(loopback_config(state_dir=state)) as manager:
        session = await manager.add(torrent, tmp_path / "data")
        with anyio.fail_after(20):
            await session.wait_ready()
        assert all(p.is_file() for p in stored)
        await manager.remove(session)
        assert session.finished and manager.get(torrent.info_hash) is None
        assert not any(p.exists() for p in stored)
        assert (payload / "a.bin").is_file() and (payload / "sub" / "b.bin").is_file()  # data kept

        session = await manager.add(torrent, tmp_path / "data")  # it can be added again
        with anyio.fail_after(20):
            await session.wait_ready()
        await manager.remove(torrent.info_hash.hex(), delete_files=True)
        assert not (payload / "a.bin").exists() and not (payload / "sub").exists()
        assert not any(p.exists() for p in stored)
        with pytest.raises(SessionError, match="no torrent"):
            await manager.remove(torrent.info_hash)


async def test_torrents_are_saved_in_the_state_dir_and_reloaded(tmp_path: Path) -> None:
    _, complete = payload_and_torrent(tmp_path / "data", name="complete", seed=1)
    _, held = payload_and_torrent(tmp_path / "src", name="held", seed=2)
    _, gone = payload_and_torrent(tmp_path / "src", name="gone", seed=3)
    cfg = loopback_config(state_dir=tmp_path / "state")
    async with TorrentManager(cfg) as manager:
        seeding = await manager.add(complete, tmp_path / "data")
        with anyio.fail_after(20):
            await seeding.wait_ready()
        assert seeding.rechecked  # first time: hashed from disk
        await manager.add(held, tmp_path / "dl", paused=True)
        await manager.remove(await manager.add(gone, tmp_path / "dl"))
    async with TorrentManager(cfg) as manager:
        hashes = sorted(s.info_hash for s in manager.sessions)
        assert hashes == sorted([complete.info_hash, held.info_hash])  # not the removed one
        again = manager.get(complete.info_hash)
        assert again is not None and again.save_path.resolve() == (tmp_path / "data").resolve()
        with anyio.fail_after(20):
            await again.wait_ready()
        assert again.state is State.SEEDING and not again.rechecked  # trusted its resume data
        assert len(again.have) == complete.num_pieces
        paused = manager.get(held.info_hash)
        assert paused is not None
        with anyio.fail_after(20):
            await paused.wait_ready()
        assert paused.state is State.PAUSED and paused.downloaded == 0


async def test_an_owner_that_keeps_its_own_records_starts_each_saved_torrent_again_with_its_word(
        tmp_path: Path) -> None:
    """``reload_saved=False``: entering reloads nothing; ``add_saved`` starts a saved torrent
    again from its resume data (no check), paused or not as the caller says whatever the resume
    data said, and writes no metainfo again."""
    _, complete = payload_and_torrent(tmp_path / "data", name="complete", seed=1)
    cfg = loopback_config(state_dir=tmp_path / "state")
    async with TorrentManager(cfg) as manager:
        first = await manager.add(complete, tmp_path / "data", paused=True)
        with anyio.fail_after(20):
            await first.wait_ready()
    metainfo = manager.saved_metainfo_path(complete.info_hash)
    assert metainfo is not None
    written = metainfo.stat().st_mtime_ns
    async with TorrentManager(cfg, reload_saved=False) as manager:
        assert manager.sessions == [] and manager.saved() == [complete.info_hash]
        again = await manager.add_saved(Torrent.load(metainfo), tmp_path / "data", paused=False)
        with anyio.fail_after(20):
            await again.wait_ready()
        assert again.state is State.SEEDING and not again.rechecked  # (its resume data trusted)
    assert metainfo.stat().st_mtime_ns == written


async def test_nothing_runs_and_no_file_stays_open_after_exit(tmp_path: Path) -> None:
    _, torrent = payload_and_torrent(tmp_path / "seed")
    _, other = payload_and_torrent(tmp_path / "seed", name="other", seed=2)
    tasks, fds = task_count(), open_fds()
    async with TorrentManager(loopback_config()) as seeds:
        for t in (torrent, other):
            await (await seeds.add(t, tmp_path / "seed")).wait_ready()
        port = seeds.shared.listen_port
        async with TorrentManager(loopback_config()) as leech:
            sessions = [await leech.add(t, tmp_path / "leech", peers=(("127.0.0.1", port),))
                        for t in (torrent, other)]
            assert leech.shared.count == 2 and leech.shared.running  # one SharedResources for both
            with anyio.fail_after(60):
                for s in sessions:
                    await s.wait_completed()
            await leech.remove(sessions[0])
            assert leech.shared.count == 1
        assert leech.shared.count == 0 and not leech.shared.running and leech.sessions == []
        assert all(s.finished for s in sessions)
    assert seeds.shared.count == 0 and not seeds.shared.running
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []
    assert task_count() == tasks
    assert open_fds() == fds


async def test_every_sessions_events_come_out_of_the_manager_until_it_is_removed(tmp_path: Path) -> None:
    _, first = payload_and_torrent(tmp_path / "data", name="first", seed=1)
    _, second = payload_and_torrent(tmp_path / "data", name="second", seed=2)
    heard: list[ev.Event] = []
    async with TorrentManager(loopback_config()) as manager:
        manager.events.subscribe("*", heard.append)
        sessions: list[Session] = []
        for t in (first, second):
            sessions.append(await manager.add(t, tmp_path / "data"))
            with anyio.fail_after(20):
                await sessions[-1].wait_ready()
        await wait_for(lambda: {(e.name, e.info_hash) for e in heard} >= {
            ("session.started", first.info_hash.hex()), ("session.started", second.info_hash.hex())})
        await manager.remove(sessions[0])
        stopped = ("session.stopped", first.info_hash.hex())
        await wait_for(lambda: stopped in {(e.name, e.info_hash) for e in heard})
        count = len(heard)
        # once removed, what its bus says is no longer the manager's; the other's still is
        sessions[0].events.publish(ev.PieceCompleted(info_hash=first.info_hash.hex(), index=0))
        sessions[1].events.publish(ev.PieceCompleted(info_hash=second.info_hash.hex(), index=0))
        await wait_for(lambda: any(e.name == "piece.completed" and e.info_hash == second.info_hash.hex()
                                   for e in heard[count:]))
        await anyio.sleep(0.05)
        assert not any(e.info_hash == first.info_hash.hex() for e in heard[count:])


async def test_a_pause_or_resume_is_in_the_resume_data_when_it_returns(tmp_path: Path) -> None:
    """Nothing else is written before a crash: the resume file says what ``pause``/``resume``
    did as soon as they return, before the check (the manager's placeholder) and after it."""
    from torrent_engine.storage.resume import load_resume

    _, torrent = payload_and_torrent(tmp_path / "src")
    cfg = loopback_config(state_dir=tmp_path / "state")
    resume_file = tmp_path / "state" / "torrents" / f"{torrent.info_hash.hex()}.resume"

    def stored_paused() -> bool:
        data = load_resume(resume_file)
        assert data is not None
        return data.paused

    async with TorrentManager(cfg) as manager:
        session = await manager.add(torrent, tmp_path / "dl", paused=True)
        assert stored_paused()
        await session.resume()
        assert not stored_paused() and not session.paused
        with anyio.fail_after(20):
            await session.wait_ready()
        await session.pause()
        assert stored_paused()
        await session.resume()
        assert not stored_paused()
