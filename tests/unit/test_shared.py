"""SharedResources: reference counting, single-flight start-up, failures, routing by info-hash."""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.abc
import pytest

from torrent_engine.config import Config
from torrent_engine.engine.shared import Handshaker, Incoming, SharedResources, TokenBucket
from torrent_engine.errors import ConfigError, SessionError

pytestmark = pytest.mark.anyio


def _config(**kw: Any) -> Config:
    return Config(dht_enabled=False, port_mapping=False,
                  lsd_enabled=False, listen_host="127.0.0.1", listen_port=0, **kw)


def on_stream(handshake: Callable[[anyio.abc.SocketStream, Any], Awaitable[tuple[bytes, Any]]]) -> Handshaker:
    """A test's handshaker that reads an anyio stream: the listener hands a socket on asyncio,
    and the handshaker owns it (the stream made of it is closed if ``handshake`` raises)."""
    async def handshaker(incoming: Incoming, known: Callable[[bytes], bool]) -> tuple[bytes, Any]:
        stream = await anyio.abc.SocketStream.from_socket(incoming) if isinstance(incoming, socket.socket) \
            else incoming
        try:
            return await handshake(stream, known)  # type: ignore[arg-type]
        except BaseException:
            await anyio.aclose_forcefully(stream)
            raise

    return handshaker


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_ref_count_starts_once_and_closes_on_zero() -> None:
    async with SharedResources(_config()) as shared:
        fds = _open_fds()
        await shared.acquire()
        port = shared.listen_port
        assert port > 0 and shared.running
        await shared.acquire()
        assert shared.count == 2 and shared.starts == 1
        await shared.release()
        assert shared.running  # one user left
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        await shared.release()
        assert not shared.running and shared.listen_port == 0
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        assert _open_fds() == fds
        # a new first acquire starts the services again
        await shared.acquire()
        assert shared.starts == 2 and shared.listen_port > 0
        await shared.release()


async def test_concurrent_first_acquires_share_one_start() -> None:
    async with SharedResources(_config()) as shared:
        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(shared.acquire)
        assert shared.starts == 1 and shared.count == 5
        for _ in range(5):
            await shared.release()
        assert not shared.running


async def test_start_failure_reaches_every_waiter() -> None:
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        cfg = _config()
        cfg.listen_port = busy.getsockname()[1]
        errors: list[BaseException] = []

        async def acquire() -> None:
            try:
                await shared.acquire()
            except OSError as exc:
                errors.append(exc)

        async with SharedResources(cfg) as shared:
            async with anyio.create_task_group() as tg:
                for _ in range(4):
                    tg.start_soon(acquire)
            assert len(errors) == 4
            assert shared.starts == 1 and shared.count == 0 and not shared.running
    finally:
        busy.close()


async def test_release_without_acquire_and_acquire_outside_context() -> None:
    shared = SharedResources(_config())
    with pytest.raises(SessionError):
        await shared.acquire()
    async with shared:
        with pytest.raises(SessionError):
            await shared.release()


async def _dial_and_see_it_closed(port: int, info_hash: bytes, first: anyio.Event | None = None) -> None:
    """Dial the listener, ask for ``info_hash`` and wait (5 s at most; for ``first`` too) until
    the listener closes the connection."""
    stream = await anyio.connect_tcp("127.0.0.1", port)
    await stream.send(info_hash)
    with anyio.fail_after(5):
        if first is not None:
            await first.wait()
        with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError, ConnectionError)):
            await stream.receive()
    await stream.aclose()


async def test_incoming_connections_are_routed_by_info_hash() -> None:
    async def handshaker(stream: anyio.abc.SocketStream, known: Any) -> tuple[bytes, Any]:
        info_hash = await stream.receive(20)
        if not known(info_hash):
            raise ValueError("unknown torrent")
        return info_hash, stream

    got: list[bytes] = []
    routed = anyio.Event()

    def handler(stream: Any) -> bool:
        got.append(b"A")
        routed.set()
        return False  # refused: the listener closes it

    async with SharedResources(_config(), handshaker=on_stream(handshaker)) as shared:
        await shared.acquire()
        shared.register(b"A" * 20, handler)
        with pytest.raises(SessionError):
            shared.register(b"A" * 20, handler)
        # unknown info-hash: closed without reaching any handler
        await _dial_and_see_it_closed(shared.listen_port, b"B" * 20)
        await _dial_and_see_it_closed(shared.listen_port, b"A" * 20, routed)
        assert got == [b"A"]
        shared.unregister(b"A" * 20)
        await shared.release()


async def test_a_refused_peer_whose_close_fails_does_not_break_the_listener() -> None:
    class Peer:
        async def aclose(self) -> None:
            raise OSError("closing failed")

    async def handshaker(stream: anyio.abc.SocketStream, known: Any) -> tuple[bytes, Any]:
        info_hash = await stream.receive(20)
        await stream.aclose()  # (the stream is the handshaker's; the peer it returns is not)
        return info_hash, Peer()

    async with SharedResources(_config(), handshaker=on_stream(handshaker)) as shared:
        await shared.acquire()
        shared.register(b"A" * 20, lambda peer: False)  # refused: the listener closes it
        for _ in range(2):  # the second one is still served
            await _dial_and_see_it_closed(shared.listen_port, b"A" * 20)
        assert shared.running and shared.pending_handshakes == 0
        await shared.release()


async def test_a_peer_from_outside_the_local_network_says_the_port_is_reachable(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """(libtorrent's ``has_incoming_connections``, qBittorrent's "connected" where it says
    "firewalled": a connection from this host or its local network says nothing of the port's
    reachability from outside; one from elsewhere does, whatever its handshake; the listener
    opened again knows it no more.)"""
    import torrent_engine.engine.shared as shared_module

    async def handshaker(stream: anyio.abc.SocketStream, known: Any) -> tuple[bytes, Any]:
        return await stream.receive(20), stream

    async with SharedResources(_config(), handshaker=on_stream(handshaker)) as shared:
        await shared.acquire()
        await _dial_and_see_it_closed(shared.listen_port, b"B" * 20)  # (from 127.0.0.1)
        assert not shared.reached_from_outside
        real = shared_module._remote_address
        monkeypatch.setattr(shared_module, "_remote_address",  # (as if from a public address)
                            lambda incoming: ("11.22.33.44", real(incoming)[1]))  # type: ignore[index]
        await _dial_and_see_it_closed(shared.listen_port, b"B" * 20)
        assert shared.reached_from_outside
        await shared.release()
        assert not shared.running
        monkeypatch.setattr(shared_module, "_remote_address", real)
        await shared.acquire()  # (opened again: not reached yet)
        assert not shared.reached_from_outside
        await shared.release()


def test_token_bucket_delays_past_the_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(100_000, clock=lambda: now[0])
    assert bucket.try_consume(100_000) == 0.0  # the one-second burst
    assert bucket.try_consume(50_000) == pytest.approx(0.5)
    now[0] += 1.0
    assert bucket.try_consume(10_000) == 0.0
    assert TokenBucket(0).try_consume(10**9) == 0.0


async def test_an_acquire_while_the_last_release_is_closing_gets_working_services() -> None:
    """The last user leaves and another arrives before the services have closed: the new ones
    must not be torn down by the old ones' clean-up (the next release would wait forever), and
    a fixed listen port is free again for them."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with SharedResources(Config(listen_host="127.0.0.1",
                                      dht_enabled=False, port_mapping=False,
                                      lsd_enabled=False, listen_port=port)) as shared:
        await shared.acquire()
        async with anyio.create_task_group() as tg:
            tg.start_soon(shared.release)  # the last user leaves...
            await anyio.lowlevel.checkpoint()
            await shared.acquire()  # ...and another arrives while the services close
        assert shared.running and shared.listen_port == port
        with anyio.fail_after(5):
            await shared.release()
        assert not shared.running and shared.count == 0


async def test_connections_beyond_max_pending_handshakes_wait_for_room() -> None:
    """A flood of connections that never send a handshake cannot use up our file descriptors:
    past ``max_pending_handshakes`` nothing more is taken; a peer then waits in the kernel's
    backlog and is taken, not refused, as soon as one of the flood is through."""
    async def handshaker(stream: anyio.abc.SocketStream, known: Any) -> tuple[bytes, Any]:
        info_hash = await stream.receive(20)
        return info_hash, stream

    routed = anyio.Event()

    def handler(stream: Any) -> bool:
        routed.set()
        return False

    cfg = _config(max_pending_handshakes=8, handshake_timeout=60.0)
    async with SharedResources(cfg, handshaker=on_stream(handshaker)) as shared:
        await shared.acquire()
        shared.register(b"A" * 20, handler)
        idle = [await anyio.connect_tcp("127.0.0.1", shared.listen_port) for _ in range(8)]
        with anyio.fail_after(5):
            while shared.pending_handshakes < 8:
                await anyio.sleep(0.01)
        fds = _open_fds()
        peer = await anyio.connect_tcp("127.0.0.1", shared.listen_port)  # (the kernel's backlog takes it)
        await peer.send(b"A" * 20)
        with anyio.fail_after(5):
            while not shared.handshakes_deferred:
                await anyio.sleep(0.01)
        for _ in range(20):
            await anyio.sleep(0.01)
        assert shared.pending_handshakes == 8 and not routed.is_set()
        assert _open_fds() == fds + 1  # (our end of the peer's connection: not taken)
        await idle.pop().aclose()  # one of the flood goes: the peer is taken
        with anyio.fail_after(5):
            await routed.wait()
        assert shared.pending_handshakes == 7
        await peer.aclose()
        for stream in idle:
            await stream.aclose()
        with anyio.fail_after(5):
            while shared.pending_handshakes:
                await anyio.sleep(0.01)
        shared.unregister(b"A" * 20)
        await shared.release()


async def test_every_accept_loop_waiting_for_room_goes_on_when_a_handshake_is_through() -> None:
    """Two listeners (IPv4 and IPv6) each wait for room for a handshake: one handshake through
    lets both go on (each had made its own event, and the second's replaced the first's, so the
    first listener never took a connection again)."""
    shared = SharedResources(_config(max_pending_handshakes=2))
    shared.pending_handshakes = 2
    went_on: list[int] = []

    async def accept_loop(n: int) -> None:
        await shared._room_for_a_handshake()
        went_on.append(n)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(accept_loop, 4)
            tg.start_soon(accept_loop, 6)
            for _ in range(5):
                await anyio.lowlevel.checkpoint()
            assert went_on == [] and shared.handshakes_deferred == 2
            shared._handshake_through()
    assert sorted(went_on) == [4, 6]


async def test_a_burst_of_peers_beyond_max_pending_handshakes_all_get_through() -> None:
    """Fifty peers connecting at once with room for four handshakes: each is taken as one is
    through, none refused (a refused one would dial again, and the burst feed on itself)."""
    async def handshaker(stream: anyio.abc.SocketStream, known: Any) -> tuple[bytes, Any]:
        info_hash = await stream.receive(20)
        return info_hash, stream

    routed: list[Any] = []

    def handler(stream: Any) -> bool:
        routed.append(stream)
        return False

    async with SharedResources(_config(max_pending_handshakes=4, transport="tcp"),
                               handshaker=on_stream(handshaker)) as shared:
        await shared.acquire()
        shared.register(b"B" * 20, handler)
        peers = [await anyio.connect_tcp("127.0.0.1", shared.listen_port) for _ in range(50)]
        for peer in peers:
            await peer.send(b"B" * 20)
        with anyio.fail_after(10):
            while len(routed) < 50:
                await anyio.sleep(0.01)
        assert shared.handshakes_deferred > 0  # (the accepts waited for room)
        assert shared.pending_handshakes == 0
        for peer in peers:
            await peer.aclose()
        shared.unregister(b"B" * 20)
        await shared.release()


async def test_a_refused_peer_is_closed_after_a_real_handshake() -> None:
    """The handshaker may move the socket onto its own transport (TCP fast path): a peer the
    session refuses must still be closed, not left open with no reader."""
    from torrent_engine.net.peer.messages import Handshake, make_reserved
    from torrent_engine.session.peer_io import handshaker_for

    info_hash = b"R" * 20
    refused = anyio.Event()

    def handler(link: Any) -> bool:
        refused.set()
        return False

    async with SharedResources(_config(encryption="disable")) as shared:
        shared.set_handshaker(handshaker_for(shared))
        await shared.acquire()
        shared.register(info_hash, handler)
        stream = await anyio.connect_tcp("127.0.0.1", shared.listen_port)
        await stream.send(Handshake(make_reserved(), info_hash, b"-XX0001-refusedpeer1").to_bytes())
        with anyio.fail_after(5):
            await refused.wait()
            with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError, ConnectionError)):
                while True:
                    await stream.receive()  # our handshake, then the end
        await stream.aclose()
        shared.unregister(info_hash)
        await shared.release()


async def test_an_incoming_peer_is_answered_on_the_accepted_socket_itself(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """On asyncio the listener accepts with the loop on its own socket and hands that socket to
    the handshakes: the anyio listener's accept (an anyio stream, whose socket the handshakes
    then duplicated onto a second transport) is not used."""
    import anyio._backends._asyncio as backend

    from torrent_engine.net.peer.messages import Handshake, make_reserved
    from torrent_engine.net.peer.protocol import ProtocolPeerConnection
    from torrent_engine.session.peer_io import handshaker_for

    info_hash = b"S" * 20
    links: list[Any] = []
    handed = anyio.Event()

    def handler(link: Any) -> bool:
        links.append(link)
        handed.set()
        return False  # (the listener closes it)

    async def no_stream(self: Any) -> Any:
        raise AssertionError("an anyio stream was made of an incoming peer")

    monkeypatch.setattr(backend.TCPSocketListener, "accept", no_stream)
    async with SharedResources(_config(encryption="disable")) as shared:
        shared.set_handshaker(handshaker_for(shared))
        await shared.acquire()
        shared.register(info_hash, handler)
        async with await anyio.connect_tcp("127.0.0.1", shared.listen_port) as stream:
            await stream.send(Handshake(make_reserved(), info_hash, b"-XX0001-answeredpeer").to_bytes())
            with anyio.fail_after(5):
                await handed.wait()
                got = b""
                while len(got) < 68:
                    got += await stream.receive()
        assert got[28:48] == info_hash  # (our handshake: 1 + 19 + 8 bytes, then the info-hash)
        assert isinstance(links[0].conn, ProtocolPeerConnection) and links[0].remote_address[0] == "127.0.0.1"
        shared.unregister(info_hash)
        await shared.release()


async def test_an_incoming_tcp_peer_of_a_utp_only_engine_is_closed_unread() -> None:
    """``transport="utp"``: a peer that connects over TCP is closed before any handshake, and the
    listener goes on."""
    asked: list[Any] = []

    async def handshaker(stream: anyio.abc.SocketStream, known: Any) -> tuple[bytes, Any]:
        asked.append(stream)
        return await stream.receive(20), stream

    async with SharedResources(_config(transport="utp"), handshaker=on_stream(handshaker)) as shared:
        await shared.acquire()
        shared.register(b"A" * 20, lambda peer: False)
        for _ in range(2):
            await _dial_and_see_it_closed(shared.listen_port, b"A" * 20)
        assert asked == [] and shared.running and shared.pending_handshakes == 0
        await shared.release()


def test_own_ip_for_bep40_prefers_what_peers_see() -> None:
    shared = SharedResources(Config(listen_host="", dht_enabled=False, port_mapping=False, lsd_enabled=False))
    assert shared.own_ip("127.0.0.5") == "127.0.0.1"  # the local address toward it (nothing sent)
    assert shared.own_ip("localhost") is None  # a name: never looked up
    shared.external_ip = "203.0.113.7"  # the gateway's word (port mapping) comes first
    assert shared.own_ip("127.0.0.5") == "203.0.113.7"
    assert shared.own_ip("::1") == "::1"  # another family: not the IPv4 external address
    listening = SharedResources(Config(listen_host="127.0.0.9", dht_enabled=False, port_mapping=False,
                                       lsd_enabled=False))
    assert listening.own_ip("127.0.0.5") == "127.0.0.9"  # a specific listen address


async def test_the_listener_waits_out_a_descriptor_shortage_and_accepts_again(
        caplog: pytest.LogCaptureFixture) -> None:
    """With no descriptor left, accept fails (EMFILE): the listener says why, pauses and tries
    again; once descriptors are free the waiting peer is handshaken (it neither died nor took
    the shared services down)."""
    import resource

    async def handshaker(stream: anyio.abc.SocketStream, known: Any) -> tuple[bytes, Any]:
        return await stream.receive(20), stream

    routed = anyio.Event()

    def handler(stream: Any) -> bool:
        routed.set()
        return False

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    async with SharedResources(_config(), handshaker=on_stream(handshaker)) as shared:
        await shared.acquire()
        shared.register(b"A" * 20, handler)
        client = socket.socket()
        fillers: list[int] = []
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (_open_fds() + 8, hard))
            try:
                while True:
                    fillers.append(os.open(os.devnull, os.O_RDONLY))
            except OSError:
                pass
            client.connect(("127.0.0.1", shared.listen_port))  # (no new descriptor here)
            client.sendall(b"A" * 20)
            with anyio.fail_after(10):
                while "incoming peers wait: too many open files" not in caplog.text:
                    await anyio.sleep(0.02)
            assert not routed.is_set() and shared.running
        finally:
            for fd in fillers:
                os.close(fd)
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        with anyio.fail_after(10):
            await routed.wait()
        client.close()
        assert shared.running
        await shared.release()


async def test_a_dormant_torrent_is_woken_once_by_peers_asking_for_it_at_once() -> None:
    """A torrent without a session (a dormant seed) is known to the listener; the first peer
    asking for it wakes it, a second one meanwhile waits for that same wake, and both are handed
    to the handler the woken session registered."""
    async def handshaker(stream: anyio.abc.SocketStream, known: Any) -> tuple[bytes, Any]:
        info_hash = await stream.receive(20)
        if not known(info_hash):
            raise ValueError("unknown torrent")
        return info_hash, stream

    info_hash = b"D" * 20
    wakes = 0
    both_waiting = anyio.Event()
    handed: list[Any] = []
    two_handed = anyio.Event()

    def handler(stream: Any) -> bool:
        handed.append(stream)
        if len(handed) == 2:
            two_handed.set()
        return False  # (refused: the listener closes them)

    async with SharedResources(_config(), handshaker=on_stream(handshaker)) as shared:
        async def wake() -> None:
            nonlocal wakes
            wakes += 1
            await both_waiting.wait()  # (a session's start takes a while: the second peer comes)
            shared.register(info_hash, handler)

        await shared.acquire()
        shared.register_dormant(info_hash, wake)
        assert shared.knows(info_hash) and info_hash in shared.info_hashes()
        with pytest.raises(SessionError):
            shared.register(info_hash, handler)  # (a session registers once the dormant entry is gone)
        streams = []
        for _ in range(2):
            stream = await anyio.connect_tcp("127.0.0.1", shared.listen_port)
            await stream.send(info_hash)
            streams.append(stream)
        with anyio.fail_after(5):
            while shared.waking(info_hash) < 2:
                await anyio.sleep(0.01)
            both_waiting.set()
            await two_handed.wait()
        assert wakes == 1 and len(handed) == 2
        for stream in streams:
            await stream.aclose()
        shared.unregister(info_hash)
        await shared.release()


async def test_a_wake_that_fails_closes_the_peer_and_the_listener_goes_on() -> None:
    async def handshaker(stream: anyio.abc.SocketStream, known: Any) -> tuple[bytes, Any]:
        info_hash = await stream.receive(20)
        if not known(info_hash):
            raise ValueError("unknown torrent")
        return info_hash, stream

    failed = anyio.Event()

    async def wake() -> None:
        failed.set()
        raise SessionError("its files are gone")

    async with SharedResources(_config(), handshaker=on_stream(handshaker)) as shared:
        await shared.acquire()
        shared.register_dormant(b"F" * 20, wake)
        await _dial_and_see_it_closed(shared.listen_port, b"F" * 20, failed)
        assert not shared.knows(b"F" * 20)  # (its owner registers it again if it may sleep again)
        routed = anyio.Event()

        def handler(stream: Any) -> bool:
            routed.set()
            return False

        shared.register(b"G" * 20, handler)
        await _dial_and_see_it_closed(shared.listen_port, b"G" * 20, routed)
        shared.unregister(b"G" * 20)
        await shared.release()


def port_taken(monkeypatch: pytest.MonkeyPatch, port: int) -> None:
    """anyio's TCP listeners refuse ``port`` (another program took it in the moment between)
    until ``monkeypatch.undo()``."""
    real = anyio.create_tcp_listener

    async def taken(**kw: Any) -> Any:
        if kw.get("local_port") == port:
            raise OSError(errno.EADDRINUSE, "Address already in use")
        return await real(**kw)

    monkeypatch.setattr(anyio, "create_tcp_listener", taken)


async def test_a_restart_keeps_the_port_taken_at_random_unless_it_was_taken_meanwhile(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """(A proxy or an interface changed at run time.) ``listen_port`` 0: the services start again
    on the port they listened on, or on any free one when another took it in the moment between;
    each time the sessions are told, so that their trackers hand out a port that moved."""
    told: list[int] = []
    async with SharedResources(_config()) as shared:
        await shared.acquire()
        shared.watch_services(b"t" * 20, lambda: told.append(shared.listen_port))
        port = shared.listen_port
        await shared.restart_services(same_port=True)
        assert shared.running and shared.listen_port == port and told == [port]

        port_taken(monkeypatch, port)
        await shared.restart_services(same_port=True)
        monkeypatch.undo()
        moved = shared.listen_port
        assert shared.running and moved not in (0, port) and told == [port, moved]
        async with await anyio.connect_tcp("127.0.0.1", moved):  # (listening there)
            pass
        await shared.release()


async def test_a_chosen_port_steps_over_the_outgoing_ports_and_taken_ones(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``choose_listen_port``: drawn outside the system's ports for outgoing connections, a taken
    one drawn again, and any free port the system gives after that many taken ones."""
    import torrent_engine.engine.shared as shared_module

    async with SharedResources(_config()) as shared:
        monkeypatch.setattr(shared_module, "outgoing_ports", lambda: (1024, 65000))
        drawn = {await shared.choose_listen_port() for _ in range(20)}
        assert all(65001 <= port <= 65535 for port in drawn)
        refused: list[int] = []
        real = shared.check_listen_port

        async def first_taken(port: int) -> None:
            refused.append(port)
            if len(refused) == 1:
                raise ConfigError("taken", "listen_port")
            await real(port)

        monkeypatch.setattr(shared, "check_listen_port", first_taken)
        port = await shared.choose_listen_port()
        assert len(refused) == 2 and port == refused[1] != refused[0]

        async def all_taken(port: int) -> None:
            raise ConfigError("taken", "listen_port")

        monkeypatch.setattr(shared, "check_listen_port", all_taken)
        assert 0 < await shared.choose_listen_port(tries=3)  # (the system's pick)
        monkeypatch.setattr(shared_module, "outgoing_ports", lambda: (1024, 65535))  # (nothing left)
        assert 0 < await shared.choose_listen_port()


async def test_an_address_no_port_can_be_listened_on_is_said_as_the_address_s_fault() -> None:
    """A listen host of no interface here (192.0.2.1, TEST-NET-1) fails every port alike: the
    check says ``listen_host``, and a choice of a free port does not draw twenty ports first to
    say "no port can be listened on" (a daemon's kept port was given up for a free one, then
    the start failed on ``listen_port``)."""
    config = Config(dht_enabled=False, port_mapping=False, lsd_enabled=False, listen_host="192.0.2.1")
    shared = SharedResources(config)  # (not started: the checks alone)
    checked: list[int] = []
    real = shared.check_listen_port

    async def counted(port: int) -> None:
        checked.append(port)
        await real(port)

    with pytest.raises(ConfigError) as refused:
        await shared.check_listen_port(6881)
    assert refused.value.field == "listen_host"
    assert refused.value.reason == "'192.0.2.1' cannot be listened on: Cannot assign requested address"
    shared.check_listen_port = counted  # type: ignore[method-assign]
    with pytest.raises(ConfigError) as refused:
        await shared.choose_listen_port()
    assert refused.value.field == "listen_host" and len(checked) == 1


@pytest.mark.parametrize(("text", "expected"), [
    ("40000\t50000\n", (40000, 50000)), ("10 70000", (1024, 65535)), ("x y", (32768, 60999)),
    ("9 8", (32768, 60999)), (None, (32768, 60999))])
def test_the_outgoing_ports_are_read_from_the_system(tmp_path: Any, text: str | None,
                                                     expected: tuple[int, int]) -> None:
    from torrent_engine.engine.shared import outgoing_ports

    path = tmp_path / "ip_local_port_range"
    if text is not None:
        path.write_text(text)
    assert outgoing_ports(path) == expected
