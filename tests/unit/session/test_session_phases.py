"""What a session holds in each phase (``session.phases``): a magnet before its metadata has no
torrent, picker or files; a torrent's picker outlives its phases; files are open only while it
runs; the swarm exists only while live (or while a magnet's fetch is not paused)."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import pytest

from torrent_engine.config import Config
from torrent_engine.errors import SessionError, StorageError
from torrent_engine.formats.layout import TorrentLayout
from torrent_engine.formats.magnet import parse_magnet
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.session import Session
from torrent_engine.session.phases import Checking, FetchingMetadata, Live, Loaded, Opened, Paused, Phase
from torrent_engine.session.state_table import State
from torrent_engine.storage import PieceStorage, Storage
from torrent_engine.storage.create import create_torrent

pytestmark = pytest.mark.anyio


def config() -> Config:
    return Config(listen_host="127.0.0.1", listen_port=0, dht_enabled=False, port_mapping=False,
                  lsd_enabled=False, tracker_enabled=False, encryption="disable")


def make_torrent(tmp_path: Path, *, size: int = 100_000) -> Torrent:
    payload = tmp_path / "seed" / "a.bin"
    payload.parent.mkdir(parents=True, exist_ok=True)
    payload.write_bytes(os.urandom(size))
    return create_torrent(payload, piece_length=32 * 1024, version="v1")


async def until(check: object) -> None:
    """Let the session's tasks run until ``check()`` holds (the caller bounds it with fail_after)."""
    while not check():  # type: ignore[operator]
        await anyio.sleep(0.01)


class PhaseAtCheck:
    """A storage factory (``Session(storage=...)``) noting the session's phase when the checker
    first asks where the files are."""

    def __init__(self) -> None:
        self.session: Session | None = None
        self.phases: list[Phase] = []
        self.opened: list[PieceStorage] = []

    def __call__(self, torrent: TorrentLayout, save_path: Path) -> PieceStorage:
        factory = self

        class Noting(Storage):
            def file_path(self, file_index: int) -> Path | None:
                if not factory.phases and factory.session is not None:
                    factory.phases.append(factory.session.phase)
                return super().file_path(file_index)

        storage = Noting(torrent, save_path)
        self.opened.append(storage)
        return storage


async def test_a_magnet_before_its_metadata_holds_no_torrent_picker_or_files(tmp_path: Path) -> None:
    torrent = make_torrent(tmp_path)
    s = Session(parse_magnet(torrent.magnet_uri()), tmp_path / "dl", config=config())
    assert isinstance(s.phase, FetchingMetadata) and not isinstance(s.phase, Loaded)
    assert not s.has_metadata
    for part in ("torrent", "picker", "parts", "pieces", "uploader", "layers", "webseeds"):
        with pytest.raises(SessionError, match="metadata"):
            getattr(s, part)
    with pytest.raises(SessionError, match="metadata"):
        s.set_file_priorities([1])
    with pytest.raises(SessionError, match="metadata"):
        s.set_sequential(True)
    assert len(s.have) == 0 and s.hash_failures == 0 and s.web_seeds == [] and s.file_priorities == []
    st = s.status()
    assert st.num_pieces == 0 and st.progress == 0.0 and st.total_wanted == 0

    with anyio.fail_after(10):
        async with s:  # no peer has the metadata: it stays in the fetch
            assert s.state is State.DOWNLOADING_METADATA
            phase = s.phase
            assert isinstance(phase, FetchingMetadata)
            await until(lambda: phase.swarm is not None)
            await s.pause()
            await until(lambda: phase.swarm is None)  # a paused fetch has no swarm
            assert s.phase is phase and s.state is State.PAUSED
            await s.resume()
            await until(lambda: phase.swarm is not None)
            assert s.state is State.DOWNLOADING_METADATA
        assert s.phase is phase and phase.swarm is None and not s.has_metadata


async def test_a_torrent_goes_loaded_checking_live_paused_live_loaded(tmp_path: Path) -> None:
    """A download with no peer: the files open for the check, the swarm comes and goes with
    pause and resume, and a stop closes the files; the picker is the same object throughout."""
    torrent = make_torrent(tmp_path)
    factory = PhaseAtCheck()
    s = Session(torrent, tmp_path / "dl", config=config(), storage=factory)
    factory.session = s
    loaded = s.phase
    assert type(loaded) is Loaded  # the torrent is known, its files are not open
    picker = s.picker
    assert len(s.have) == 0 and s.status().num_pieces == torrent.num_pieces  # nothing checked yet
    with anyio.fail_after(10):
        async with s:
            await s.wait_ready()
            assert [type(p) for p in factory.phases] == [Checking]
            await until(lambda: isinstance(s.phase, Live))
            live = s.phase
            assert isinstance(live, Live) and s.state is State.DOWNLOADING
            assert live.parts is loaded.parts and live.parts.picker is picker
            assert live.storage is factory.opened[-1]

            await s.pause()
            await until(lambda: isinstance(s.phase, Paused))
            paused = s.phase
            assert isinstance(paused, Paused) and not isinstance(paused, Live)  # no swarm
            assert paused.storage is live.storage and paused.parts.picker is picker  # files and picker kept
            assert live.swarm.scope.cancel_called  # (pause cancelled the old swarm)

            await s.resume()
            await until(lambda: isinstance(s.phase, Live))
            again = s.phase
            assert isinstance(again, Live) and again.swarm is not live.swarm  # a new swarm
            assert s.state is State.DOWNLOADING
    assert type(s.phase) is Loaded and not isinstance(s.phase, Opened)  # files closed
    assert s.phase.parts is loaded.parts and s.picker is picker
    assert s.state is State.STOPPED


async def test_complete_data_goes_checking_then_live_seeding(tmp_path: Path) -> None:
    torrent = make_torrent(tmp_path)
    factory = PhaseAtCheck()
    s = Session(torrent, tmp_path / "seed", config=config(), storage=factory)
    factory.session = s
    with anyio.fail_after(10):
        async with s:
            await s.wait_ready()
            assert [type(p) for p in factory.phases] == [Checking]
            assert s.state is State.SEEDING and len(s.have) == torrent.num_pieces
            await until(lambda: isinstance(s.phase, Live))


async def test_complete_says_what_the_status_says_without_making_one(tmp_path: Path) -> None:
    """``Session.complete`` (asked of every live job each second) is ``status().progress`` at
    1.0: not for a magnet before its metadata, nor a download that lacks a piece; yes for a
    seed and for a download whose files are all deselected (nothing wanted is missing)."""
    torrent = make_torrent(tmp_path)

    def agrees(s: Session) -> bool:
        return s.complete is (s.status().progress >= 1.0)

    magnet = Session(parse_magnet(torrent.magnet_uri()), tmp_path / "dl", config=config())
    assert not magnet.complete and agrees(magnet)
    with anyio.fail_after(10):
        async with Session(torrent, tmp_path / "seed", config=config()) as seed:
            await seed.wait_ready()
            assert seed.complete and agrees(seed)
        async with Session(torrent, tmp_path / "dl", config=config()) as leech:
            await leech.wait_ready()
            assert not leech.complete and agrees(leech)
            leech.set_file_priorities([0])
            assert leech.complete and agrees(leech)
            leech.set_file_priorities([1])
            assert not leech.complete and agrees(leech)


async def test_a_run_that_fails_closes_its_files_and_keeps_the_picker(tmp_path: Path) -> None:
    """A disk error while checking: error state, the files are closed (back to ``Loaded``)."""
    torrent = make_torrent(tmp_path)
    closed: list[bool] = []

    class FailingDisk(Storage):
        def file_path(self, file_index: int) -> Path | None:
            raise StorageError("disk gone")

        async def close(self) -> None:
            closed.append(True)
            await super().close()

    def failing(layout: TorrentLayout, save_path: Path) -> PieceStorage:
        return FailingDisk(layout, save_path)

    s = Session(torrent, tmp_path / "seed", config=config(), storage=failing)
    picker = s.picker
    with anyio.fail_after(10):
        async with s:
            await s.wait_ready()  # (returns: the session ended)
            assert s.finished and "disk gone" in s.status().error
    assert closed == [True] and type(s.phase) is Loaded and s.picker is picker
    assert s.state is State.STOPPED


async def test_a_session_started_paused_checks_then_waits_in_paused(tmp_path: Path) -> None:
    """Restored paused (e.g. by the manager): the files are checked, but no swarm starts until
    resume(), which finds the data complete and seeds."""
    torrent = make_torrent(tmp_path)
    factory = PhaseAtCheck()
    s = Session(torrent, tmp_path / "seed", config=config(), storage=factory, paused=True)
    factory.session = s
    with anyio.fail_after(10):
        async with s:
            await s.wait_ready()
            assert [type(p) for p in factory.phases] == [Checking]
            assert s.state is State.PAUSED and len(s.have) == torrent.num_pieces
            await until(lambda: isinstance(s.phase, Paused))
            assert not isinstance(s.phase, Live)
            await s.resume()
            await until(lambda: isinstance(s.phase, Live))
            assert s.state is State.SEEDING


@pytest.mark.parametrize("then_resumed", [False, True])
async def test_a_session_resumed_to_pause_after_its_check_pauses_once_checked(
        tmp_path: Path, then_resumed: bool) -> None:
    """``resume(pause_after_check=True)`` before the start-up check: the session runs until it
    is checked, then pauses with no swarm started, as one added paused does (for an owner that
    decides once the data is checked, e.g. a job queue for a magnet whose check follows its
    metadata); a plain ``resume()`` before then cancels it."""
    torrent = make_torrent(tmp_path)
    s = Session(torrent, tmp_path / "seed", config=config(), paused=True)
    await s.resume(pause_after_check=True)
    assert s.pauses_after_check and not s.paused
    if then_resumed:
        await s.resume()
        assert not s.pauses_after_check
    with anyio.fail_after(10):
        async with s:
            await s.wait_ready()
            assert not s.pauses_after_check
            if then_resumed:
                await until(lambda: isinstance(s.phase, Live))
                assert s.state is State.SEEDING
                return
            assert s.state is State.PAUSED and len(s.have) == torrent.num_pieces
            await until(lambda: isinstance(s.phase, Paused))
            await s.resume()
            await until(lambda: isinstance(s.phase, Live))
            assert s.state is State.SEEDING
