"""IPv6 with libtorrent over [::1], both ways, and our dual-stack listener taking peers of
both families on one port."""

from __future__ import annotations

import socket
from pathlib import Path

import anyio
import pytest

from tests.conftest import require_libtorrent
from tests.integration.helpers import keep_peers, loopback_config, make_payload, make_torrent, same_files
from tests.interop.test_libtorrent_transfer import flush_files, lt_add, wait_lt
from torrent_engine.config import Config
from torrent_engine.engine.shared import SharedResources
from torrent_engine.session import Session

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

FILES = (("a.bin", 700_001), ("sub/b.bin", 90_000))


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


def lt_session_v6(lt: object) -> object:
    return lt.session({  # type: ignore[attr-defined]
        "listen_interfaces": "[::1]:0",
        "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
        "allow_multiple_connections_per_ip": True,
        "enable_outgoing_utp": False, "enable_incoming_utp": False,
    })


@pytest.fixture(autouse=True)
def _ipv6() -> None:
    if not _has_ipv6_loopback():
        pytest.skip("no IPv6 loopback on this machine")


async def test_we_download_from_libtorrent_over_ipv6(tmp_path: Path) -> None:
    lt = require_libtorrent()
    torrent = make_torrent(make_payload(tmp_path / "seed", FILES), piece_length=32 * 1024)
    ses = lt_session_v6(lt)
    handle = lt_add(lt, ses, torrent, tmp_path / "seed")
    await wait_lt(handle, seeding=True)
    port = ses.listen_port()  # type: ignore[attr-defined]
    async with Session(torrent, tmp_path / "ours", config=loopback_config(listen_host="::1"),
                       peers=[("::1", port)]) as ours:
        met = keep_peers(ours)  # (at completion ours closes its seed at once)
        with anyio.fail_after(60):
            await ours.wait_completed()
        assert [p.host for p in met] == ["::1"]
    del ses
    assert same_files(torrent, tmp_path / "seed", tmp_path / "ours") == []


async def test_libtorrent_downloads_from_us_over_ipv6(tmp_path: Path) -> None:
    lt = require_libtorrent()
    torrent = make_torrent(make_payload(tmp_path / "seed", FILES), piece_length=32 * 1024)
    async with Session(torrent, tmp_path / "seed", config=loopback_config(listen_host="::1")) as ours:
        await ours.wait_ready()
        ses = lt_session_v6(lt)
        handle = lt_add(lt, ses, torrent, tmp_path / "lt")
        await wait_lt(handle, seeding=False, peer=("::1", ours.listen_port))
        assert ours.uploaded >= torrent.payload_size
        flush_files(lt, ses)  # (its last blocks may still be queued for its disk)
        for h in ses.get_torrents():  # type: ignore[attr-defined]
            ses.remove_torrent(h)  # type: ignore[attr-defined]
        del ses
    assert same_files(torrent, tmp_path / "seed", tmp_path / "lt") == []


async def test_the_default_listener_takes_both_families_on_one_port() -> None:
    config = Config(listen_port=0, dht_enabled=False, port_mapping=False,
                    lsd_enabled=False, tracker_enabled=False)
    assert config.listen_host == ""
    seen: list[tuple[str, int]] = []

    async def handshaker(stream: object, known: object) -> tuple[bytes, object]:
        from torrent_engine.net.peer.handshake import _remote_of

        remote = _remote_of(stream)  # type: ignore[arg-type]
        if isinstance(stream, socket.socket):
            stream.close()  # (the listener's socket is the handshaker's)
        assert remote is not None
        seen.append(remote)
        raise ConnectionError("test: not a peer")

    async with SharedResources(config, handshaker=handshaker) as shared:  # type: ignore[arg-type]
        await shared.acquire()
        port = shared.listen_port
        for host in ("127.0.0.1", "::1"):
            async with await anyio.connect_tcp(host, port):
                with anyio.fail_after(10):
                    while len(seen) < (1 if host == "127.0.0.1" else 2):
                        await anyio.sleep(0.01)
        await shared.release()
    # an IPv4 peer is named by its IPv4 address, not as ::ffff:127.0.0.1
    assert [host for host, _port in seen] == ["127.0.0.1", "::1"]
