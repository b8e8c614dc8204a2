"""The peer connection protocols (``transport``: uTP and TCP, or one alone) changed at run time
through the job service's settings, qBittorrent's ``bittorrent_protocol`` and Transmission's
``utp-enabled``/``tcp-enabled``/``preferred_transports``, and seen on loopback: what an incoming
peer may connect over, what a download dials, a uTP socket started when uTP is turned on (the DHT
on its port, the gateway asked to map it)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx
import pytest

from tests.conftest import require_program
from tests.integration.api_helpers import TOKEN, running_api
from tests.integration.test_compat_network import rpc
from tests.unit.portmap.portmap_fakes import FakeNatPmpGateway
from tests.unit.test_shared import port_taken
from torrent_engine.engine.shared import SharedResources
from torrent_engine.errors import PeerError, UtpError
from torrent_engine.jobs import InvalidJobRequest, JobService
from torrent_engine.net.peer.handshake import connect
from torrent_engine.net.utp.socket import UtpSocket
from torrent_engine.session import Session

from .helpers import loopback_config, make_payload, make_torrent

pytestmark = pytest.mark.anyio

UDP, TCP = 1, 2  # (NAT-PMP's opcodes of a mapping)


def service(tmp_path: Path, transport: str) -> JobService:
    return JobService(loopback_config(transport=transport, seed=False), download_root=tmp_path / "dl",
                      state_dir=tmp_path / "state")


@asynccontextmanager
async def utp_dialer() -> AsyncIterator[UtpSocket]:
    """A uTP socket of the test's own on 127.0.0.1, to dial the service with."""
    utp = UtpSocket()
    async with anyio.create_task_group() as tg:
        await tg.start(utp.run, "127.0.0.1", 0)
        try:
            yield utp
        finally:
            tg.cancel_scope.cancel()


async def handshake(port: int, info_hash: bytes, pieces: int, utp: UtpSocket | None) -> float:
    """Dial the service as a peer (over TCP, or over ``utp``) through the BitTorrent handshake;
    the seconds it took (``PeerError`` when refused)."""
    peer_id = b"-XX0001-" + os.urandom(6).hex().encode()
    began = time.monotonic()

    async def over_utp(host: str, p: int, timeout: float) -> anyio.abc.ByteStream:
        assert utp is not None
        with anyio.fail_after(timeout):
            return await utp.connect(host, p)

    try:
        conn = await connect("127.0.0.1", port, info_hash=info_hash, peer_id=peer_id, encryption="disable",
                             num_pieces=pieces, timeout=10, opener=None if utp is None else over_utp)
    except UtpError as exc:  # (the uTP socket's refusal is its own error: a peer error to the caller)
        raise PeerError(f"refused: {exc}") from exc
    await conn.aclose()
    return time.monotonic() - began


async def taking_peers(jobs: JobService, tmp_path: Path) -> tuple[int, bytes, int]:
    """A job downloading with no peer (so incoming ones are taken): the port, info-hash, pieces."""
    torrent = make_torrent(make_payload(tmp_path / "elsewhere"))
    await jobs.add(torrent)
    shared = jobs.manager.shared
    with anyio.fail_after(10):
        while not shared.knows(torrent.info_hash) or not shared.listen_port:
            await anyio.sleep(0.05)
    port = shared.listen_port
    with anyio.fail_after(20):  # (an incoming peer is closed after its handshake until the check is over)
        while True:
            try:
                await handshake(port, torrent.info_hash, torrent.num_pieces, None)
                break
            except PeerError:
                await anyio.sleep(0.1)
    return port, torrent.info_hash, torrent.num_pieces


async def test_incoming_peers_are_taken_over_the_protocols_set_at_run_time(tmp_path: Path) -> None:
    async with service(tmp_path, "any") as jobs, utp_dialer() as utp:
        port, info_hash, pieces = await taking_peers(jobs, tmp_path)
        await handshake(port, info_hash, pieces, utp)  # (both taken)

        await jobs.update_settings(transport="tcp")
        assert jobs.manager.config.transport == "tcp"
        with pytest.raises(PeerError):  # uTP refused at once: a reset, not a dial left to time out
            with anyio.fail_after(5):
                await handshake(port, info_hash, pieces, utp)
        assert jobs.manager.shared.utp is not None  # (its socket stays: the DHT's too, when on it)
        await handshake(port, info_hash, pieces, None)

        await jobs.update_settings(transport="utp")
        with pytest.raises(PeerError):  # TCP closed at once
            await handshake(port, info_hash, pieces, None)
        await handshake(port, info_hash, pieces, utp)

        await jobs.update_settings(transport="any")
        await handshake(port, info_hash, pieces, utp)
        await handshake(port, info_hash, pieces, None)


async def test_a_download_dials_over_the_protocol_set_at_run_time(tmp_path: Path) -> None:
    """A seeder that takes both; the service's downloads dial over TCP, then over uTP, as set."""
    torrents = [make_torrent(make_payload(tmp_path / f"seed{i}", [(f"{i}.bin", 600_000)]), piece_length=16384)
                for i in range(2)]
    slow = loopback_config(upload_rate_limit=100_000)  # (the link lasts long enough to be looked at)
    async with Session(torrents[0], tmp_path / "seed0", config=slow) as one, \
            Session(torrents[1], tmp_path / "seed1", config=slow) as two, service(tmp_path, "any") as jobs:
        await one.wait_ready()
        await two.wait_ready()
        seen = []
        for transport, seeder, torrent in (("tcp", one, torrents[0]), ("utp", two, torrents[1])):
            await jobs.update_settings(transport=transport)
            job, _ = await jobs.add(torrent.to_bytes(), peers=[("127.0.0.1", seeder.listen_port)])
            with anyio.fail_after(30):
                while not jobs.get(job.id).peer_list:
                    await anyio.sleep(0.05)
            seen.append([p.transport for p in jobs.get(job.id).peer_list])
    assert seen == [["tcp"], ["utp"]]


async def test_utp_turned_on_starts_its_socket_unless_its_port_is_taken_and_is_kept(tmp_path: Path) -> None:
    async with service(tmp_path, "tcp") as jobs, utp_dialer() as utp:
        shared: SharedResources = jobs.manager.shared
        port, info_hash, pieces = await taking_peers(jobs, tmp_path)
        assert shared.utp is None  # (started with TCP alone: no uTP socket)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
            taken.bind(("127.0.0.1", port))
            with pytest.raises(InvalidJobRequest) as refused:
                await jobs.update_settings(transport="any")
            assert refused.value.field == "transport" and "in use" in refused.value.reason
            assert (jobs.get_settings().transport, jobs.manager.config.transport) == ("tcp", "tcp")
            assert shared.utp is None
        await jobs.update_settings(transport="any")
        assert shared.utp is not None and shared.listen_port == port
        await handshake(port, info_hash, pieces, utp)
        await handshake(port, info_hash, pieces, None)  # (the TCP listener as it was)
    async with service(tmp_path, "tcp") as again:  # (the configuration still says tcp: not a change)
        assert (again.get_settings().transport, again.manager.config.transport) == ("any", "any")


async def test_both_dialects_read_and_set_the_protocols(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        c = api.client
        assert (await c.get("/api/v2/app/preferences")).json()["bittorrent_protocol"] == 0

        async def set_protocol(value: object) -> httpx.Response:
            return await c.post("/api/v2/app/setPreferences",
                                data={"json": json.dumps({"bittorrent_protocol": value})})

        for number, ours in ((1, "tcp"), (2, "utp"), (0, "any")):
            r = await set_protocol(number)
            assert r.status_code == 200, r.text
            assert api.service.get_settings().transport == ours
            assert (await c.get("/api/v2/app/preferences")).json()["bittorrent_protocol"] == number
        for bad in (3, -1, "1", True):
            r = await set_protocol(bad)
            assert r.status_code == 400 and "bittorrent_protocol" in r.text, (bad, r.text)
        assert api.service.get_settings().transport == "any"

        fields = ["utp-enabled", "tcp-enabled", "preferred_transports"]
        both, tcp_first = ["utp", "tcp"], ["tcp", "utp"]
        for asked, ours, shown in (({"utp-enabled": False}, "tcp", [False, True, ["tcp"]]),
                                   ({"utp-enabled": True}, "any", [True, True, both]),
                                   ({"tcp-enabled": False}, "utp", [True, False, ["utp"]]),
                                   ({"preferred_transports": ["tcp"]}, "tcp", [False, True, ["tcp"]]),
                                   ({"preferred_transports": both}, "any", [True, True, both]),
                                   # (TCP first, uTP too: both on keep that order)
                                   ({"preferred_transports": tcp_first}, "tcp_first",
                                    [True, True, tcp_first]),
                                   ({"utp-enabled": True, "tcp-enabled": True}, "tcp_first",
                                    [True, True, tcp_first]),
                                   ({"utp-enabled": False}, "tcp", [False, True, ["tcp"]]),
                                   ({"utp-enabled": True}, "any", [True, True, both])):
            answer = await rpc(api, "session-set", asked)
            assert answer["result"] == "success", (asked, answer)
            assert api.service.get_settings().transport == ours, asked
            got = (await rpc(api, "session-get", {"fields": fields}))["arguments"]
            assert [got[f] for f in fields] == shown, asked
        for refused, word in (({"utp-enabled": False, "tcp-enabled": False}, "at least one"),
                              ({"preferred_transports": ["tcp", "tcp"]}, "preferred_transports"),
                              ({"preferred_transports": []}, "preferred_transports"),
                              ({"utp-enabled": "no"}, "utp-enabled")):
            answer = await rpc(api, "session-set", refused)
            assert word in answer["result"], (refused, answer)
        assert api.service.get_settings().transport == "any"
        r = await c.patch("/api/settings", json={"transport": "both"})
        assert r.status_code == 400 and r.json()["field"] == "transport"
        r = await c.patch("/api/settings", json={"transport": "utp"})
        assert r.status_code == 200 and r.json()["transport"] == "utp"
        # qBittorrent's 0 (TCP and μTP) shows TCP first too, and sent back keeps it
        r = await c.patch("/api/settings", json={"transport": "tcp_first"})
        assert r.status_code == 200 and r.json()["transport"] == "tcp_first"
        assert (await c.get("/api/v2/app/preferences")).json()["bittorrent_protocol"] == 0
        r = await set_protocol(0)
        assert r.status_code == 200 and api.service.get_settings().transport == "tcp_first"
        r = await set_protocol(2)
        assert r.status_code == 200 and api.service.get_settings().transport == "utp"


async def test_transmission_remote_turns_utp_off_and_on(tmp_path: Path) -> None:
    """The real ``transmission-remote``: ``--no-utp`` and ``--utp`` (``session-set``'s
    ``utp-enabled``); ``-si`` shows it."""
    exe = require_program("transmission-remote")

    def remote(port: int, *args: str) -> str:
        done = subprocess.run([exe, f"127.0.0.1:{port}", "-n", f"user:{TOKEN}", *args], capture_output=True,
                              text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    async with running_api(tmp_path) as api:
        port = api.server.bound_port
        run = anyio.to_thread.run_sync
        await run(remote, port, "--no-utp")
        assert (api.service.get_settings().transport, api.service.manager.config.transport) == ("tcp", "tcp")
        shown = await run(remote, port, "-si")
        assert re.search(r"uTP enabled: No", shown), shown
        await run(remote, port, "--utp")
        assert api.service.get_settings().transport == "any"
        assert re.search(r"uTP enabled: Yes", await run(remote, port, "-si"))


async def test_utp_turned_on_puts_the_dht_on_its_port_and_has_the_gateway_map_it(tmp_path: Path) -> None:
    """uTP turned on in a service started with TCP alone: the services start again as at a
    start, so the DHT moves onto the uTP socket's port (the one listened on) and port mapping asks
    the gateway (NAT-PMP) for that UDP port too; a TCP peer connected before stays connected."""
    gateway = FakeNatPmpGateway()
    async with anyio.create_task_group() as tg:
        await tg.start(gateway.serve)
        config = loopback_config(transport="tcp", seed=False, dht_enabled=True, dht_bootstrap=(),
                                 enforce_bep42=False, port_mapping=True,
                                 natpmp_gateway=("127.0.0.1", gateway.port),
                                 upnp_ssdp_address=("127.0.0.1", 9))  # (nothing listens there)
        async with JobService(config, download_root=tmp_path / "dl", state_dir=tmp_path / "state") as jobs, \
                utp_dialer() as utp:
            shared: SharedResources = jobs.manager.shared
            port, info_hash, pieces = await taking_peers(jobs, tmp_path)
            dht = shared.dht
            assert dht is not None and dht.port != port and shared.utp is None
            with anyio.fail_after(20):
                while (UDP, dht.port) not in gateway.mappings or (TCP, port) not in gateway.mappings:
                    await anyio.sleep(0.05)
            assert (UDP, port) not in gateway.mappings
            peer_id = b"-XX0001-" + os.urandom(6).hex().encode()
            peer = await connect("127.0.0.1", port, info_hash=info_hash, peer_id=peer_id,
                                 encryption="disable", num_pieces=pieces, timeout=10)
            session = jobs.manager.get(info_hash)
            assert session is not None
            with anyio.fail_after(10):
                while session.status().peers != 1:
                    await anyio.sleep(0.05)

            await jobs.update_settings(transport="any")
            moved = shared.dht
            assert shared.utp is not None and moved is not None and moved.port == port
            with anyio.fail_after(20):
                while (UDP, port) not in gateway.mappings:
                    await anyio.sleep(0.05)
            await handshake(port, info_hash, pieces, utp)
            assert session.status().peers >= 1  # (the TCP peer of before, still connected)
            await peer.aclose()
        tg.cancel_scope.cancel()


async def test_utp_turned_on_while_its_port_is_taken_in_the_moment_between_listens_on_another(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The TCP port taken between the services' stop and their new start (made so here): they
    start on a free one with uTP on it (the configured port, chosen at the start and kept, is
    the one taken), not left down."""
    async with service(tmp_path, "tcp") as jobs, utp_dialer() as utp:
        shared: SharedResources = jobs.manager.shared
        port, info_hash, pieces = await taking_peers(jobs, tmp_path)
        port_taken(monkeypatch, port)
        await jobs.update_settings(transport="any")
        monkeypatch.undo()
        moved = shared.listen_port
        assert moved not in (0, port) and shared.utp is not None
        await handshake(moved, info_hash, pieces, None)
        await handshake(moved, info_hash, pieces, utp)
