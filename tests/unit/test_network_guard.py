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
async def test_anyio_udp() -> None:
    async with await anyio.create_udp_socket(local_host="0.0.0.0") as sock:
        try:
            await sock.sendto(b"d1:ad2:id20:xxxxxxxxxxxxxxxxxxxxe1:q4:ping1:t2:aa1:y1:qe", "192.0.2.1", 6881)
        except OSError:
            pass


def test_dns_lookup() -> None:
    try:
        socket.getaddrinfo("router.example.org", 6881)
    except OSError:
        pass


@pytest.mark.anyio
async def test_lsd_announce() -> None:
    # an LSD announce outside a namespace of the test's own: multicast leaves loopback. (Should
    # the guard let it through, the socket sends on lo only.)
    from torrent_engine.lsd import MULTICAST_V4, LsdService

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
    from torrent_engine.shared import SharedResources

    config = Config(listen_host="127.0.0.1", dht_enabled=False, lsd_enabled=True)
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
    for name in ("test_plain_socket", "test_swallowed_error", "test_anyio_tcp", "test_anyio_udp",
                 "test_dns_lookup", "test_lsd_announce", "test_lsd_join"):
        assert f"ERROR test_inner.py::{name} - Failed: non-loopback traffic" in output
    assert "test_loopback_is_fine" not in output.split("short test summary info")[-1]
    assert "192.0.2.1:9: tests may only reach loopback" in output
    assert "UDP send to 239.192.152.143:6771: tests may only reach loopback" in output
    assert "LSD multicast group join: tests may run LSD only in a network namespace" in output
