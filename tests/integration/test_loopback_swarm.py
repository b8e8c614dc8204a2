"""Two (or more) of our own sessions over 127.0.0.1: real sockets, hashing and files."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import pytest

from torrent_engine import events as ev
from torrent_engine.engine.manager import TorrentManager
from torrent_engine.engine.runtime import run
from torrent_engine.session import MAX_CONNECT_FAILURES, Session
from torrent_engine.session.state_table import State
from torrent_engine.storage.resume import load_resume

from .helpers import (
    add_again,
    keep_peers,
    loopback_config,
    make_payload,
    make_torrent,
    open_fds,
    same_files,
    task_count,
)

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("encryption", ["disable", "prefer", "require"])
async def test_seeder_to_leecher_identical_files(tmp_path: Path, encryption: str) -> None:
    payload = make_payload(tmp_path / "seed")
    torrent = make_torrent(payload)
    assert any(f.pad for f in torrent.files) and any(f.length == 0 for f in torrent.files)
    cfg = loopback_config(encryption=encryption)
    seen: list[ev.Event] = []
    async with Session(torrent, tmp_path / "seed", config=cfg) as seeder:
        await seeder.wait_ready()
        assert seeder.state is State.SEEDING  # found complete by the recheck
        async with Session(torrent, tmp_path / "leech", config=cfg,
                           peers=[("127.0.0.1", seeder.listen_port)]) as leecher:
            leecher.events.subscribe("*", seen.append)
            met = keep_peers(leecher)
            with anyio.fail_after(60):
                await leecher.wait_completed()
            assert leecher.state is State.SEEDING and met
            if encryption == "require":
                assert all(p.link.encrypted for p in met)
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []
    names = [e.name for e in seen]
    assert "peer.connected" in names and "session.completed" in names
    assert names.count("piece.completed") == torrent.num_pieces
    assert names[-1] == "session.stopped"


async def test_v2_only_torrent(tmp_path: Path) -> None:
    payload = make_payload(tmp_path / "seed", [("x.bin", 100_000), ("y/z.bin", 40_000)])
    torrent = make_torrent(payload, version="v2", piece_length=16 * 1024)
    cfg = loopback_config()
    async with Session(torrent, tmp_path / "seed", config=cfg) as seeder:
        await seeder.wait_ready()
        async with Session(torrent, tmp_path / "leech", config=cfg,
                           peers=[("127.0.0.1", seeder.listen_port)]) as leecher:
            with anyio.fail_after(60):
                await leecher.wait_completed()
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []


@pytest.mark.parametrize("piece_length", [20000, 1000, 3])
async def test_v1_piece_length_not_a_power_of_two(tmp_path: Path, piece_length: int) -> None:
    """Pieces that end in a block shorter than 16 KiB (or are shorter than one block)."""
    from tests.unit.torrent_factory import make_torrent as make_v1

    # (3-byte pieces of the same files would be 34 447 of them: 44 s on two cores, for nothing more)
    scale = 1 if piece_length >= 1000 else 100
    payload = make_payload(tmp_path / "seed", [("a.bin", 70_001 // scale), ("b/c.bin", 33_333 // scale),
                                              ("e.bin", 0), ("d.bin", 5)])
    torrent = make_v1([(tuple(p.relative_to(payload).parts), p.read_bytes())
                       for p in sorted(payload.rglob("*")) if p.is_file()], piece_length, name=payload.name)
    cfg = loopback_config()
    async with Session(torrent, tmp_path / "seed", config=cfg) as seeder:
        await seeder.wait_ready()
        assert seeder.state is State.SEEDING
        async with Session(torrent, tmp_path / "leech", config=cfg,
                           peers=[("127.0.0.1", seeder.listen_port)]) as leecher:
            with anyio.fail_after(60):
                await leecher.wait_completed()
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []


def assert_nothing_left(scenario: Callable[[], Awaitable[tuple[int, int, int, int]]]) -> None:
    """Run ``scenario`` (which returns tasks and fds counted before its sessions started and
    after they stopped) in a fresh loop, then wait for the threads to be back to what they
    were. The scenario runs its swarm twice and measures the second: the loop's first listener
    makes libuv reserve a spare fd (/dev/null) for good."""
    threads = threading.active_count()
    tasks_before, tasks_after, fds_before, fds_after = run(scenario)
    assert tasks_after == tasks_before
    assert fds_after == fds_before
    deadline = time.monotonic() + 10
    while threading.active_count() > threads and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threading.active_count() == threads, [t.name for t in threading.enumerate()]


def test_stop_leaves_no_task_socket_or_thread(tmp_path: Path) -> None:
    """Tasks and descriptors are counted inside the loop right after stop(); threads after the
    loop ends (anyio parks idle worker threads in a pool until then, and they hold nothing)."""
    payload = make_payload(tmp_path / "seed")
    torrent = make_torrent(payload)
    cfg = loopback_config()

    async def swarm(dest: str) -> tuple[int, int, int, int]:
        await anyio.sleep(0)
        tasks, fds = task_count(), open_fds()
        seeder = Session(torrent, tmp_path / "seed", config=cfg)
        await seeder.__aenter__()
        await seeder.wait_ready()
        leecher = Session(torrent, tmp_path / dest, config=cfg, peers=[("127.0.0.1", seeder.listen_port)])
        await leecher.__aenter__()
        with anyio.fail_after(60):
            await leecher.wait_completed()
        assert task_count() > tasks and open_fds() > fds
        await leecher.stop()
        await seeder.stop()
        assert seeder.state is State.STOPPED and leecher.state is State.STOPPED
        await anyio.sleep(0)
        return tasks, task_count(), fds, open_fds()

    async def scenario() -> tuple[int, int, int, int]:
        await swarm("warm")  # (libuv's spare fd, see assert_nothing_left)
        return await swarm("leech")

    assert_nothing_left(scenario)
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []


@pytest.mark.parametrize("transport", ["tcp", "utp"])
def test_stop_mid_transfer_leaves_no_task_socket_thread_or_open_file(tmp_path: Path, transport: str) -> None:
    """Both ends stopped while blocks are in flight, pieces are being hashed and written and
    requests are queued on both sides: nothing of either session is left behind. (Over TCP
    the connections run on the receive fast path, peer/protocol.py; over uTP on anyio streams.)"""
    payload = make_payload(tmp_path / "seed", [("big.bin", 6_000_000)])
    torrent = make_torrent(payload, piece_length=64 * 1024)
    # slow enough to stop it half-way
    seed_cfg = loopback_config(upload_rate_limit=2_000_000, transport=transport)

    async def swarm(dest: str) -> tuple[int, int, int, int]:
        await anyio.sleep(0)
        tasks, fds = task_count(), open_fds()
        seeder = Session(torrent, tmp_path / "seed", config=seed_cfg)
        await seeder.__aenter__()
        await seeder.wait_ready()
        leecher = Session(torrent, tmp_path / dest, config=loopback_config(transport=transport),
                          peers=[("127.0.0.1", seeder.listen_port)])
        await leecher.__aenter__()
        pieces = 0

        def count(event: object) -> None:
            nonlocal pieces
            pieces += 1

        leecher.events.subscribe("piece.completed", count)
        with anyio.fail_after(60):
            while pieces < 5:
                await anyio.sleep(0.01)
        assert leecher.status().progress < 0.9 and leecher.peers  # mid-transfer, connected
        assert all(p.link.transport == transport for p in leecher.context.peers.values())
        await leecher.stop()
        await seeder.stop()
        assert seeder.state is State.STOPPED and leecher.state is State.STOPPED
        await anyio.sleep(0)
        return tasks, task_count(), fds, open_fds()

    async def scenario() -> tuple[int, int, int, int]:
        await swarm("warm")  # (libuv's spare fd, see assert_nothing_left)
        return await swarm("leech")

    assert_nothing_left(scenario)


async def test_cancel_deletes_partial_files(tmp_path: Path) -> None:
    payload = make_payload(tmp_path / "seed", [("big.bin", 2_000_000), ("other/small.bin", 1000)])
    torrent = make_torrent(payload, piece_length=16 * 1024)
    (tmp_path / "leech").mkdir()
    (tmp_path / "leech" / "keep.txt").write_text("not ours")
    slow = loopback_config(upload_rate_limit=300_000)
    async with Session(torrent, tmp_path / "seed", config=slow) as seeder:
        await seeder.wait_ready()
        leecher = Session(torrent, tmp_path / "leech", config=loopback_config(),
                          peers=[("127.0.0.1", seeder.listen_port)])
        await leecher.__aenter__()
        try:
            # (hybrid: other/small.bin has a piece of its own, which may be the first to come)
            got_piece = anyio.Event()
            leecher.events.subscribe("piece.completed", lambda e: got_piece.set()
                                     if e.index * 16 * 1024 < 2_000_000 else None)
            with anyio.fail_after(30):
                await got_piece.wait()
            assert (tmp_path / "leech" / "payload" / "big.bin").exists()
            assert leecher.status().progress < 1.0
        finally:  # (a failure above must not leave the leecher's task groups open on this task)
            await leecher.cancel(delete_files=True)
        assert leecher.state is State.STOPPED
    assert sorted(os.listdir(tmp_path / "leech")) == ["keep.txt"]


async def test_pause_disconnects_and_resume_completes(tmp_path: Path) -> None:
    payload = make_payload(tmp_path / "seed", [("big.bin", 1_500_000), ("note.txt", 10)])
    torrent = make_torrent(payload, piece_length=16 * 1024)
    slow = loopback_config(upload_rate_limit=400_000)
    async with Session(torrent, tmp_path / "seed", config=slow) as seeder:
        await seeder.wait_ready()
        async with Session(torrent, tmp_path / "leech", config=loopback_config(),
                           peers=[("127.0.0.1", seeder.listen_port)]) as leecher:
            got_piece = anyio.Event()
            leecher.events.subscribe("piece.completed", lambda e: got_piece.set())
            with anyio.fail_after(30):
                await got_piece.wait()
            await leecher.pause()
            assert leecher.state is State.PAUSED
            with anyio.fail_after(10):
                while leecher.peers or seeder.peers:
                    await anyio.sleep(0.05)
            have = len(leecher.have)
            assert 0 < have < torrent.num_pieces
            with pytest.raises(Exception, match="resume"):
                await seeder.resume()  # not paused
            await leecher.resume()
            assert leecher.state is State.DOWNLOADING
            with anyio.fail_after(60):
                await leecher.wait_completed()
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []


async def test_manager_runs_two_torrents_and_both_added_again_start_without_recheck(tmp_path: Path) -> None:
    p1 = make_payload(tmp_path / "seed", name="one", seed=1)
    p2 = make_payload(tmp_path / "seed", [("solo.bin", 300_000), ("x", 3)], name="two", seed=2)
    t1, t2 = make_torrent(p1), make_torrent(p2)
    state = tmp_path / "state"
    async with TorrentManager(loopback_config(state_dir=state / "seed")) as seeds:
        s1 = await seeds.add(t1, tmp_path / "seed")
        s2 = await seeds.add(t2, tmp_path / "seed")
        await s1.wait_ready()
        await s2.wait_ready()
        assert s1.state is State.SEEDING and s2.state is State.SEEDING
        assert s1.listen_port == s2.listen_port  # one listen socket routes both torrents
        port = s1.listen_port
        events: list[ev.Event] = []
        async with TorrentManager(loopback_config(state_dir=state / "leech")) as leech:
            leech.events.subscribe("session.completed", events.append)
            a = await leech.add(t1, tmp_path / "leech", peers=(("127.0.0.1", port),))
            b = await leech.add(t2, tmp_path / "leech", peers=(("127.0.0.1", port),))
            with anyio.fail_after(60):
                await a.wait_completed()
                await b.wait_completed()
            await anyio.sleep(0.05)
            assert {e.info_hash for e in events} == {t1.info_hash.hex(), t2.info_hash.hex()}
    assert same_files(t1, tmp_path / "seed", tmp_path / "leech") == []
    assert same_files(t2, tmp_path / "seed", tmp_path / "leech") == []
    # restart (each added again from the state dir, as an owner of records does): both complete,
    # without a recheck
    async with TorrentManager(loopback_config(state_dir=state / "leech")) as again:
        for t in (t1, t2):
            s = await add_again(again, t.info_hash, tmp_path / "leech")
            await s.wait_ready()
            assert s.state is State.SEEDING and not s.rechecked
    # a touched file makes the resume data untrusted: recheck, and it still finds every piece
    target = tmp_path / "leech" / "two" / "solo.bin"
    os.utime(target, ns=(0, 0))
    async with TorrentManager(loopback_config(state_dir=state / "leech")) as third:
        s = await add_again(third, t2.info_hash, tmp_path / "leech")
        other = await add_again(third, t1.info_hash, tmp_path / "leech")
        await s.wait_ready()
        await other.wait_ready()
        assert s.state is State.SEEDING and s.rechecked and len(s.have) == t2.num_pieces
        assert not other.rechecked
    shutil.rmtree(tmp_path / "leech")


async def test_dialing_ourselves_or_a_connected_peer_twice_is_dropped(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed"))
    cfg = loopback_config()
    async with Session(torrent, tmp_path / "seed", config=cfg) as seeder:
        await seeder.wait_ready()
        async with Session(torrent, tmp_path / "leech", config=cfg) as leecher:
            # our own listen address under another name: the handshake's peer id gives it away
            leecher.add_peer("localhost", leecher.listen_port)
            leecher.add_peer("127.0.0.1", seeder.listen_port)
            with anyio.fail_after(60):
                await leecher.wait_completed()
            assert all(p.link.peer_id != leecher.shared.peer_id for p in leecher.peers)  # type: ignore[union-attr]
            # connected, recognised by its peer id, and never dialed again (a refused dial counts 1)
            assert leecher.pool[("localhost", leecher.listen_port)].failures == MAX_CONNECT_FAILURES
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []


async def test_a_peer_the_user_adds_again_is_dialed_however_often_it_refused(tmp_path: Path) -> None:
    # a peer added before its client listens refuses each dial until the pool gives it up; the
    # user adding it again once it is up gets it dialed (it was never dialed again before)
    torrent = make_torrent(make_payload(tmp_path / "seed"))
    with socket.socket() as probe:  # a port nobody listens on yet: the seeder's, later
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    key = ("127.0.0.1", port)
    async with Session(torrent, tmp_path / "leech", config=loopback_config()) as leecher:
        await leecher.wait_ready()
        leecher.add_peer(*key)
        with anyio.fail_after(20):
            while not leecher.pool[key].failures:  # refused for real
                await anyio.sleep(0.02)
        for _ in range(MAX_CONNECT_FAILURES - 1):  # and as often again as the back-off allows
            leecher.pool.failed(key, time.monotonic())
        assert not leecher.pool.may_dial(set())  # given up
        async with Session(torrent, tmp_path / "seed", config=loopback_config(listen_port=port)) as seeder:
            await seeder.wait_ready()
            leecher.add_peer(*key)
            with anyio.fail_after(60):
                await leecher.wait_completed()
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []


async def test_complete_session_that_must_not_seed_stops_by_itself(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed"))
    session = Session(torrent, tmp_path / "seed", config=loopback_config(seed=False))
    async with session:
        await session.wait_completed()
        with anyio.fail_after(10):
            while session.state is not State.STOPPED:
                await anyio.sleep(0.02)


async def test_complete_session_started_paused_that_must_not_seed_stops_on_resume(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed"))
    session = Session(torrent, tmp_path / "seed", config=loopback_config(seed=False), paused=True)
    async with session:
        await session.wait_ready()
        assert session.state is State.PAUSED
        await session.resume()
        with anyio.fail_after(10):  # (it used to seed to every peer that came, for ever)
            while session.state is not State.STOPPED:
                await anyio.sleep(0.02)


@pytest.mark.parametrize("seed", [False, True])
async def test_skipping_the_missing_files_completes_as_a_last_piece_would(tmp_path: Path, seed: bool) -> None:
    """set_file_priorities() that leaves nothing to download: tracker "completed", resume data with
    the completion time, and (not seeding) the session stops, as when the last piece passes."""
    torrent = make_torrent(make_payload(tmp_path / "seed", (("a.bin", 100_003), ("b.bin", 70_000))))
    (tmp_path / "leech" / "payload").mkdir(parents=True)
    shutil.copy(tmp_path / "seed" / "payload" / "a.bin", tmp_path / "leech" / "payload" / "a.bin")

    class Tracker:
        completions = 0

        def completed(self) -> None:
            self.completions += 1

        async def stop(self) -> None:
            pass

    tracker = Tracker()
    resume = tmp_path / "state" / "t.resume"
    session = Session(torrent, tmp_path / "leech", config=loopback_config(seed=seed), resume_path=resume)
    async with session:
        await session.wait_ready()
        assert session.state is State.DOWNLOADING and session.have
        session.announcer.tracker = tracker  # (no tracker on loopback: what it is told is what matters)
        session.set_file_priorities([0 if f.path[-1] == "b.bin" else 4 for f in torrent.files])
        with anyio.fail_after(10):
            await session.wait_completed()
            # (the start-up check writes its progress there too: wait for the completion's save)
            while (tracker.completions == 0 or (saved := load_resume(resume)) is None
                   or not saved.completed_time):
                await anyio.sleep(0.02)
            while not seed and session.state is not State.STOPPED:
                await anyio.sleep(0.02)
        assert tracker.completions == 1
        saved = load_resume(resume)
        assert saved is not None and saved.completed_time > 0
        assert session.state is (State.SEEDING if seed else State.STOPPED)


async def test_pieces_written_block_by_block_past_the_memory_cap(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed"))
    async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
        await seeder.wait_ready()
        # a cap of one piece: most pieces take the direct path (written as they come, hashed from disk)
        cfg = loopback_config(piece_buffer_bytes=torrent.piece_length)
        async with Session(torrent, tmp_path / "leech", config=cfg,
                           peers=[("127.0.0.1", seeder.listen_port)]) as leecher:
            with anyio.fail_after(60):
                await leecher.wait_completed()
            assert leecher.hash_failures == 0 and leecher.pieces.buffered_bytes == 0
            assert not leecher.pieces._direct
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []


async def test_seeder_whose_data_vanished_goes_to_error(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed", [("a.bin", 300_000), ("b.bin", 10)]))
    errors: list[ev.Event] = []
    seeder = Session(torrent, tmp_path / "seed", config=loopback_config())
    seeder.events.subscribe("session.error", errors.append)
    async with seeder:
        await seeder.wait_ready()
        # the data is gone under the session (truncated: an open descriptor cannot keep it alive)
        os.truncate(tmp_path / "seed" / "payload" / "a.bin", 0)
        async with Session(torrent, tmp_path / "leech", config=loopback_config(),
                           peers=[("127.0.0.1", seeder.listen_port)]) as leecher:
            with anyio.fail_after(30):
                while not seeder.finished:
                    await anyio.sleep(0.02)
            assert leecher.state is State.DOWNLOADING  # the leecher goes on, waiting for peers
    await anyio.sleep(0.05)
    assert seeder.state is State.STOPPED and "a.bin" in seeder.status().error
    assert errors and "a.bin" in errors[0].error  # type: ignore[attr-defined]


async def test_remove_with_delete_files_after_the_session_ended_on_its_own(tmp_path: Path) -> None:
    """A download that finished and stopped by itself (seed=False), then removed with
    delete_files=True: its files go, other files in the folder stay."""
    from torrent_engine.engine.manager import TorrentManager

    payload = make_payload(tmp_path / "seed", [("big.bin", 300_000), ("other/small.bin", 1000)])
    torrent = make_torrent(payload, piece_length=16 * 1024)
    (tmp_path / "leech").mkdir()
    (tmp_path / "leech" / "keep.txt").write_text("not ours")
    async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
        await seeder.wait_ready()
        async with TorrentManager(loopback_config(seed=False)) as manager:
            peers = (("127.0.0.1", seeder.listen_port),)
            leecher = await manager.add(torrent, tmp_path / "leech", peers=peers)
            stopped = anyio.Event()
            leecher.events.subscribe("session.stopped", lambda e: stopped.set())
            with anyio.fail_after(30):
                await leecher.wait_completed()
                await stopped.wait()
            assert (tmp_path / "leech" / "payload" / "big.bin").exists()
            await manager.remove(leecher, delete_files=True)
    assert sorted(os.listdir(tmp_path / "leech")) == ["keep.txt"]


async def test_pause_right_after_start_holds_through_the_recheck(tmp_path: Path) -> None:
    """Paused before checking began (data on disk, no resume data): the recheck runs, and the
    session is still paused after it, not seeding."""
    payload = make_payload(tmp_path / "seed", [("big.bin", 300_000)])
    torrent = make_torrent(payload, piece_length=16 * 1024)
    async with Session(torrent, tmp_path / "seed", config=loopback_config()) as session:
        await session.pause()
        with anyio.fail_after(30):
            await session.wait_ready()
        assert session.state is State.PAUSED
        assert len(session.have) == torrent.num_pieces
        assert not session.peers


async def test_a_listen_port_in_use_raises_the_os_error(tmp_path: Path) -> None:
    """Starting a session whose listen port is taken says so (OSError: address in use), not
    anyio's "child exited without calling task_status.started()"."""
    import errno
    import socket

    torrent = make_torrent(make_payload(tmp_path / "seed", [("a.bin", 1000)]))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        session = Session(torrent, tmp_path / "seed", config=loopback_config(listen_port=port))
        with pytest.raises(OSError) as caught:
            async with session:
                pass
    assert caught.value.errno == errno.EADDRINUSE
    assert session.state is State.STOPPED and "in use" in session.status().error
    assert f"cannot listen on 127.0.0.1 port {port}" in str(caught.value)  # (where, said)


async def test_a_listen_host_that_cannot_be_listened_on_is_named(tmp_path: Path) -> None:
    """(``--listen-host 192.0.2.1``, an address of no interface here, said only "Cannot assign
    requested address", naming neither the address nor the setting.)"""
    import errno

    torrent = make_torrent(make_payload(tmp_path / "seed", [("a.bin", 1000)]))
    session = Session(torrent, tmp_path / "seed", config=loopback_config(listen_host="192.0.2.1"))
    with pytest.raises(OSError) as caught:
        async with session:
            pass
    assert caught.value.errno == errno.EADDRNOTAVAIL
    assert str(caught.value) == (f"[Errno {errno.EADDRNOTAVAIL}] cannot listen on 192.0.2.1 port 0: "
                                 "Cannot assign requested address")


@pytest.mark.parametrize(("prefer_rc4", "encrypted"), [(False, False), (True, True)])
async def test_under_prefer_the_answering_side_chooses_the_payload_cipher(
        tmp_path: Path, prefer_rc4: bool, encrypted: bool) -> None:
    """Both offer RC4 and plaintext; the side answering the MSE handshake chooses: plaintext
    (libtorrent's default) unless Config.prefer_rc4."""
    payload = make_payload(tmp_path / "seed", [("a.bin", 100_000)])
    torrent = make_torrent(payload)
    async with Session(torrent, tmp_path / "seed", config=loopback_config(prefer_rc4=prefer_rc4)) as seeder:
        await seeder.wait_ready()
        async with Session(torrent, tmp_path / "leech", config=loopback_config(),
                           peers=[("127.0.0.1", seeder.listen_port)]) as leecher:
            met = keep_peers(leecher)  # (at completion the leecher closes its seed at once)
            with anyio.fail_after(60):
                await leecher.wait_completed()
            assert [(p.link.conn.mse, p.link.encrypted) for p in met] == [(True, encrypted)]


async def test_torrents_of_one_manager_take_their_piece_buffers_from_one_pool(tmp_path: Path) -> None:
    """A torrent downloading after another takes the buffers the first gave back. Once no
    torrent downloads, the pool keeps them for the linger, then none."""
    piece = 128 * 1024
    torrents = [make_torrent(make_payload(tmp_path / "seed", [("f.bin", 8 * piece)], name=f"t{n}", seed=n),
                             piece_length=piece, version="v1") for n in (1, 2)]
    async with TorrentManager(loopback_config()) as seeds:
        for t in torrents:
            await (await seeds.add(t, tmp_path / "seed")).wait_ready()
        port = seeds.shared.listen_port
        async with TorrentManager(loopback_config()) as leech:
            pool = leech.shared.buffers
            pool.join()  # (as a third torrent downloading meanwhile would: the pool keeps its buffers)
            taken = []  # (made, reused) after each torrent
            for t in torrents:
                s = await leech.add(t, tmp_path / "leech", peers=(("127.0.0.1", port),))
                with anyio.fail_after(60):
                    await s.wait_completed()
                taken.append((pool.made, pool.reused))
                if len(taken) == 1:
                    kept = pool.kept_bytes
            (made1, reused1), (made2, reused2) = taken
            assert 1 <= made1 <= 8 and made1 + reused1 >= 8  # (a buffer each piece of 8)
            assert kept >= piece  # the first gave its buffers back to the pool,
            assert reused2 - reused1 >= kept // piece  # and the second took them all
            assert (made2 - made1) + (reused2 - reused1) >= 8 and made2 - made1 < 8
            assert pool.users == 1 and 0 < pool.kept_bytes <= 8 * piece  # (both left on completion)
            pool.linger = 0.2  # (BUFFER_LINGER, shortened: the engine clock's deadline frees them)
            pool.leave()
            assert pool.kept_bytes > 0  # kept for a torrent that starts within the linger
            with anyio.fail_after(10):
                while pool.kept_bytes:
                    await anyio.sleep(0.05)
    assert all(same_files(t, tmp_path / "seed", tmp_path / "leech") == [] for t in torrents)
