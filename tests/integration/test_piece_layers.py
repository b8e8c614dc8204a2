"""v2 piece layers from peers (BEP 52 hash requests): a v2 magnet, or a .torrent without its
``piece layers``, downloads from our own seeder with no piece ever counted as failed; a peer
that sends false hashes is banned while an honest one completes the layers."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from urllib.parse import quote

import anyio
import anyio.abc
import pytest

from tests.kept import kept_torrent
from tests.unit.webseed._webseed_server import http_server, ranged
from torrent_engine import events as ev
from torrent_engine.engine.manager import TorrentManager
from torrent_engine.formats.magnet import parse_magnet
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.net.peer import messages as m
from torrent_engine.net.peer.layer_fetch import hashes_for
from torrent_engine.net.peer.wire import PeerWire
from torrent_engine.session import PeerState, Session
from torrent_engine.session.state_table import State

from .fake_seed import FakeSeed
from .helpers import add_again, loopback_config, make_payload, make_torrent, record_sent_messages, same_files

pytestmark = pytest.mark.anyio

# several pieces each (16 KiB pieces), one smaller than a piece (no piece layer), one empty
FILES = (("a.bin", 200_003), ("empty.txt", 0), ("sub/b.bin", 77_777), ("z.txt", 999))
PL = 16 * 1024


async def test_v2_magnet_fetches_the_layers_and_saves_them(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed", FILES), piece_length=PL, version="v2")
    assert len(torrent.piece_layers) == 2
    magnet = parse_magnet(torrent.magnet_uri())
    assert magnet.info_hash_v1 is None and magnet.info_hash_v2 == torrent.info_hash_v2
    seen: list[ev.Event] = []
    state = tmp_path / "state"
    async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
        await seeder.wait_ready()
        async with TorrentManager(loopback_config(state_dir=state)) as manager:
            manager.events.subscribe("*", seen.append)
            leecher = await manager.add(magnet, tmp_path / "leech",
                                        peers=(("127.0.0.1", seeder.listen_port),))
            with anyio.fail_after(60):
                await leecher.wait_completed()
            assert leecher.hash_failures == 0 and leecher.banned_count == 0
            assert leecher.torrent.piece_layers == torrent.piece_layers
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []
    assert not [e for e in seen if isinstance(e, ev.PieceHashFailed)]
    names = [e.name for e in seen]
    assert names.index("session.metadata_received") < names.index("session.piece_layers_received") \
        < names.index("session.completed")
    assert [e.files for e in seen if isinstance(e, ev.SessionPieceLayersReceived)] == [2]
    saved = kept_torrent(state, torrent.info_hash)
    assert saved is not None and saved.piece_layers == torrent.piece_layers and not saved.missing_piece_layers
    assert saved.info_hash_v2 == torrent.info_hash_v2
    # a restart takes the saved metainfo: nothing to ask of peers again (none is there)
    async with TorrentManager(loopback_config(state_dir=state)) as again:
        reloaded = await add_again(again, torrent.info_hash, tmp_path / "leech")
        assert reloaded.has_metadata
        await reloaded.wait_ready()
        assert reloaded.state is State.SEEDING and reloaded.layers.fetcher is None
        assert reloaded.torrent.piece_layers == torrent.piece_layers


async def test_a_v2_torrent_file_without_piece_layers_downloads_without_hash_failures(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed", FILES), piece_length=PL, version="v2")
    bare = Torrent.from_info_bytes(torrent.info_bytes)
    assert bare.missing_piece_layers
    async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
        await seeder.wait_ready()
        async with Session(bare, tmp_path / "leech", config=loopback_config(),
                           peers=[("127.0.0.1", seeder.listen_port)]) as leecher:
            with anyio.fail_after(60):
                await leecher.wait_completed()
            assert leecher.hash_failures == 0 and leecher.banned_count == 0
            assert leecher.torrent.piece_layers == torrent.piece_layers
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []


@pytest.mark.parametrize("buffer", [64 << 20, 0])
async def test_a_hybrid_over_its_v1_info_hash_learns_its_layers_from_its_data(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, buffer: int) -> None:
    """BEP 52 hash messages need a connection made with the v2 info-hash (libtorrent drops a v1
    connection that sends one): no hash request is sent; SHA-1 verifies the pieces, and the v2
    layers are built from them (``buffer`` 0: every piece goes to disk first, so the layers are
    read back from disk at the end)."""
    torrent = make_torrent(make_payload(tmp_path / "seed", FILES), piece_length=PL, version="hybrid")
    bare = Torrent.from_info_bytes(torrent.info_bytes)
    assert bare.missing_piece_layers
    sent = record_sent_messages(monkeypatch)
    async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
        await seeder.wait_ready()
        async with Session(bare, tmp_path / "leech", config=loopback_config(piece_buffer_bytes=buffer),
                           peers=[("127.0.0.1", seeder.listen_port)]) as leecher:
            with anyio.fail_after(60):
                await leecher.wait_completed()
            assert leecher.hash_failures == 0
            assert leecher.torrent.piece_layers == torrent.piece_layers
    assert any(isinstance(msg, m.Request) for msg in sent)  # (the spy saw the leecher's messages)
    assert not [msg for msg in sent if isinstance(msg, m.HashRequest)]
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []


class HashLiar(FakeSeed):
    """A peer that has every piece, answers every hash request with hashes that do not hash to
    the pieces root (or, with ``reject``, with a hash reject), and never sends a block."""

    def __init__(self, torrent: Torrent, *, reject: bool = False) -> None:
        super().__init__(torrent)
        self.reject = reject
        self.hash_requests = 0
        self.answered = anyio.Event()  # it has sent its first (false or reject) answer

    async def on_message(self, msg: m.Message, wire: PeerWire, stream: anyio.abc.SocketStream) -> None:
        if isinstance(msg, m.HashRequest):
            self.hash_requests += 1
            if self.reject:
                no = m.HashReject(msg.pieces_root, msg.base_layer, msg.index, msg.length, msg.proof_layers)
                await stream.send(wire.send(no))
            else:
                good = hashes_for(self.torrent.piece_layers, self.torrent.piece_length, msg)
                assert good is not None
                false = os.urandom(32) + good.hashes[32:]
                await stream.send(wire.send(m.Hashes(msg.pieces_root, msg.base_layer, msg.index,
                                                     msg.length, msg.proof_layers, false)))
            self.answered.set()


async def test_a_peer_sending_false_hashes_is_banned_and_the_layers_come_from_another(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed", FILES), piece_length=PL, version="v2")
    liar = HashLiar(torrent)
    async with anyio.create_task_group() as tg:
        await tg.start(liar.serve)
        async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
            await seeder.wait_ready()
            # the honest seeder answers hash requests only once the liar has answered one: else
            # the leecher may learn every layer from it before the liar's lie arrives (if the
            # seeder was asked for all, its requests time out and go to the liar)
            answer = seeder.layers.on_message

            async def after_the_liar(peer: PeerState, msg: m.HashRequest | m.Hashes | m.HashReject) -> None:
                if isinstance(msg, m.HashRequest):
                    await liar.answered.wait()
                await answer(peer, msg)

            monkeypatch.setattr(seeder.layers, "on_message", after_the_liar)
            cfg = loopback_config(encryption="disable")
            leecher = Session(parse_magnet(torrent.magnet_uri()), tmp_path / "leech", config=cfg,
                              peers=[("127.0.0.1", liar.port), ("127.0.0.1", seeder.listen_port)])
            async with leecher:
                with anyio.fail_after(90):
                    await leecher.wait_completed()
                assert leecher.state is State.SEEDING
                assert leecher.pool.is_banned(("127.0.0.1", liar.port))
                assert not leecher.pool.is_banned(("127.0.0.1", seeder.listen_port))
                assert leecher.hash_failures == 0
        tg.cancel_scope.cancel()
    assert liar.hash_requests > 0
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []


@pytest.mark.parametrize("version", ["v2", "hybrid"])
async def test_cli_saves_a_magnets_torrent_with_its_piece_layers(tmp_path: Path, version: str) -> None:
    """v2: the layers come from the peer; hybrid (a magnet with btih and btmh, so reached by v1):
    they are built from the data at completion, before the CLI saves and exits."""
    torrent = make_torrent(make_payload(tmp_path / "seed", FILES), piece_length=PL, version=version)
    assert ("btih" in torrent.magnet_uri()) is (version == "hybrid")
    saved = tmp_path / "saved.torrent"
    async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
        await seeder.wait_ready()
        with anyio.fail_after(120):
            result = await anyio.run_process(
                [sys.executable, "-m", "torrent_engine", "download", torrent.magnet_uri(),
                 "-o", str(tmp_path / "out"), "--peer", f"127.0.0.1:{seeder.listen_port}",
                 "--save-torrent", str(saved), "--no-state", "--listen-host", "127.0.0.1",
                 "--no-dht", "--no-port-mapping", "--no-lsd", "--no-trackers", "-q"], check=False)
    assert result.returncode == 0, result.stderr.decode()
    assert same_files(torrent, tmp_path / "seed", tmp_path / "out") == []
    again = Torrent.load(saved)
    assert again.piece_layers == torrent.piece_layers and not again.missing_piece_layers
    assert again.info_hash_v2 == torrent.info_hash_v2


async def test_a_stall_for_want_of_piece_layers_says_so(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed", FILES), piece_length=PL, version="v2")
    rejecter = HashLiar(torrent, reject=True)
    stalls: list[ev.SessionStalled] = []
    async with anyio.create_task_group() as tg:
        await tg.start(rejecter.serve)
        cfg = loopback_config(encryption="disable", stall_after=1.0)
        leecher = Session(Torrent.from_info_bytes(torrent.info_bytes), tmp_path / "leech", config=cfg,
                          peers=[("127.0.0.1", rejecter.port)])
        leecher.events.subscribe(ev.SessionStalled, stalls.append)
        async with leecher:
            with anyio.fail_after(30):
                while leecher.status().stall_reason != "no_piece_layers":
                    await anyio.sleep(0.1)
            message = leecher.status().stall_message or ""
            assert leecher.hash_failures == 0 and leecher.banned_count == 0
            assert len(leecher.peers) == 1  # an honest peer that only will not give hashes stays
        tg.cancel_scope.cancel()
    assert "v2 piece layers" in message and "of 2 files" in message and "rejected or unanswered" in message
    assert stalls and stalls[-1].reason == "no_piece_layers"
    assert rejecter.hash_requests >= 2


async def test_a_hybrid_by_btmh_alone_gets_its_layers_and_restarts_by_that_hash(tmp_path: Path) -> None:
    """Our hybrid seeder takes peers that come by the truncated v2 info-hash too; the leecher
    asks for the layers over that v2 connection, saves them, and a restart reloads the torrent
    under the hash it was added by, trusting its resume data."""
    torrent = make_torrent(make_payload(tmp_path / "seed", FILES), piece_length=PL, version="hybrid")
    assert torrent.info_hash_v2 is not None
    v2 = torrent.info_hash_v2[:20]
    uri = f"magnet:?xt=urn:btmh:1220{torrent.info_hash_v2.hex()}"
    state = tmp_path / "state"
    async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
        await seeder.wait_ready()
        async with TorrentManager(loopback_config(state_dir=state)) as manager:
            leecher = await manager.add(uri, tmp_path / "leech", peers=(("127.0.0.1", seeder.listen_port),))
            assert leecher.info_hash == v2
            with anyio.fail_after(60):
                await leecher.wait_completed()
                while leecher.torrent.missing_piece_layers:
                    await anyio.sleep(0.05)
            assert leecher.hash_failures == 0
    saved = kept_torrent(state, v2)
    assert saved is not None and saved.piece_layers == torrent.piece_layers
    assert saved.info_hash_v1 == torrent.info_hash_v1
    async with TorrentManager(loopback_config(state_dir=state)) as again:
        reloaded = await add_again(again, v2, tmp_path / "leech")
        assert reloaded.info_hash == v2
        await reloaded.wait_ready()
        assert reloaded.state is State.SEEDING and not reloaded.rechecked
        assert reloaded.torrent.piece_layers == torrent.piece_layers
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []


async def test_a_web_seed_takes_no_piece_whose_hash_is_not_known(tmp_path: Path) -> None:
    """While no peer gives the piece layers, the web seed (BEP 19) is asked only for what can be
    verified: the file smaller than one piece, whose hash is its pieces root."""
    torrent = make_torrent(make_payload(tmp_path / "seed", FILES), piece_length=PL, version="v2")
    files = {"/pub/" + "/".join(quote(p, safe="") for p in f.path): (tmp_path / "seed").joinpath(*f.path)
             .read_bytes() for f in torrent.files}
    rejecter = HashLiar(torrent, reject=True)
    async with anyio.create_task_group() as tg, \
            http_server(lambda path, s, e: (ranged(files[path], s, e), True)) as server:
        await tg.start(rejecter.serve)
        url = server.url("/pub/")
        bare = Torrent.from_info_bytes(torrent.info_bytes, web_seeds=[url])
        cfg = loopback_config(encryption="disable", stall_after=1.0)
        async with Session(bare, tmp_path / "leech", config=cfg,
                           peers=[("127.0.0.1", rejecter.port)]) as leecher:
            with anyio.fail_after(30):
                while leecher.status().stall_reason != "no_piece_layers":
                    await anyio.sleep(0.1)
            assert leecher.hash_failures == 0 and leecher.banned_count == 0
            assert len(leecher.have) == 1  # z.txt
        tg.cancel_scope.cancel()
    assert server.requests and {path.rsplit("/", 1)[-1] for path, _ in server.requests} == {"z.txt"}


async def test_data_already_on_disk_is_found_once_its_layer_arrives(tmp_path: Path) -> None:
    """A .torrent without piece layers over complete data: the start-up recheck cannot verify
    the big files' pieces; once their layers come, they are found on disk, not downloaded."""
    torrent = make_torrent(make_payload(tmp_path / "seed", FILES), piece_length=PL, version="v2")
    shutil.copytree(tmp_path / "seed", tmp_path / "leech")
    async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
        await seeder.wait_ready()
        async with Session(Torrent.from_info_bytes(torrent.info_bytes), tmp_path / "leech",
                           config=loopback_config(), peers=[("127.0.0.1", seeder.listen_port)]) as leecher:
            await leecher.wait_ready()
            assert leecher.rechecked and 0 < len(leecher.have) < torrent.num_pieces
            with anyio.fail_after(60):
                await leecher.wait_completed()
            assert leecher.downloaded == 0 and leecher.hash_failures == 0
            assert leecher.torrent.piece_layers == torrent.piece_layers
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []
