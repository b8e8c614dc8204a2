"""Magnet links (BEP 9): a session that starts from the info-hash alone fetches the metadata."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from tests.kept import kept_hashes
from torrent_engine import events as ev
from torrent_engine.engine.manager import TorrentManager
from torrent_engine.errors import SessionError
from torrent_engine.formats.magnet import parse_magnet
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.session import Session, SessionSetup
from torrent_engine.session.state_table import State

from .helpers import add_again, loopback_config, make_payload, make_torrent, same_files

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("version", ["v1", "hybrid"])
async def test_magnet_leecher_gets_metadata_then_data(tmp_path: Path, version: str) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed"), version=version)
    magnet = parse_magnet(torrent.magnet_uri())
    seen: list[ev.Event] = []
    async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
        await seeder.wait_ready()
        leecher = Session(magnet, tmp_path / "leech", config=loopback_config(),
                          peers=[("127.0.0.1", seeder.listen_port)])
        leecher.events.subscribe("*", seen.append)
        assert not leecher.has_metadata and leecher.status().progress == 0.0
        with pytest.raises(SessionError):
            _ = leecher.torrent
        async with leecher:
            with anyio.fail_after(60):
                await leecher.wait_completed()
            assert leecher.torrent.info_bytes == torrent.info_bytes
            assert leecher.state is State.SEEDING
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []
    names = [e.name for e in seen]
    assert names.index("session.started") < names.index("session.metadata_received") < names.index(
        "session.completed")


async def test_manager_adds_magnet_uri_and_keeps_the_metainfo(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed"))
    uri = torrent.magnet_uri()
    async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
        await seeder.wait_ready()
        state = tmp_path / "state"
        async with TorrentManager(loopback_config(state_dir=state)) as manager:
            session = await manager.add(uri, tmp_path / "leech", peers=(("127.0.0.1", seeder.listen_port),))
            with anyio.fail_after(60):
                await session.wait_completed()
        assert kept_hashes(state) == {torrent.info_hash.hex()}
        async with TorrentManager(loopback_config(state_dir=state)) as again:
            reloaded = await add_again(again, torrent.info_hash, tmp_path / "leech")
            assert reloaded.has_metadata
            await reloaded.wait_ready()
            assert reloaded.state is State.SEEDING
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []


async def test_magnet_session_paused_before_metadata_resumes_and_completes(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed"))
    async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
        await seeder.wait_ready()
        leecher = Session(parse_magnet(torrent.magnet_uri()), tmp_path / "leech", config=loopback_config(),
                          peers=[("127.0.0.1", seeder.listen_port)], paused=True)
        async with leecher:
            await anyio.sleep(0.3)
            assert leecher.state is State.PAUSED and not leecher.has_metadata and not seeder.peers
            await leecher.resume()
            assert leecher.state is State.DOWNLOADING_METADATA
            with anyio.fail_after(60):
                await leecher.wait_completed()
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []


async def test_magnet_leecher_gets_metadata_from_a_peer_that_dials_it(tmp_path: Path) -> None:
    """The seeder connects to the magnet leecher (as after a DHT or tracker announce)."""
    torrent = make_torrent(make_payload(tmp_path / "seed"))
    magnet = parse_magnet(torrent.magnet_uri())
    async with Session(magnet, tmp_path / "leech", config=loopback_config()) as leecher:
        with anyio.fail_after(10):
            while leecher.state is not State.DOWNLOADING_METADATA:
                await anyio.sleep(0.01)
        async with Session(torrent, tmp_path / "seed", config=loopback_config(),
                           peers=[("127.0.0.1", leecher.listen_port)]) as seeder:
            await seeder.wait_ready()
            with anyio.fail_after(60):
                await leecher.wait_completed()
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []


async def test_a_peer_announcing_a_wrong_metadata_size_does_not_stall_the_magnet(tmp_path: Path) -> None:
    """The first peer to answer claims an info dict one byte too long and rejects every request:
    the honest seeder (the real size) must still be able to hand over the metadata."""
    import os

    import anyio.abc

    from torrent_engine.net.peer import messages as m
    from torrent_engine.net.peer.extensions import (
        UT_METADATA,
        ExtensionHandshake,
        MetadataReject,
        MetadataRequest,
        decode_metadata_message,
        encode_metadata_message,
    )
    from torrent_engine.net.peer.wire import PeerWire

    torrent = make_torrent(make_payload(tmp_path / "seed"))
    magnet = parse_magnet(torrent.magnet_uri())
    asked = anyio.Event()

    async def liar(stream: anyio.abc.SocketStream) -> None:
        wire = PeerWire(info_hash=torrent.info_hash, peer_id=b"-XX0003-" + os.urandom(6).hex().encode(),
                        reserved=m.make_reserved(extension=True, fast=False))
        hs = ExtensionHandshake(m={UT_METADATA: 1}, metadata_size=len(torrent.info_bytes) + 1)
        async with stream:
            await stream.send(wire.handshake())
            their_id = 0
            try:
                while True:
                    wire.receive_data(await stream.receive())
                    for msg in wire.events():
                        if isinstance(msg, m.Handshake):
                            await stream.send(wire.send(m.Extended(0, hs.encode())))
                        elif isinstance(msg, m.Extended) and msg.ext_id == 0:
                            their_id = ExtensionHandshake.decode(msg.payload).m.get(UT_METADATA, 0)
                        elif isinstance(msg, m.Extended) and msg.ext_id == 1 and their_id:
                            req = decode_metadata_message(msg.payload)
                            if isinstance(req, MetadataRequest):
                                reply = encode_metadata_message(MetadataReject(req.piece))
                                await stream.send(wire.send(m.Extended(their_id, reply)))
                                asked.set()
            except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                pass

    async with anyio.create_task_group() as tg:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        liar_port = listener.extra(anyio.abc.SocketAttribute.local_port)
        tg.start_soon(listener.serve, liar)
        async with Session(magnet, tmp_path / "leech", config=loopback_config(encryption="disable"),
                           peers=[("127.0.0.1", liar_port)]) as leecher:
            with anyio.fail_after(20):
                await asked.wait()  # the liar's size came first
            async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
                await seeder.wait_ready()
                leecher.add_peer("127.0.0.1", seeder.listen_port)
                with anyio.fail_after(30):
                    await leecher.wait_completed()
        tg.cancel_scope.cancel()
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []


async def test_a_magnets_select_only_downloads_just_those_files(tmp_path: Path) -> None:
    """BEP 53: ``so=1`` asks for file 1 alone; the other files are neither fetched nor created."""
    payload = make_payload(tmp_path / "seed", [("a.bin", 300_000), ("b.bin", 70_000), ("c.bin", 200_000)])
    torrent = make_torrent(payload, version="v1")
    magnet = parse_magnet(torrent.magnet_uri() + "&so=1")
    assert magnet.select_only == ((1, 1),)
    async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
        await seeder.wait_ready()
        async with Session(magnet, tmp_path / "leech", config=loopback_config(),
                           peers=[("127.0.0.1", seeder.listen_port)]) as leecher:
            with anyio.fail_after(60):
                await leecher.wait_completed()
    leech = tmp_path / "leech" / payload.name
    assert (leech / "b.bin").read_bytes() == (payload / "b.bin").read_bytes()
    for other in ("a.bin", "c.bin"):  # at most the bytes of pieces shared with b.bin
        path = leech / other
        assert not path.exists() or path.read_bytes() != (payload / other).read_bytes()


async def test_a_magnets_setup_applies_as_its_metadata_arrives(tmp_path: Path) -> None:
    """What the owner told the session (``SessionSetup``) of the files applies as the torrent's
    parts are made from the metadata, before the first request for data: the owner's priorities
    over the magnet's own selection (``so=0``), sequential mode, the first and last pieces."""
    payload = make_payload(tmp_path / "seed", [("a.bin", 300_000), ("b.bin", 70_000), ("c.bin", 200_000)])
    torrent = make_torrent(payload, version="v1")
    magnet = parse_magnet(torrent.magnet_uri() + "&so=0")
    setup = SessionSetup(file_priorities=(0, 4, 0), sequential=True, first_last_piece=True)
    async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
        await seeder.wait_ready()
        async with Session(magnet, tmp_path / "leech", config=loopback_config(), setup=setup,
                           peers=[("127.0.0.1", seeder.listen_port)]) as leecher:
            with anyio.fail_after(60):
                await leecher.wait_completed()
            assert leecher.file_priorities == [0, 4, 0] and leecher.picker.sequential
    leech = tmp_path / "leech" / payload.name
    assert (leech / "b.bin").read_bytes() == (payload / "b.bin").read_bytes()
    for other in ("a.bin", "c.bin"):  # at most the bytes of pieces shared with b.bin
        path = leech / other
        assert not path.exists() or path.read_bytes() != (payload / other).read_bytes()


async def test_a_magnets_setup_for_another_number_of_files_is_its_error(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed"), version="v1")
    async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
        await seeder.wait_ready()
        async with Session(parse_magnet(torrent.magnet_uri()), tmp_path / "leech", config=loopback_config(),
                           setup=SessionSetup(file_priorities=(4,)),
                           peers=[("127.0.0.1", seeder.listen_port)]) as leecher:
            with anyio.fail_after(60):  # the error is told first, the run ends after its shutdown
                while not leecher.finished:
                    await anyio.sleep(0.02)
            said = f"file priorities given for 1 files: {torrent.name!r} has {len(torrent.files)}"
            assert leecher.error and said in leecher.error


async def test_before_check_is_awaited_once_the_metadata_is_in_and_before_the_check(tmp_path: Path) -> None:
    """The owner's ``before_check`` runs with the torrent before the session opens its files:
    what it writes there is what the check finds (here, every file: nothing is downloaded)."""
    torrent = make_torrent(make_payload(tmp_path / "seed"), version="v1")
    seen: list[str] = []

    async def place(got: Torrent) -> None:
        assert got.info_bytes == torrent.info_bytes and not (tmp_path / "leech").exists()
        seen.append("placed")
        for f in torrent.files:
            target = tmp_path.joinpath("leech", *f.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(tmp_path.joinpath("seed", *f.path).read_bytes())

    async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
        await seeder.wait_ready()
        async with Session(parse_magnet(torrent.magnet_uri()), tmp_path / "leech", config=loopback_config(),
                           peers=[("127.0.0.1", seeder.listen_port)], before_check=place) as leecher:
            leecher.events.subscribe(ev.SessionChecking, lambda e: seen.append("checking"))
            with anyio.fail_after(60):
                await leecher.wait_completed()
            assert leecher.status().downloaded == 0
    assert seen[:2] == ["placed", "checking"]
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []


async def test_what_before_check_raises_is_the_sessions_error(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed"), version="v1")

    async def refuse(_torrent: object) -> None:
        raise SessionError("the owner refuses this torrent")

    async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
        await seeder.wait_ready()
        async with Session(parse_magnet(torrent.magnet_uri()), tmp_path / "leech", config=loopback_config(),
                           peers=[("127.0.0.1", seeder.listen_port)], before_check=refuse) as leecher:
            with anyio.fail_after(60):  # the error is told first, the run ends after its shutdown
                while not leecher.finished:
                    await anyio.sleep(0.02)
            assert leecher.error and "the owner refuses this torrent" in leecher.error
            assert not (tmp_path / "leech" / torrent.name).exists()


async def test_a_managers_before_check_hears_each_magnet_by_its_info_hash(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed"), version="v1")
    heard: list[tuple[str, bytes]] = []

    async def note(info_hash: str, got: Torrent) -> None:
        heard.append((info_hash, got.info_bytes))

    async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
        await seeder.wait_ready()
        async with TorrentManager(loopback_config()) as manager:
            manager.before_check = note
            session = await manager.add(torrent.magnet_uri(), tmp_path / "leech",
                                        peers=[("127.0.0.1", seeder.listen_port)])
            other = make_torrent(make_payload(tmp_path / "other", [("x.bin", 40_000)]), version="v1")
            await manager.add(other, tmp_path / "other")  # (a .torrent: not heard)
            with anyio.fail_after(60):
                await session.wait_completed()
    assert heard == [(torrent.info_hash.hex(), torrent.info_bytes)]
