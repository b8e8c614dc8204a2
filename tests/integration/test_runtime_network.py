"""The listening port, DHT, PEX, LSD and the encryption policy changed at run time through the job
service's settings, and seen on loopback: the DHT node answers or not, the listener moves, the
policy and PEX apply to the next connection; saved across a restart."""

from __future__ import annotations

import math
import os
import socket
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.unit.tracker._tracker_servers import HttpRequest, announce_body, http_response, http_tracker
from torrent_engine.engine.shared import SharedResources
from torrent_engine.errors import PeerError
from torrent_engine.jobs import InvalidJobRequest, JobService
from torrent_engine.net.peer.extensions import ExtensionHandshake
from torrent_engine.net.peer.handshake import connect
from torrent_engine.net.peer.messages import Extended
from torrent_engine.storage.create import create_torrent

from .helpers import loopback_config, make_payload, make_torrent

pytestmark = pytest.mark.anyio

DHT_PING = b"d1:ad2:id20:" + b"\x01" * 20 + b"e1:q4:ping1:t2:aa1:y1:qe"


def service(tmp_path: Path) -> JobService:
    # (no routers: a DHT turned on bootstraps from nobody, never from the public ones)
    return JobService(loopback_config(dht_bootstrap=(), enforce_bep42=False, transport="any"),
                      download_root=tmp_path / "dl", state_dir=tmp_path / "state")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def dht_answers(port: int) -> bool:
    """Whether a KRPC ping to ``port`` on loopback is answered within a second."""
    async with await anyio.create_udp_socket(local_host="127.0.0.1") as udp:
        await udp.sendto(DHT_PING, "127.0.0.1", port)
        with anyio.move_on_after(1.0):
            data, _ = await udp.receive()
            return b"1:y1:r" in data
    return False


async def tcp_answers(port: int) -> bool:
    try:
        stream = await anyio.connect_tcp("127.0.0.1", port)
    except OSError:
        return False
    await stream.aclose()
    return True


async def running(jobs: JobService) -> SharedResources:
    shared = jobs.manager.shared
    await shared.acquire()  # (as a session does: the services start)
    return shared


async def test_dht_turned_on_and_off_answers_and_stops_answering(tmp_path: Path) -> None:
    async with service(tmp_path) as jobs:
        shared = await running(jobs)
        try:
            port, utp = shared.listen_port, shared.utp
            assert utp is not None and shared.dht is None and not await dht_answers(port)
            await jobs.update_settings(dht_enabled=True)
            assert shared.dht is not None and shared.dht.port == port  # (the uTP socket's port)
            assert await dht_answers(port)
            await jobs.update_settings(dht_enabled=False)
            assert shared.dht is None and not await dht_answers(port)
            assert shared.utp is utp and shared.listen_port == port  # uTP's socket, the DHT's too, stays
            assert (tmp_path / "state" / "dht.dat").exists()  # (its table saved as it stopped)
            await jobs.update_settings(dht_enabled=True)  # (on again: a new node on that same socket)
            assert await dht_answers(port)
        finally:
            await shared.release()
    async with service(tmp_path) as again:  # (saved: the configuration did not change since)
        assert again.get_settings().dht_enabled and again.manager.config.dht_enabled


async def test_the_listener_moves_to_a_new_port_and_a_taken_one_is_refused(tmp_path: Path) -> None:
    async with service(tmp_path) as jobs:
        shared = await running(jobs)
        try:
            old = shared.listen_port
            new = free_port()
            settings = await jobs.update_settings(listen_port=new)
            assert settings.listen_port == new and shared.listen_port == new
            assert await tcp_answers(new) and not await tcp_answers(old)
            assert jobs.stats().listen_port == new
            with socket.socket() as taken:
                taken.bind(("127.0.0.1", 0))
                taken.listen()
                busy = int(taken.getsockname()[1])
                with pytest.raises(InvalidJobRequest) as refused:
                    await jobs.update_settings(listen_port=busy)
                assert refused.value.field == "listen_port" and "in use" in refused.value.reason
            assert jobs.get_settings().listen_port == new and shared.listen_port == new
            assert await tcp_answers(new)
        finally:
            await shared.release()
    async with service(tmp_path) as again:
        shared = await running(again)
        try:
            assert shared.listen_port == new  # (kept across a restart)
        finally:
            await shared.release()


async def _handshake(port: int, info_hash: bytes, num_pieces: int, encryption: Any) -> ExtensionHandshake:
    """Dial our service as a peer with ``encryption`` and read its extension handshake."""
    peer_id = b"-XX0001-" + os.urandom(6).hex().encode()
    conn = await connect("127.0.0.1", port, info_hash=info_hash, peer_id=peer_id, encryption=encryption,
                         num_pieces=num_pieces, timeout=5)
    try:
        with anyio.fail_after(5):
            while True:
                msg = await conn.receive()
                if isinstance(msg, Extended) and msg.ext_id == 0:
                    return ExtensionHandshake.decode(msg.payload)
    finally:
        await conn.aclose()


async def test_encryption_and_pex_apply_to_new_connections(tmp_path: Path) -> None:
    payload = make_payload(tmp_path / "elsewhere")
    torrent = make_torrent(payload)
    async with service(tmp_path) as jobs:
        await jobs.add(torrent)  # (downloading, with no peer: incoming ones are taken)
        shared = jobs.manager.shared
        with anyio.fail_after(10):
            while not shared.knows(torrent.info_hash) or not shared.listen_port:
                await anyio.sleep(0.05)
        port, pieces = shared.listen_port, torrent.num_pieces
        first: ExtensionHandshake | PeerError | None = None
        with anyio.move_on_after(20):
            while not isinstance(first, ExtensionHandshake):  # (an incoming peer is closed after
                try:                                          # its handshake until the check is over)
                    first = await _handshake(port, torrent.info_hash, pieces, "disable")
                except PeerError as exc:
                    first = exc
                    await anyio.sleep(0.1)
        assert isinstance(first, ExtensionHandshake), f"no dial answered in 20 s; the last: {first!r}"
        assert first.m.get("ut_pex")  # (prefer: plaintext taken; PEX on)
        await jobs.update_settings(encryption="require", pex_enabled=False)
        with pytest.raises(PeerError):
            await _handshake(port, torrent.info_hash, pieces, "disable")  # plaintext refused
        hs = await _handshake(port, torrent.info_hash, pieces, "require")
        assert "ut_pex" not in hs.m  # PEX off: not offered to a new connection
        await jobs.update_settings(encryption="disable", pex_enabled=True)
        with pytest.raises(PeerError):
            await _handshake(port, torrent.info_hash, pieces, "require")  # MSE refused
        hs = await _handshake(port, torrent.info_hash, pieces, "disable")
        assert hs.m.get("ut_pex")
        assert jobs.manager.config.encryption == "disable"


class FakeLsd:
    """LsdService without multicast (the test suite's guard forbids joining a group outside a
    network namespace): what it announces, and whether it runs."""

    runs: list[FakeLsd] = []

    def __init__(self, *, listen_port: int, listen_host: str = "") -> None:
        self.listen_port = listen_port
        self.netbind: object = None
        self.torrents: dict[bytes, object] = {}
        self.running = False

    def add_torrent(self, info_hash: bytes, on_peers: object) -> None:
        self.torrents[info_hash] = on_peers

    def remove_torrent(self, info_hash: bytes) -> None:
        self.torrents.pop(info_hash, None)

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        FakeLsd.runs.append(self)
        self.running = True
        try:
            task_status.started()
            await anyio.sleep(math.inf)
        finally:
            self.running = False


async def test_lsd_turned_off_and_on_stops_and_announces_the_running_torrents(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torrent_engine.net.lsd as lsd_module

    monkeypatch.setattr(lsd_module, "LsdService", FakeLsd)
    FakeLsd.runs = []
    torrent = make_torrent(make_payload(tmp_path / "elsewhere"))
    async with service(tmp_path) as jobs:
        await jobs.update_settings(lsd_enabled=True)
        await jobs.add(torrent)
        shared = jobs.manager.shared
        with anyio.fail_after(10):
            while not FakeLsd.runs or torrent.info_hash not in FakeLsd.runs[-1].torrents:
                await anyio.sleep(0.05)
        first = FakeLsd.runs[-1]
        await jobs.update_settings(lsd_enabled=False)
        assert shared.lsd is None and not first.running
        await jobs.update_settings(lsd_enabled=True)
        second = shared.lsd
        assert isinstance(second, FakeLsd) and second is not first and second.running
        assert torrent.info_hash in second.torrents  # (the running torrent announced again)


async def test_a_running_torrent_tells_its_tracker_the_new_port(tmp_path: Path) -> None:
    """Its trackers kept handing out the old port after a run-time change (until the session
    started again): peers dialed a port nobody listened on."""
    async def handler(request: HttpRequest, stream: anyio.abc.ByteStream) -> None:
        await stream.send(http_response(announce_body(interval=1800)))

    async with http_tracker(handler) as tracker:
        torrent = create_torrent(make_payload(tmp_path / "seed"), piece_length=32 * 1024, version="v1",
                                 trackers=[[f"http://127.0.0.1:{tracker.port}/announce"]])
        config = loopback_config(dht_bootstrap=(), enforce_bep42=False, tracker_enabled=True)
        async with JobService(config, download_root=tmp_path / "dl", state_dir=tmp_path / "state") as jobs:
            await jobs.add(torrent.to_bytes())  # (no data: it downloads, announcing)

            def ports() -> list[int]:
                return [int(p) for r in tracker.requests for p in r.query().get("port", [])]

            with anyio.fail_after(20):
                while not ports():
                    await anyio.sleep(0.05)
                new = free_port()
                await jobs.update_settings(listen_port=new)
                while new not in ports():
                    await anyio.sleep(0.05)
