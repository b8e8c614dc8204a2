"""The async shell on real loopback UDP: two UtpSockets, a stream each way, a DHT side channel."""

from __future__ import annotations

import random

import anyio
import pytest

from torrent_engine.net.utp.socket import UtpSocket

from .loopback import upload, utp_pair

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("read_path")]


async def test_stream_round_trip_and_eof_on_loopback() -> None:
    data = random.Random(5).randbytes(3_000_000)
    async with utp_pair(timeout=60) as (stream, incoming, _, client):
        assert incoming.extra(anyio.abc.SocketAttribute.remote_address) == client.local_address
        assert await upload(stream, incoming, data) == data
        await incoming.send(b"bye")
        assert await stream.receive() == b"bye"
        await incoming.aclose()
        await stream.aclose()


async def test_connect_to_nothing_fails_with_typed_error() -> None:
    from torrent_engine.errors import UtpError

    client = UtpSocket()
    silent = UtpSocket()  # no on_accept: SYNs are ignored
    async with anyio.create_task_group() as tg:
        await tg.start(client.run, "127.0.0.1", 0)
        await tg.start(silent.run, "127.0.0.1", 0)
        with anyio.fail_after(30), pytest.raises(UtpError, match="connect timed out"):
            await client.connect(*silent.local_address)
        tg.cancel_scope.cancel()


async def test_a_syn_that_finds_no_room_is_dropped_and_taken_when_sent_again() -> None:
    """``accepting()`` false (the engine's handshakes are all taken): the SYN goes unanswered,
    not reset, and the connection is made from the SYN the dialler sends again."""
    asked: list[bool] = []
    accepted: list[object] = []

    def accepting() -> bool:
        asked.append(bool(asked))  # (no room the first time)
        return asked[-1]

    client = UtpSocket()
    server = UtpSocket(on_accept=accepted.append, accepting=accepting)
    async with anyio.create_task_group() as tg:
        await tg.start(client.run, "127.0.0.1", 0)
        await tg.start(server.run, "127.0.0.1", 0)
        with anyio.fail_after(20):
            stream = await client.connect(*server.local_address)
        assert asked == [False, True] and len(accepted) == 1
        assert server.resets_sent == 0
        await stream.aclose()
        tg.cancel_scope.cancel()


async def test_krpc_datagrams_reach_the_dht_channel() -> None:
    sock = UtpSocket()
    other = UtpSocket()
    async with anyio.create_task_group() as tg:
        await tg.start(sock.run, "127.0.0.1", 0)
        await tg.start(other.run, "127.0.0.1", 0)
        a, b = sock.dht_channel(), other.dht_channel()
        await a.send(b"d1:y1:qe", b.local_address)
        with anyio.fail_after(10):
            data, addr = await b.receive()
        assert data == b"d1:y1:qe" and addr == a.local_address
        tg.cancel_scope.cancel()


async def test_large_datagrams_reach_the_dht_channel_whole() -> None:
    """A datagram far above the uTP packet size (a big KRPC reply) is read whole, not cut."""
    sock = UtpSocket()
    other = UtpSocket()
    async with anyio.create_task_group() as tg:
        await tg.start(sock.run, "127.0.0.1", 0)
        await tg.start(other.run, "127.0.0.1", 0)
        a, b = sock.dht_channel(), other.dht_channel()
        big = b"d1:y1:r1:v" + b"x" * 9000 + b"e"
        await a.send(big, b.local_address)
        with anyio.fail_after(10):
            data, _ = await b.receive()
        assert data == big
        tg.cancel_scope.cancel()


async def test_a_closed_udp_port_fails_the_dial_at_once() -> None:
    """ICMP port unreachable ends the dial now, not after the SYN timeouts (fast TCP fallback)."""
    import socket

    from torrent_engine.errors import UtpError

    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    closed_port = probe.getsockname()[1]
    probe.close()
    client = UtpSocket()
    async with anyio.create_task_group() as tg:
        await tg.start(client.run, "127.0.0.1", 0)
        # "unreachable", not "connect timed out": the ICMP error ended it, not the SYN timeouts
        with anyio.fail_after(30), pytest.raises(UtpError, match="unreachable"):
            await client.connect("127.0.0.1", closed_port)
        tg.cancel_scope.cancel()


@pytest.mark.parametrize("anyio_backend", [("asyncio", {"use_uvloop": False})])
async def test_a_loop_without_add_reader_serves_through_a_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the event loop cannot watch a descriptor (Windows' proactor), the socket is served
    through a datagram transport, one datagram per callback: the stream works the same."""
    import asyncio

    def no_add_reader(*args: object) -> None:
        raise NotImplementedError

    monkeypatch.setattr(asyncio.get_running_loop(), "add_reader", no_add_reader)
    data = random.Random(9).randbytes(300_000)
    async with utp_pair() as (stream, accepted, server, _):
        assert server._transport is not None
        assert await upload(stream, accepted, data) == data


async def test_a_dual_stack_socket_serves_an_ipv4_peer() -> None:
    """Bound on every interface ("" as Config.listen_host: one IPv6 socket taking IPv4 too), the
    socket reads IPv4 senders as mapped addresses, routes them like any other, and shows them
    as plain IPv4."""
    data = random.Random(8).randbytes(1_000_000)
    async with utp_pair(server_host="") as (stream, accepted, _, client):
        assert accepted.remote == client.local_address
        assert await upload(stream, accepted, data) == data


async def test_a_socket_whose_connections_arm_no_timer_checks_them_once_a_second() -> None:
    """Hundreds of idle connections (no data in flight, no ack held back) were walked fifty times
    a second; while none has a timer armed the round waits for a datagram, at most a second,
    and a datagram sent or received brings the pace back at once."""
    data = random.Random(9).randbytes(200_000)
    async with utp_pair(timeout=30) as (stream, accepted, server, client):
        assert await upload(stream, accepted, data) == data
        await anyio.sleep(0.3)  # (the last acks, and the deferred ones, sent)
        before = client.timer_rounds, server.timer_rounds
        await anyio.sleep(2.5)
        assert client.timer_rounds - before[0] <= 4  # (at 20 ms, 125)
        assert server.timer_rounds - before[1] <= 4
        assert client.table and server.table  # (open all along)
        busy = server.timer_rounds
        assert await upload(accepted, stream, data[:50_000]) == data[:50_000]  # (the other way)
        assert server.timer_rounds - busy >= 1  # (a send armed a timer: the rounds ran again)


async def test_a_socket_without_connections_checks_its_timers_once_a_second() -> None:
    """An idle daemon's socket woke fifty times a second for nothing; a connection wakes the
    timers at once, and they run at their pace while one of its timers is armed."""
    async with utp_pair(timeout=30) as (stream, incoming, server, client):
        await incoming.aclose()
        await stream.aclose()
        while server.table or client.table:  # (bounded by the pair's time-out)
            await anyio.sleep(0.05)
        await anyio.sleep(0.1)
        before = client.timer_rounds
        await anyio.sleep(2.5)
        assert client.timer_rounds - before <= 4  # (at 20 ms, 125)
        busy = client.timer_rounds
        dialed = await client.connect("127.0.0.1", server.local_address[1])
        await anyio.sleep(0.3)
        assert client.timer_rounds - busy >= 1
        await dialed.aclose()


@pytest.mark.parametrize("forgetful", ["server", "client"])
async def test_a_reset_from_a_socket_that_forgot_the_connection_ends_it_at_once(forgetful: str) -> None:
    """A socket answers a packet of a connection it does not know with ST_RESET carrying the
    packet's connection id: the sender's send id (libutp does the same). The sender looked the
    reset up by its receive id only, so it never heard it: data or a FIN to a peer that had forgotten it
    was resent for minutes (1 800 connections after a swarm's dials, each walked by every timer
    round). Dialer and acceptor hold ids one apart the other way round: both are found."""
    async with utp_pair(timeout=30) as (stream, accepted, server, client):
        await stream.send(b"hello")
        assert await accepted.receive() == b"hello"
        gone, kept = (accepted, stream) if forgetful == "server" else (stream, accepted)
        gone_socket = server if forgetful == "server" else client
        gone_socket.table.forget((gone.remote, gone.conn.recv_id))  # (as after a restart)
        resets = gone_socket.resets_sent
        await kept.send(b"still there?")  # (reaches a socket that no longer knows the connection)
        with anyio.fail_after(3):  # (unheard, it is resent from 0.5 s up to 60 s apart)
            while kept.conn.error is None:
                await anyio.sleep(0.02)
        assert gone_socket.resets_sent > resets
        assert kept.conn.error == "connection reset by peer"


async def test_a_socket_without_connections_checks_its_timers_on_the_daemon_s_beat(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Its idle rounds fall on the beat of their period (``beats.py``), where the daemon's other
    timers wake the loop, not at the phase it started at: an idle daemon's loop woke once more a
    second for it alone."""
    from torrent_engine.beats import sleep_to_beat
    from torrent_engine.net.utp import socket as utp_socket

    period = 0.2
    monkeypatch.setattr(utp_socket, "IDLE_TICK", period)
    rounds: list[float] = []
    idle = UtpSocket()
    monkeypatch.setattr(idle, "_tick", lambda: rounds.append(anyio.current_time()))
    async with anyio.create_task_group() as tg:
        await sleep_to_beat(period)
        await anyio.sleep(period / 2)  # (started half a period off the beat)
        await tg.start(idle.run, "127.0.0.1", 0)
        with anyio.fail_after(10):
            while len(rounds) < 4:
                await anyio.sleep(0.02)
        tg.cancel_scope.cancel()
    offsets = [t / period - round(t / period) for t in rounds]
    # (on the beat, within a loaded machine's slack; at their own phase they were 0.1 s off it)
    assert all(abs(o) * period < 0.05 for o in offsets), offsets
