"""The test suite's network guard: traffic to anything but loopback fails the test that made it,
even when the code under test swallows the error."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

INNER_CONFTEST = "from tests.conftest import anyio_backend, network_guard  # noqa: F401\n"

INNER_TESTS = '''
import socket

import anyio
import pytest


def test_plain_socket() -> None:
    with socket.socket() as s:
        s.settimeout(1)
        s.connect(("192.0.2.1", 9))


def test_swallowed_error() -> None:
    try:
        socket.create_connection(("192.0.2.1", 9), timeout=1)
    except OSError:
        pass  # as a "never fatal" tracker or DHT loop would


@pytest.mark.anyio
async def test_anyio_tcp() -> None:
    with anyio.move_on_after(2):
        await anyio.connect_tcp("192.0.2.1", 9)


@pytest.mark.anyio
async def test_peer_dial() -> None:  # (the engine's own dial: a socket of its own, connected by the loop)
    from torrent_engine.errors import PeerError
    from torrent_engine.net.peer.handshake import connect

    with anyio.move_on_after(2), pytest.raises(PeerError):
        await connect("192.0.2.1", 9, info_hash=bytes(20), peer_id=bytes(20), encryption="disable")


@pytest.mark.anyio
async def test_anyio_udp() -> None:
    async with await anyio.create_udp_socket(local_host="0.0.0.0") as sock:
        try:
            await sock.sendto(b"d1:ad2:id20:xxxxxxxxxxxxxxxxxxxxe1:q4:ping1:t2:aa1:y1:qe", "192.0.2.1", 6881)
        except OSError:
            pass


def test_plain_udp_sendto() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.sendto(b"M-SEARCH * HTTP/1.1", ("239.255.255.250", 1900))
        except OSError:
            pass


def test_plain_udp_sendmsg() -> None:  # (as the uTP socket sends a run of datagrams)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.sendmsg([b"x", b"y"], [], 0, ("192.0.2.7", 6881))
        except OSError:
            pass


@pytest.mark.anyio
async def test_ssdp_multicast() -> None:
    async with await anyio.create_udp_socket(local_host="0.0.0.0") as sock:
        try:
            await sock.sendto(b"M-SEARCH * HTTP/1.1", "239.255.255.250", 1900)
        except OSError:
            pass


@pytest.mark.anyio
async def test_natpmp_to_a_gateway() -> None:
    try:
        async with await anyio.create_connected_udp_socket("192.168.1.1", 5351) as sock:
            await sock.send(bytes(2))
    except OSError:
        pass


@pytest.mark.anyio
async def test_default_port_mapping() -> None:
    from torrent_engine.config import Config
    from torrent_engine.engine.shared import SharedResources

    # loopback listener, no DHT, but port mapping on (the default): it asks the gateway
    async with SharedResources(Config(listen_host="127.0.0.1", dht_enabled=False)) as shared:
        await shared.acquire()
        assert shared.port_mapper is not None
        with anyio.fail_after(30):
            await shared.port_mapper.wait_mapped()  # it fails, is logged, and the test goes on
        await shared.release()


def test_child_process() -> None:
    import subprocess
    import sys

    code = ("import socket\\n"
            "try:\\n"
            "    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('239.255.255.250', 1900))\\n"
            "except OSError:\\n"
            "    pass\\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def _download(tmp_path, *flags) -> None:
    import subprocess
    import sys

    from torrent_engine.storage.create import create_torrent

    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_bytes(b"x" * 1000)
    (tmp_path / "t.torrent").write_bytes(create_torrent(tmp_path / "d", version="v1").to_bytes())
    subprocess.run([sys.executable, "-m", "torrent_engine", "download", str(tmp_path / "t.torrent"),
                    "-o", str(tmp_path / "o"), "--listen-host", "127.0.0.1", "--no-dht", "--no-trackers",
                    "--no-state", "--stall-timeout", "2", *flags], timeout=60)


def test_cli_at_defaults(tmp_path) -> None:
    # a loopback listener, no DHT, no trackers, nobody to download from: only the default port
    # mapping and LSD leave the machine, from the CLI's own process
    _download(tmp_path)


def test_cli_lsd_at_defaults(tmp_path) -> None:
    # port mapping off: only LSD, on by default, joins its multicast group from the CLI's process
    _download(tmp_path, "--no-port-mapping")


def test_dns_lookup() -> None:
    try:
        socket.getaddrinfo("router.example.org", 6881)
    except OSError:
        pass


@pytest.mark.anyio
async def test_lsd_announce() -> None:
    # an LSD announce outside a namespace of the test's own: multicast leaves loopback. (Should
    # the guard let it through, the socket sends on lo only.)
    from torrent_engine.net.lsd import MULTICAST_V4, LsdService

    raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    raw.bind(("127.0.0.1", 0))
    raw.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
    service = LsdService(listen_port=6881)
    sock = await anyio.abc.UDPSocket.from_socket(raw)
    service._sockets.append((sock, MULTICAST_V4))
    async with sock:
        await service.send_announce([bytes(20)])  # the guard's error is logged, never raised


@pytest.mark.anyio
async def test_lsd_join() -> None:
    from torrent_engine.config import Config
    from torrent_engine.engine.shared import SharedResources

    config = Config(listen_host="127.0.0.1", dht_enabled=False, port_mapping=False, lsd_enabled=True)
    async with SharedResources(config) as shared:
        await shared.acquire()
        assert shared.lsd is not None and shared.lsd.families == []  # the join was refused
        await shared.release()


@pytest.mark.anyio
async def test_loopback_is_fine() -> None:
    socket.getaddrinfo("localhost", 80)
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.listeners[0].extra(anyio.abc.SocketAttribute.local_port)
    async with listener, await anyio.connect_tcp("127.0.0.1", port):
        pass
    async with await anyio.create_udp_socket(local_host="127.0.0.1") as sock:
        await sock.sendto(b"x", "127.0.0.1", 9)
'''


@pytest.mark.network_guard_off
def test_traffic_outside_loopback_fails_the_test(pytester: pytest.Pytester) -> None:
    repo = Path(__file__).resolve().parents[2]
    pytester.makeconftest(INNER_CONFTEST)
    pytester.makepyfile(test_inner=INNER_TESTS)
    env_path = os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH", "")]))
    pytester._monkeypatch.setenv("PYTHONPATH", env_path)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", timeout=120)
    assert result.ret != 0
    output = result.stdout.str()
    # the guard fails each offender at its teardown (an error), even where the test passed
    for name in ("test_plain_socket", "test_swallowed_error", "test_anyio_tcp", "test_peer_dial",
                 "test_anyio_udp", "test_plain_udp_sendto", "test_plain_udp_sendmsg", "test_ssdp_multicast",
                 "test_natpmp_to_a_gateway",
                 "test_default_port_mapping", "test_child_process", "test_cli_at_defaults",
                 "test_dns_lookup", "test_lsd_announce", "test_lsd_join", "test_cli_lsd_at_defaults"):
        assert f"ERROR test_inner.py::{name} - Failed: non-loopback traffic" in output
    assert "test_loopback_is_fine" not in output.split("short test summary info")[-1]
    assert "192.0.2.1:9: tests may only reach loopback" in output
    assert "239.255.255.250:1900: tests may only reach loopback" in output
    assert "192.168.1.1:5351: tests may only reach loopback" in output
    assert "socket.sendto to 239.255.255.250:1900: tests may only reach loopback (in process" in output
    assert "socket.sendmsg to 192.0.2.7:6881: tests may only reach loopback" in output
    assert "UDP send to 239.192.152.143:6771: tests may only reach loopback" in output
    assert "LSD multicast group join: tests may run LSD only in a network namespace" in output
    assert ("LSD multicast group join: tests may run LSD only in a network namespace of their own "
            "(in process") in output
