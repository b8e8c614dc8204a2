"""What ``TorrentManager`` promises: one session per info-hash, every torrent started as it is
added (no queue: the job service's is the one), remove with and without the files, persistence
in the state directory (nothing reloaded of its own), nothing left running at exit, and every
session's events on the manager's bus. Real sessions over 127.0.0.1, no DHT."""

from __future__ import annotations

import errno
import functools
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
from torrent_engine.errors import SessionError, StorageError
from torrent_engine.formats.magnet import parse_magnet
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.session import Session
from torrent_engine.session.state_table import State
from torrent_engine.storage.kept import MetainfoStoreError
from torrent_engine.storage.resume import ResumeData, save_resume

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
        assert manager.saved_metainfo_bytes(torrent.info_hash) == torrent.to_bytes()
        assert manager.saved_resume(torrent.info_hash) is not None and not resume.exists()  # (a row)
        kept = frozenset({torrent.info_hash.hex()})
        assert manager.saved_torrents() == SavedTorrents(metainfo=kept, resume=kept)
        await manager.remove(session)
        assert session.finished and manager.get(torrent.info_hash) is None
        assert manager.saved_metainfo_bytes(torrent.info_hash) is None
        assert manager.saved_resume(torrent.info_hash) is None
        assert (payload / "a.bin").is_file() and (payload / "sub" / "b.bin").is_file()  # data kept

        session = await manager.add(torrent, tmp_path / "data")  # it can be added again
        with anyio.fail_after(20):
            await session.wait_ready()
        await manager.remove(torrent.info_hash.hex(), delete_files=True)
        assert not (payload / "a.bin").exists() and not (payload / "sub").exists()
        assert manager.saved_metainfo_bytes(torrent.info_hash) is None
        assert manager.saved_resume(torrent.info_hash) is None and manager.saved_torrents().keys() == []
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


async def test_resume_data_is_a_row_and_a_file_of_an_earlier_version_is_read_until_the_first_save(
        tmp_path: Path) -> None:
    """A session under a manager keeps its resume data as a row of the store, no file;
    ``saved_resume`` reads it, and a session started again trusts it. A resume file an earlier
    version wrote is read (and trusted) until a save replaces it by a row (one fact, one place);
    ``forget_resume`` forgets the row."""
    _, complete = payload_and_torrent(tmp_path / "data", name="complete", seed=1)
    cfg = loopback_config(state_dir=tmp_path / "state")
    resume = tmp_path / "state" / "torrents" / f"{complete.info_hash.hex()}.resume"
    async with TorrentManager(cfg) as manager:
        first = await manager.add(complete, tmp_path / "data", paused=True)
        with anyio.fail_after(20):
            await first.wait_ready()
    assert not resume.exists()
    async with TorrentManager(cfg) as manager:
        assert manager.kept is not None and manager.kept.resume_keys() == {complete.info_hash}
        data = manager.saved_resume(complete.info_hash)
        assert data is not None and data.num_pieces == complete.num_pieces and data.files
        saved = manager.saved_metainfo(complete.info_hash)
        assert saved is not None
        again = await manager.add_saved(saved, tmp_path / "data", paused=True)
        with anyio.fail_after(20):
            await again.wait_ready()
        assert not again.rechecked and len(again.have) == complete.num_pieces  # (the row trusted)
        await manager.unload(complete.info_hash)
        save_resume(resume, data)  # (as an earlier version kept it)
        manager.kept.delete_resume(complete.info_hash)
    async with TorrentManager(cfg) as manager:
        assert manager.kept is not None and manager.kept.resume_keys() == set()
        assert manager.saved_resume(complete.info_hash) == data
        assert manager.saved_torrents().resume == frozenset({complete.info_hash.hex()})
        again = await manager.add_saved(saved, tmp_path / "data", paused=True)
        with anyio.fail_after(20):
            await again.wait_ready()
        assert not again.rechecked and len(again.have) == complete.num_pieces  # (the file trusted)
        await manager.unload(complete.info_hash)
        await manager.keep_resume(complete.info_hash, data)  # (a save: a row, the file gone)
        assert not resume.exists() and manager.kept.resume_keys() == {complete.info_hash}
        manager.forget_resume(complete.info_hash)
        assert manager.saved_resume(complete.info_hash) is None
        assert manager.saved_torrents().resume == frozenset()


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


@pytest.mark.timeout(60)
async def test_an_add_made_while_the_manager_stops_starts_no_session(tmp_path: Path) -> None:
    # (a job service's resume or move racing its stop: the session it started ran on, and the
    # manager's exit waited for it for ever)
    _, torrent = payload_and_torrent(tmp_path / "seed")
    _, other = payload_and_torrent(tmp_path / "seed", name="other", seed=2)
    tasks = task_count()
    answers: list[str] = []
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg, TorrentManager(loopback_config()) as manager:
            first = await manager.add(torrent, tmp_path / "seed")
            stop, added = first.stop, anyio.Event()

            async def add_other() -> None:
                try:
                    answers.append((await manager.add(other, tmp_path / "seed")).name)
                except SessionError as exc:
                    answers.append(str(exc))
                finally:
                    added.set()

            async def stop_once_the_other_is_asked() -> None:  # (the exit stops this one first)
                tg.start_soon(add_other)
                await added.wait()
                await stop()

            first.stop = stop_once_the_other_is_asked  # type: ignore[method-assign]
    assert answers == ["TorrentManager is stopping"]
    assert manager.sessions == [] and first.finished
    assert task_count() == tasks


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


def _resume(tmp_path: Path, key: bytes, pieces: int) -> ResumeData:
    """Resume data of torrent ``key`` with ``pieces`` bytes of pieces had (8 pieces a byte)."""
    return ResumeData(info_hash=key, save_path=str(tmp_path), have=b"\xff" * pieces, num_pieces=8 * pieces)


def _group_sizes(monkeypatch: pytest.MonkeyPatch, store: object, name: str) -> list[int]:
    """How many items each call of the store's method ``name`` is given from now on (each call:
    one transaction)."""
    sizes: list[int] = []
    real = getattr(store, name)

    def counted(items: list[object]) -> object:
        sizes.append(len(items))
        return real(items)

    monkeypatch.setattr(store, name, counted)
    return sizes


async def test_resume_saves_asked_together_are_one_transaction_and_a_first_record_never_hides_a_save(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The resume saves asked while a group is written are the next group, one transaction (a
    thousand downloads that complete together write a few groups, not a file each). An add's
    first record (``unless_kept``) is dropped when the torrent's resume data is kept already,
    in the store, in the same group, or as a file of an earlier version."""
    cfg = loopback_config(state_dir=tmp_path / "state")
    keys = [bytes([i]) * 20 for i in range(40)]

    data = functools.partial(_resume, tmp_path)

    async with TorrentManager(cfg) as manager:
        assert manager.kept is not None
        groups = _group_sizes(monkeypatch, manager.kept, "put_resume_many")
        async with anyio.create_task_group() as tg:
            for key in keys:
                tg.start_soon(manager.keep_resume, key, data(key, 1))
        assert sum(groups) == 40 and len(groups) <= 3, groups
        assert all(manager.saved_resume(key) == data(key, 1) for key in keys)

        saved, fresh, in_a_file = bytes([100]) * 20, bytes([101]) * 20, bytes([102]) * 20
        legacy = tmp_path / "state" / "torrents" / f"{in_a_file.hex()}.resume"
        save_resume(legacy, data(in_a_file, 3))
        groups.clear()
        async with anyio.create_task_group() as tg:
            tg.start_soon(manager.keep_resume, keys[0], data(keys[0], 2))  # (in its thread meanwhile:)
            await anyio.sleep(0)
            tg.start_soon(manager.keep_resume, saved, data(saved, 2))  # the next group, in order
            tg.start_soon(functools.partial(manager.keep_resume, saved, data(saved, 0), unless_kept=True))
            tg.start_soon(functools.partial(manager.keep_resume, fresh, data(fresh, 0), unless_kept=True))
            tg.start_soon(functools.partial(manager.keep_resume, keys[1], data(keys[1], 0), unless_kept=True))
            tg.start_soon(functools.partial(manager.keep_resume, in_a_file, data(in_a_file, 0),
                                            unless_kept=True))
        assert groups == [1, 2], groups  # (saved's save and fresh's first record)
        assert manager.saved_resume(saved) == data(saved, 2) and manager.saved_resume(fresh) == data(fresh, 0)
        assert manager.saved_resume(keys[1]) == data(keys[1], 1)
        assert manager.saved_resume(in_a_file) == data(in_a_file, 3) and legacy.is_file()


async def test_resume_data_dropped_together_is_one_transaction_in_order_with_the_saves(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``drop_resume`` (a recheck of many torrents without a session): the removals asked while a
    group is written are one transaction with the saves of that group, each torrent's last word
    winning (a save after its removal keeps the save; an add's first record after a removal is
    written: none is kept then)."""
    cfg = loopback_config(state_dir=tmp_path / "state")
    keys = [bytes([i]) * 20 for i in range(30)]

    data = functools.partial(_resume, tmp_path)

    async with TorrentManager(cfg) as manager:
        assert manager.kept is not None
        async with anyio.create_task_group() as tg:
            for key in keys:
                tg.start_soon(manager.keep_resume, key, data(key, 1))
        removals = _group_sizes(monkeypatch, manager.kept, "delete_resume_many")
        async with anyio.create_task_group() as tg:
            for key in keys[:20]:
                tg.start_soon(manager.drop_resume, key)
        assert sum(removals) == 20 and len(removals) <= 3, removals
        assert all(manager.saved_resume(key) is None for key in keys[:20])
        assert all(manager.saved_resume(key) == data(key, 1) for key in keys[20:])
        async with anyio.create_task_group() as tg:
            tg.start_soon(manager.drop_resume, keys[20])
            tg.start_soon(manager.keep_resume, keys[20], data(keys[20], 2))  # (after: kept)
            tg.start_soon(manager.keep_resume, keys[21], data(keys[21], 2))
            tg.start_soon(manager.drop_resume, keys[21])  # (after: dropped)
            tg.start_soon(manager.drop_resume, keys[22])
            tg.start_soon(functools.partial(manager.keep_resume, keys[22], data(keys[22], 0),
                                            unless_kept=True))
        assert manager.saved_resume(keys[20]) == data(keys[20], 2) and manager.saved_resume(keys[21]) is None
        assert manager.saved_resume(keys[22]) == data(keys[22], 0)


async def test_saved_torrents_dropped_together_are_one_transaction(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``drop_saved`` (a removal of many torrents without a session): the saved metainfo and
    resume data of the torrents asked while a group is removed go in one transaction; a torrent
    with a session is refused."""
    from torrent_engine.errors import SessionError

    _, complete = payload_and_torrent(tmp_path / "data", name="complete", seed=1)
    cfg = loopback_config(state_dir=tmp_path / "state")
    keys = [bytes([i]) * 20 for i in range(20)]
    async with TorrentManager(cfg) as manager:
        assert manager.kept is not None
        manager.kept.put_many([(key, b"d4:infod4:name1:xee") for key in keys])
        async with anyio.create_task_group() as tg:
            for key in keys:
                tg.start_soon(manager.keep_resume, key, ResumeData(info_hash=key, save_path=str(tmp_path),
                                                                   have=b"\xff", num_pieces=8))
        groups = _group_sizes(monkeypatch, manager.kept, "delete_many")
        async with anyio.create_task_group() as tg:
            for key in keys:
                tg.start_soon(manager.drop_saved, key)
        assert sum(groups) == 20 and len(groups) <= 3, groups
        assert all(manager.saved_metainfo_bytes(k) is None and manager.saved_resume(k) is None for k in keys)
        session = await manager.add(complete, tmp_path / "data")
        with pytest.raises(SessionError, match="has a session"):
            await manager.drop_saved(session.info_hash)


async def test_a_resume_save_that_cannot_be_written_says_why_and_the_session_goes_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    _, complete = payload_and_torrent(tmp_path / "data", name="complete", seed=1)
    async with TorrentManager(loopback_config(state_dir=tmp_path / "state")) as manager:
        assert manager.kept is not None

        def full(items: object) -> None:
            raise MetainfoStoreError(errno.ENOSPC, "metainfo store: database or disk is full")

        monkeypatch.setattr(manager.kept, "put_resume_many", full)
        session = await manager.add(complete, tmp_path / "data")
        with anyio.fail_after(20):
            await session.wait_ready()
        with pytest.raises(StorageError, match="disk is full"):
            await manager.keep_resume(complete.info_hash, session.checker.resume_data())
        await session.checker.save()  # (logged: the session goes on)
        assert session.state is State.SEEDING and manager.saved_resume(complete.info_hash) is None
    assert any("cannot save resume data" in r.getMessage() and "disk is full" in r.getMessage()
               for r in caplog.records)
    assert any("cannot keep the first resume data" in r.getMessage() for r in caplog.records)
