"""ICMP errors on the shared uTP socket: a peer that vanished (its UDP port closed, no FIN) must
neither cost the healthy connections their datagrams nor keep its own connection retransmitting.

With IP_RECVERR, Linux reports a port unreachable on the next call of the unconnected socket,
whichever peer that call is for, and that call sends (or reads) nothing.
"""

from __future__ import annotations

import socket
import sys

import anyio
import pytest

from torrent_engine.net.utp.socket import UtpSocket
from torrent_engine.net.utp.stream import UtpStream

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.usefixtures("read_path"),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="IP_RECVERR is Linux's"),
]


def _closed_port() -> tuple[str, int]:
    """A loopback UDP address nothing listens on (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        host, port = s.getsockname()
    return str(host), int(port)


async def test_a_datagram_after_another_peers_icmp_error_is_still_sent() -> None:
    sock = UtpSocket()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as healthy:
        healthy.bind(("127.0.0.1", 0))
        healthy.settimeout(2)
        dead = _closed_port()
        async with anyio.create_task_group() as tg:
            await tg.start(sock.run, "127.0.0.1", 0)
            for i in range(20):
                # no await between the two: the port unreachable of the first is pending on the
                # socket when the second is sent (loopback answers within the first sendto)
                sock.sendto(b"x", dead)
                sock.sendto(b"datagram %d" % i, healthy.getsockname())
                assert healthy.recvfrom(100)[0] == b"datagram %d" % i
            assert sock.send_errors == 0
            tg.cancel_scope.cancel()


async def test_a_connection_whose_peer_port_closed_is_aborted_at_once() -> None:
    accepted: list[UtpStream] = []
    got = anyio.Event()

    def on_accept(s: UtpStream) -> None:
        accepted.append(s)
        got.set()

    server = UtpSocket(on_accept=on_accept)
    doomed = UtpSocket()
    async with anyio.create_task_group() as tg:
        await tg.start(server.run, "127.0.0.1", 0)
        async with anyio.create_task_group() as peer:
            await peer.start(doomed.run, "127.0.0.1", 0)
            with anyio.fail_after(10):
                stream = await doomed.connect(*server.local_address)
                await stream.send(b"hello")
                await got.wait()
                incoming = accepted[0]
                assert await incoming.receive() == b"hello"
            peer.cancel_scope.cancel()  # the peer's process dies: its socket closes, no FIN goes out
        # far sooner than the retransmission timeouts (about a minute) would end it
        with anyio.fail_after(3), pytest.raises(anyio.BrokenResourceError, match="port unreachable"):
            for _ in range(1000):
                await incoming.send(b"x" * 10_000)
                await anyio.sleep(0.01)
        assert server.connections == 0
        tg.cancel_scope.cancel()


async def test_the_socket_keeps_reading_after_an_icmp_error_signals_on_it() -> None:
    # The error waits in the queue (nothing is sent after it) and the socket signals POLLERR:
    # uvloop (the tests' loop) then drops its watch of the descriptor; the socket must not go deaf.
    sock = UtpSocket()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
        other.bind(("127.0.0.1", 0))
        async with anyio.create_task_group() as tg:
            await tg.start(sock.run, "127.0.0.1", 0)
            channel = sock.dht_channel()
            for i in range(5):
                sock.sendto(b"x", _closed_port())
                await anyio.sleep(0.1)  # the loop polls while the error is pending
                other.sendto(b"d1:y1:q%de" % i, sock.local_address)
                with anyio.fail_after(5):
                    data, _ = await channel.receive()
                assert data == b"d1:y1:q%de" % i
            tg.cancel_scope.cancel()
