"""What ``TorrentManager`` promises: one session per info-hash, every torrent started as it is
added (no queue: the job service's is the one), remove with and without the files, persistence
in the state directory (nothing reloaded of its own), nothing left running at exit, and every
session's events on the manager's bus. Real sessions over 127.0.0.1, no DHT."""

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
from torrent_engine.engine.manager import SavedTorrents, TorrentManager
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


async def test_the_manager_holds_no_torrent_back_whatever_the_download_slots(tmp_path: Path) -> None:
    """The manager is a registry of running sessions: it starts every torrent it is given, at
    once. Download slots are the job service's queue (``Config.max_active_downloads`` sets it),
    never a second queue in the manager that would hold sessions the jobs' queue did not."""
    torrents = [payload_and_torrent(tmp_path / "src", name=f"t{n}", seed=n)[1] for n in range(3)]
    # no peer has them: each download would run for ever
    async with TorrentManager(loopback_config(max_active_downloads=1)) as manager:
        sessions = [await manager.add(t, tmp_path / "dl") for t in torrents]
        await wait_for(lambda: all(s.state is State.DOWNLOADING for s in sessions))
        assert manager.sessions == sessions


async def test_remove_keeps_the_files_unless_asked_and_forgets_the_state_files(tmp_path: Path) -> None:
    payload, torrent = payload_and_torrent(tmp_path / "data")
    state = tmp_path / "state"
    resume = state / "torrents" / f"{torrent.info_hash.hex()}.resume"
    async with TorrentManager(loopback_config(state_dir=state)) as manager:
        session = await manager.add(torrent, tmp_path / "data")
        with anyio.fail_after(20):
            await session.wait_ready()
        assert manager.saved_metainfo_bytes(torrent.info_hash) == torrent.to_bytes() and resume.is_file()
        kept = frozenset({torrent.info_hash.hex()})
        assert manager.saved_torrents() == SavedTorrents(metainfo=kept, resume=kept)
        await manager.remove(session)
        assert session.finished and manager.get(torrent.info_hash) is None
        assert manager.saved_metainfo_bytes(torrent.info_hash) is None and not resume.exists()
        assert (payload / "a.bin").is_file() and (payload / "sub" / "b.bin").is_file()  # data kept

        session = await manager.add(torrent, tmp_path / "data")  # it can be added again
        with anyio.fail_after(20):
            await session.wait_ready()
        await manager.remove(torrent.info_hash.hex(), delete_files=True)
        assert not (payload / "a.bin").exists() and not (payload / "sub").exists()
        assert manager.saved_metainfo_bytes(torrent.info_hash) is None and not resume.exists()
        with pytest.raises(SessionError, match="no torrent"):
            await manager.remove(torrent.info_hash)


async def test_a_restart_starts_nothing_and_its_owner_adds_each_saved_torrent_again_with_its_word(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The manager reloads nothing of its own (which torrents exist, and whether paused, is its
    owner's record): entering it over a state folder starts no session; ``add_saved`` starts a
    saved torrent again from its resume data (no check), paused or not as the caller says
    whatever it was before, and writes no metainfo again. A removed torrent's are gone."""
    _, complete = payload_and_torrent(tmp_path / "data", name="complete", seed=1)
    _, gone = payload_and_torrent(tmp_path / "src", name="gone", seed=3)
    cfg = loopback_config(state_dir=tmp_path / "state")
    async with TorrentManager(cfg) as manager:
        first = await manager.add(complete, tmp_path / "data", paused=True)
        with anyio.fail_after(20):
            await first.wait_ready()
        assert first.rechecked  # first time: hashed from disk
        await manager.remove(await manager.add(gone, tmp_path / "dl"))
    async with TorrentManager(cfg) as manager:
        assert manager.kept is not None
        kept: list[object] = []
        real = manager.kept.put_many
        monkeypatch.setattr(manager.kept, "put_many", lambda items: (kept.append(items), real(items)))
        assert manager.sessions == [] and manager.saved() == [complete.info_hash]
        saved = manager.saved_metainfo(complete.info_hash)
        assert saved is not None and saved.info_hash == complete.info_hash
        again = await manager.add_saved(saved, tmp_path / "data", paused=False)
        with anyio.fail_after(20):
            await again.wait_ready()
        assert again.state is State.SEEDING and not again.rechecked  # (its resume data trusted)
        assert len(again.have) == complete.num_pieces
        assert manager.saved_metainfo(gone.info_hash) is None
    assert kept == []  # (no metainfo written again)


async def test_resume_data_kept_as_a_row_is_written_out_as_the_file_a_session_reads(tmp_path: Path) -> None:
    """``keep_resume_many`` (the job service's checks without a session) keeps resume data as a
    row and removes the older file; ``saved_resume`` reads either; entering again reads which
    torrents have a row, and a session started for one trusts it, from a file written out of
    it (the row then gone: one fact, one place); ``forget_resume`` forgets a row too."""
    _, complete = payload_and_torrent(tmp_path / "data", name="complete", seed=1)
    cfg = loopback_config(state_dir=tmp_path / "state")
    resume = tmp_path / "state" / "torrents" / f"{complete.info_hash.hex()}.resume"
    async with TorrentManager(cfg) as manager:
        first = await manager.add(complete, tmp_path / "data", paused=True)
        with anyio.fail_after(20):
            await first.wait_ready()
    async with TorrentManager(cfg) as manager:
        data = manager.saved_resume(complete.info_hash)
        assert data is not None and resume.is_file()
        manager.keep_resume_many([(complete.info_hash, data)])
        assert not resume.exists() and manager.saved_resume(complete.info_hash) == data
        assert manager.saved_torrents().resume == frozenset({complete.info_hash.hex()})
        manager.forget_resume(complete.info_hash)
        assert manager.saved_resume(complete.info_hash) is None
        assert manager.saved_torrents().resume == frozenset()
        manager.keep_resume_many([(complete.info_hash, data)])
    async with TorrentManager(cfg) as manager:
        assert manager.kept is not None and manager.kept.resume_keys() == {complete.info_hash}
        saved = manager.saved_metainfo(complete.info_hash)
        assert saved is not None
        again = await manager.add_saved(saved, tmp_path / "data")
        with anyio.fail_after(20):
            await again.wait_ready()
        assert not again.rechecked and len(again.have) == complete.num_pieces  # (the row trusted)
        assert resume.is_file() and manager.kept.resume_keys() == set()


async def test_a_torrent_added_again_in_a_later_run_goes_on_from_its_resume_data(tmp_path: Path) -> None:
    """A program that adds its torrent again each run (``te.download``, ``BackgroundDownload``
    with a state folder) goes on from what was verified; the next run's entering reloaded it,
    and the add was refused as "already added"."""
    _, complete = payload_and_torrent(tmp_path / "data", name="complete", seed=1)
    cfg = loopback_config(state_dir=tmp_path / "state")
    async with TorrentManager(cfg) as manager:
        with anyio.fail_after(20):
            await (await manager.add(complete, tmp_path / "data")).wait_ready()
    async with TorrentManager(cfg) as manager:
        again = await manager.add(complete, tmp_path / "data")
        with anyio.fail_after(20):
            await again.wait_ready()
        assert again.state is State.SEEDING and not again.rechecked and manager.sessions == [again]


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
