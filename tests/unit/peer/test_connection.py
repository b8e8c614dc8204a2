"""The async peer connection shell over real loopback TCP: connect/accept with every encryption
policy pair, refusals, bounded messages, timeouts and concurrent senders."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import random
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import pytest

from torrent_engine.errors import EncryptionError, PeerConnectionClosed, PeerError, PeerProtocolError
from torrent_engine.net.peer.connection import EncryptionPolicy, PeerConnection
from torrent_engine.net.peer.handshake import accept, connect
from torrent_engine.net.peer.messages import (
    Handshake,
    Have,
    Interested,
    NotInterested,
    Piece,
    Request,
    Unchoke,
)
from torrent_engine.net.peer.mse import CRYPTO_PLAINTEXT, CRYPTO_RC4, MseInitiator, skey_hash
from torrent_engine.net.peer.wire import PeerWire

INFO_HASH = bytes(range(20))
OTHER = bytes(range(1, 21))
CLIENT_ID = b"-TE0100-clientclient"
SERVER_ID = b"-TE0100-serverserver"

pytestmark = pytest.mark.anyio

Handler = Callable[[PeerConnection], Awaitable[None]]


@asynccontextmanager
async def server(
    encryption: EncryptionPolicy, handler: Handler | None = None, served: tuple[bytes, ...] = (INFO_HASH,)
) -> AsyncIterator[tuple[int, dict[str, Any]]]:
    """A listener on 127.0.0.1 that accepts one connection with ``accept`` and runs ``handler``."""
    outcome: dict[str, Any] = {}

    async def serve(stream: anyio.abc.SocketStream) -> None:
        try:
            conn = await accept(
                stream,
                lookup=lambda h: h in served,
                info_hashes=served,
                peer_id=SERVER_ID,
                encryption=encryption,
            )
        except PeerError as exc:
            outcome["error"] = exc
            await stream.aclose()
            return
        outcome["conn"] = conn
        async with conn:
            if handler is not None:
                try:
                    await handler(conn)
                except PeerError as exc:
                    outcome["error"] = exc

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, serve)
        with anyio.fail_after(20):
            yield port, outcome
        tg.cancel_scope.cancel()


async def echo_one(conn: PeerConnection) -> None:
    msg = await conn.receive()
    assert isinstance(msg, Interested)
    await conn.send_many([Unchoke(), Piece(3, 0, b"block-bytes")])


@pytest.mark.parametrize(
    ("client", "srv", "encrypted"),
    [
        ("disable", "disable", False),
        ("disable", "prefer", False),
        ("prefer", "prefer", False),  # an obfuscated handshake, then plaintext (libtorrent's way)
        ("prefer", "require", True),
        ("require", "require", True),
        ("require", "prefer", True),
        ("prefer", "disable", False),  # MSE refused: reconnect in plaintext
    ],
)
async def test_policy_pairs_that_agree(
    client: EncryptionPolicy, srv: EncryptionPolicy, encrypted: bool
) -> None:
    async with server(srv, echo_one) as (port, outcome):
        conn = await connect("127.0.0.1", port, info_hash=INFO_HASH, peer_id=CLIENT_ID, encryption=client)
        async with conn:
            assert conn.encrypted is encrypted
            assert conn.mse is (encrypted or (client == "prefer" and srv == "prefer"))  # MSE, chose plaintext
            assert conn.peer_id == SERVER_ID and conn.info_hash == INFO_HASH
            await conn.send(Interested())
            assert await conn.receive() == Unchoke()
            piece = await conn.receive()
            assert isinstance(piece, Piece) and bytes(piece.block) == b"block-bytes"
    assert outcome["conn"].peer_id == CLIENT_ID and outcome["conn"].encrypted is encrypted


@pytest.mark.parametrize(("client", "srv"), [("require", "disable"), ("disable", "require")])
async def test_policy_pairs_that_cannot_agree(client: EncryptionPolicy, srv: EncryptionPolicy) -> None:
    async with server(srv) as (port, outcome):
        with pytest.raises(PeerError):
            await connect("127.0.0.1", port, info_hash=INFO_HASH, peer_id=CLIENT_ID, encryption=client)
        await anyio.sleep(0.05)
    assert isinstance(outcome.get("error"), EncryptionError)


@pytest.mark.parametrize("client", ["disable", "require"])
async def test_unknown_torrent_is_refused(client: EncryptionPolicy) -> None:
    async with server("prefer", served=(OTHER,)) as (port, outcome):
        with pytest.raises(PeerError):
            await connect("127.0.0.1", port, info_hash=INFO_HASH, peer_id=CLIENT_ID, encryption=client)
        await anyio.sleep(0.05)
    assert isinstance(outcome.get("error"), PeerProtocolError)


async def test_accept_serves_several_torrents_and_reports_which() -> None:
    async with server("require", served=(OTHER, INFO_HASH)) as (port, outcome):
        conn = await connect("127.0.0.1", port, info_hash=INFO_HASH, peer_id=CLIENT_ID, encryption="require")
        await conn.aclose()
        await anyio.sleep(0.05)
    assert outcome["conn"].info_hash == INFO_HASH


async def test_oversized_message_closes_with_a_reason() -> None:
    async def send_huge(conn: PeerConnection) -> None:
        await conn.send_bytes(struct.pack(">IB", 1 << 24, 7))
        await anyio.sleep(1)

    async with server("disable", send_huge) as (port, _):
        conn = await connect("127.0.0.1", port, info_hash=INFO_HASH, peer_id=CLIENT_ID, encryption="disable")
        async with conn:
            with pytest.raises(PeerProtocolError, match="exceeds the limit"):
                await conn.receive()
            assert conn.close_reason is not None and "exceeds the limit" in conn.close_reason


async def test_peer_going_away_and_read_timeout() -> None:
    async with server("disable") as (port, _):
        conn = await connect("127.0.0.1", port, info_hash=INFO_HASH, peer_id=CLIENT_ID, encryption="disable")
        async with conn:
            with pytest.raises(PeerConnectionClosed, match="closed by the peer"):
                await conn.receive()

    async def stall(conn: PeerConnection) -> None:
        await anyio.sleep(5)

    async with server("disable", stall) as (port, _):
        conn = await connect(
            "127.0.0.1", port, info_hash=INFO_HASH, peer_id=CLIENT_ID, encryption="disable", read_timeout=0.2
        )
        async with conn:
            with pytest.raises(PeerConnectionClosed, match="no data"):
                await conn.receive()


class StalledStream(anyio.abc.ByteStream):
    """A peer that neither reads nor writes: its TCP window is full, so a send never completes."""

    async def receive(self, max_bytes: int = 65536) -> bytes:
        await anyio.sleep_forever()
        raise AssertionError

    async def send(self, item: bytes) -> None:
        await anyio.sleep_forever()

    async def send_eof(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


async def test_send_to_a_peer_that_reads_nothing_fails_instead_of_blocking_forever() -> None:
    # Every later send (HAVE to all peers, the choker's messages...) used to wait on it forever.
    conn = PeerConnection(StalledStream(), PeerWire(info_hash=INFO_HASH, peer_id=CLIENT_ID), read_timeout=0.2)
    with anyio.fail_after(10), pytest.raises(PeerConnectionClosed, match="send"):
        await conn.send_bytes(bytes(4))
    assert conn.closed


async def test_connect_refused_is_a_typed_error() -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()
    with pytest.raises(PeerConnectionClosed, match="cannot connect"):
        await connect("127.0.0.1", port, info_hash=INFO_HASH, peer_id=CLIENT_ID, encryption="prefer")


@asynccontextmanager
async def raw_peer(answer: Callable[[anyio.abc.SocketStream], Awaitable[None]]) -> AsyncIterator[int]:
    """A listener on 127.0.0.1 whose one connection ``answer`` drives byte by byte."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)

    async def serve(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await answer(stream)

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, serve)
        with anyio.fail_after(20):
            yield port
        tg.cancel_scope.cancel()


def sockets() -> set[str]:
    """The inodes of the sockets this process holds (Linux: its descriptors' links)."""
    mine = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(FileNotFoundError):  # (the listing's own descriptor, gone)
            link = os.readlink(f"/proc/self/fd/{fd}")
            if link.startswith("socket:["):
                mine.add(link[8:-1])
    return mine


_LOOPBACK = "0100007F"  # 127.0.0.1 as /proc/net/tcp writes it


def _connections(before: set[str] | frozenset[str] = frozenset(), *,
                 loopback_only: bool = False) -> list[tuple[int, int]]:
    """The (local port, remote port) of each TCP connection this process holds (looked up in
    /proc/net/tcp; a listener, whose remote port is 0, is not one), but those of ``before``;
    ``loopback_only``: those from 127.0.0.1 to 127.0.0.1 alone."""
    mine = sockets() - before
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            for row in list(rows)[1:]:
                fields = row.split()
                (here, ours), (there, theirs) = (f.rsplit(":", 1) for f in fields[1:3])
                if loopback_only and not here == there == _LOOPBACK:
                    continue
                if fields[9] in mine and int(theirs, 16):
                    out.append((int(ours, 16), int(theirs, 16)))
    return out


def held(remote: int, before: set[str] | frozenset[str]) -> int:
    """How many TCP connections this process holds to port ``remote``, leaving out the sockets
    in ``before``: one left open by an earlier test of this worker may be connected to a port an
    old listener had and this test's listener has again."""
    return sum(theirs == remote for _, theirs in _connections(before))


def connected(local: int, remote: int) -> int:
    """How many TCP connections this process holds from 127.0.0.1 port ``local`` to 127.0.0.1
    port ``remote`` (a socket another test left, from the same local port to another loopback
    address's same port number, is not one: a fresh clone's run counted 2)."""
    return _connections(loopback_only=True).count((local, remote))


async def test_messages_sent_with_the_handshake_reach_the_connection_in_order() -> None:
    """A dialed peer's messages that come in the same segment as its handshake are read by the
    connection, first, and those after them too."""
    peer = PeerWire(info_hash=INFO_HASH, peer_id=SERVER_ID)

    async def answer(stream: anyio.abc.SocketStream) -> None:
        got = b""
        while len(got) < 68:
            got += await stream.receive()
        await stream.send(peer.handshake() + peer.send(Have(1)) + peer.send(Unchoke()))
        await stream.send(peer.send(Have(2)))
        await anyio.sleep(5)

    async with raw_peer(answer) as port:
        conn = await connect("127.0.0.1", port, info_hash=INFO_HASH, peer_id=CLIENT_ID, encryption="disable")
        async with conn:
            assert conn.peer_id == SERVER_ID
            assert [await conn.receive() for _ in range(3)] == [Have(1), Unchoke(), Have(2)]


async def test_a_peer_dialed_by_its_address_needs_no_stream_and_no_second_socket(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The handshakes run in the loop's callbacks on the socket the loop connected: no anyio
    stream is opened and the socket is not duplicated onto a second transport."""
    peer = PeerWire(info_hash=INFO_HASH, peer_id=SERVER_ID)

    async def answer(stream: anyio.abc.SocketStream) -> None:
        got = b""
        while len(got) < 68:
            got += await stream.receive()
        await stream.send(peer.handshake() + peer.send(Unchoke()))
        await anyio.sleep(5)

    async def no_stream(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an anyio stream was opened")

    def no_dup(self: socket.socket) -> socket.socket:
        raise AssertionError("the socket was duplicated")

    async with raw_peer(answer) as port:
        monkeypatch.setattr(anyio, "connect_tcp", no_stream)
        monkeypatch.setattr(socket.socket, "dup", no_dup)
        conn = await connect("127.0.0.1", port, info_hash=INFO_HASH, peer_id=CLIENT_ID, encryption="disable")
        async with conn:
            assert await conn.receive() == Unchoke()


@pytest.mark.parametrize("encryption", ["disable", "prefer"])
async def test_a_dialed_peer_that_never_answers_times_out_and_leaves_no_socket(
        encryption: EncryptionPolicy) -> None:
    before = sockets()

    async def answer(stream: anyio.abc.SocketStream) -> None:  # reads, says nothing, ends when we do
        with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError):
            while True:
                await stream.receive()

    async with raw_peer(answer) as port:
        with pytest.raises(PeerConnectionClosed, match=f"handshake with 127.0.0.1:{port} timed out"):
            await connect("127.0.0.1", port, info_hash=INFO_HASH, peer_id=CLIENT_ID, encryption=encryption,
                          timeout=0.3)
        with anyio.move_on_after(0.3):  # a dial called off by its owner
            await connect("127.0.0.1", port, info_hash=INFO_HASH, peer_id=CLIENT_ID, encryption=encryption)
        with anyio.fail_after(5):
            while held(port, before):  # (our dialing ends)
                await anyio.sleep(0.01)


async def test_a_dialed_peer_with_another_torrent_is_a_protocol_error() -> None:
    peer = PeerWire(info_hash=OTHER, peer_id=SERVER_ID)

    async def answer(stream: anyio.abc.SocketStream) -> None:
        await stream.receive()
        await stream.send(peer.handshake())
        await anyio.sleep(5)

    async with raw_peer(answer) as port:
        with pytest.raises(PeerProtocolError, match="handshake for another torrent"):
            await connect("127.0.0.1", port, info_hash=INFO_HASH, peer_id=CLIENT_ID, encryption="disable")


async def test_a_peer_named_by_its_host_name_is_dialed_too() -> None:
    async with server("require", echo_one) as (port, _):
        conn = await connect("localhost", port, info_hash=INFO_HASH, peer_id=CLIENT_ID, encryption="require")
        async with conn:
            await conn.send(Interested())
            assert await conn.receive() == Unchoke()


async def test_concurrent_senders_do_not_interleave_messages() -> None:
    count = 200
    received: list[object] = []

    async def collect(conn: PeerConnection) -> None:
        conn.wire.set_metadata(count, lambda i: 16384)
        for _ in range(3 * count):
            received.append(await conn.receive())

    async with server("require", collect) as (port, outcome):
        conn = await connect("127.0.0.1", port, info_hash=INFO_HASH, peer_id=CLIENT_ID, encryption="require")
        async with conn:

            async def blocks() -> None:
                for i in range(count):
                    await conn.send(Piece(i, 0, bytes([i % 256]) * 16384))

            async def requests() -> None:
                for i in range(count):
                    await conn.send_many([Have(i), Request(i, 0, 16384)])

            async with anyio.create_task_group() as tg:
                tg.start_soon(blocks)
                tg.start_soon(requests)
            with anyio.fail_after(10):
                while len(received) < 3 * count and "error" not in outcome:
                    await anyio.sleep(0.01)
    assert "error" not in outcome
    pieces = [m for m in received if isinstance(m, Piece)]
    assert [p.index for p in pieces] == list(range(count))
    assert all(bytes(p.block) == bytes([p.index % 256]) * 16384 for p in pieces)
    assert [m.index for m in received if isinstance(m, Request)] == list(range(count))
    assert [m.index for m in received if isinstance(m, Have)] == list(range(count))


@pytest.mark.parametrize("provide", [CRYPTO_RC4, CRYPTO_PLAINTEXT])
async def test_accept_mse_without_initial_payload(provide: int) -> None:
    """An MSE initiator may send an empty IA and its BT handshake after step 4 (RC4 or plain)."""
    async with server("prefer", echo_one) as (port, outcome):
        stream = await anyio.connect_tcp("127.0.0.1", port)
        async with stream:
            mse = MseInitiator(INFO_HASH, crypto_provide=provide, randbytes=random.Random(5).randbytes)
            await stream.send(mse.start())
            while mse.result is None:
                out = mse.receive_data(await stream.receive())
                if out:
                    await stream.send(out)
            enc = mse.result.encrypt
            wire = PeerWire(info_hash=INFO_HASH, peer_id=CLIENT_ID)
            raw = wire.handshake() + wire.send(Interested())
            await stream.send(enc.update(raw) if enc is not None else raw)
            dec = mse.result.decrypt
            wire.receive_data(mse.result.remaining)
            got: list[object] = []
            while len(got) < 3:
                msg = wire.next_event()
                if msg is None:
                    data = await stream.receive()
                    wire.receive_data(dec.update(data) if dec is not None else data)
                else:
                    got.append(msg)
    assert isinstance(got[0], Handshake) and got[0].peer_id == SERVER_ID
    assert got[1] == Unchoke() and isinstance(got[2], Piece)
    assert outcome["conn"].encrypted is (provide == CRYPTO_RC4)


async def test_accept_times_out_with_a_typed_error() -> None:
    """A peer that connects and says nothing is dropped after the handshake timeout."""
    outcome: dict[str, Any] = {}

    async def serve(stream: anyio.abc.SocketStream) -> None:
        try:
            await accept(stream, lookup=lambda h: True, peer_id=SERVER_ID, timeout=0.2)
        except PeerError as exc:
            outcome["error"] = exc
        await stream.aclose()

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, serve)
        async with await anyio.connect_tcp("127.0.0.1", port) as silent:
            await silent.send(b"\x13BitTorrent")  # a prefix, then silence
            with anyio.fail_after(10):
                while "error" not in outcome:
                    await anyio.sleep(0.02)
        tg.cancel_scope.cancel()
    assert isinstance(outcome["error"], PeerConnectionClosed)


async def test_an_incoming_peer_that_stops_midway_leaves_no_socket() -> None:
    """A peer that sends part of an MSE handshake and goes silent: the answer times out, and the
    socket taken from the listener's stream is closed with it. (Counted by the connection's two
    ports: a connection of another's that reached the listener is not this one.)"""
    errors: dict[int, Exception] = {}  # the peer's port -> the answer's error

    async def serve(stream: anyio.abc.SocketStream) -> None:
        try:
            await accept(stream, lookup=lambda h: True, peer_id=SERVER_ID, timeout=0.3)
        except PeerError as exc:
            errors[stream.extra(anyio.abc.SocketAttribute.remote_port)] = exc
        await stream.aclose()

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, serve)
        async with await anyio.connect_tcp("127.0.0.1", port) as silent:
            theirs = silent.extra(anyio.abc.SocketAttribute.local_port)
            await silent.send(bytes([7]) * 100)  # (an MSE public key and padding, then nothing)
            with anyio.fail_after(10):
                while theirs not in errors:
                    await anyio.sleep(0.02)
            with anyio.fail_after(5):  # (a transport's socket closes on the loop's next turn)
                while connected(port, theirs):  # (the answering end)
                    await anyio.sleep(0.01)
            assert connected(theirs, port) == 1  # (the silent end is open: the answer ended it)
        tg.cancel_scope.cancel()
    error = errors[theirs]
    assert isinstance(error, PeerConnectionClosed) and "not completed within 0.3 s" in str(error)


@pytest.mark.parametrize("anyio_backend", [("asyncio", {"use_uvloop": False}),
                                           ("asyncio", {"use_uvloop": True})], ids=["asyncio", "uvloop"])
@pytest.mark.parametrize("turns", [0, 1, 2])
@pytest.mark.parametrize("peer_left", [False, True], ids=["peer-there", "peer-left"])
async def test_an_answer_cancelled_as_it_starts_leaves_no_unread_error(turns: int, peer_left: bool) -> None:
    """An answer on an accepted socket, cancelled while its transport is being made (the
    torrent removed, the engine stopping): the connection's loss still reaches the handshakes,
    and their error must not be left in a future nobody reads (the loop would report "Future
    exception was never retrieved" when it is collected)."""
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    before = loop.get_exception_handler()  # (the test runner's, which may serve the next tests)
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        for _ in range(10):
            ours, theirs = socket.socketpair()
            if peer_left:
                theirs.close()

            async def answer(sock: socket.socket = ours) -> None:
                with contextlib.suppress(PeerError):
                    await accept(sock, lookup=lambda h: True, peer_id=SERVER_ID, timeout=5)

            async with anyio.create_task_group() as tg:
                tg.start_soon(answer)
                for _ in range(turns):
                    await asyncio.sleep(0)
                tg.cancel_scope.cancel()
            theirs.close()
            for _ in range(3):
                await asyncio.sleep(0)
            assert ours.fileno() == -1  # (closed by the cancelled answer)
        gc.collect()
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(before)
    assert [context.get("message") for context in reported] == []


async def test_accept_mse_with_lookup_alone() -> None:
    """``lookup`` answers both the info-hash (truthy) and HASH('req2', info_hash) (the info-hash)."""
    table: dict[bytes, object] = {INFO_HASH: True, skey_hash(INFO_HASH): INFO_HASH}
    outcome: dict[str, Any] = {}

    async def serve(stream: anyio.abc.SocketStream) -> None:
        conn = await accept(stream, lookup=table.get, peer_id=SERVER_ID, encryption="require")
        outcome["info_hash"] = conn.info_hash
        await conn.aclose()

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, serve)
        conn = await connect("127.0.0.1", port, info_hash=INFO_HASH, peer_id=CLIENT_ID, encryption="require")
        assert conn.encrypted
        await conn.aclose()
        with anyio.fail_after(10):
            while "info_hash" not in outcome:
                await anyio.sleep(0.02)
        tg.cancel_scope.cancel()
    assert outcome["info_hash"] == INFO_HASH


# -- run(): every read's messages in one synchronous pass ----------------------------------


class Wrapped(anyio.abc.ByteStream):
    """A TCP stream behind a plain ByteStream (as uTP's is): the connection keeps the stream."""

    def __init__(self, inner: anyio.abc.ByteStream) -> None:
        self.inner = inner

    async def receive(self, max_bytes: int = 65536) -> bytes:
        return await self.inner.receive(max_bytes)

    async def send(self, item: bytes) -> None:
        await self.inner.send(item)

    async def send_eof(self) -> None:
        await self.inner.send_eof()

    async def aclose(self) -> None:
        await self.inner.aclose()


def stream_of_blocks(count: int) -> list[Piece | Have]:
    msgs: list[Piece | Have] = []
    for i in range(count):
        msgs.append(Piece(i % 7, (i // 7) * 16384, bytes([i % 251]) * 16384))
        if i % 50 == 49:
            msgs.append(Have(i % 7))
    return msgs


@pytest.mark.parametrize("encryption", ["disable", "require"])
@pytest.mark.parametrize("tcp", [True, False])
async def test_run_hands_over_every_message_in_order(
        encryption: EncryptionPolicy, tcp: bool) -> None:
    sent = stream_of_blocks(300)
    requests: list[object] = []

    async def serve(conn: PeerConnection) -> None:
        for i in range(0, len(sent), 20):
            await conn.send_many(sent[i:i + 20])
        # (closed once the client said it saw everything: a close aborts what is still queued to
        # send, which under load was the last blocks)
        with anyio.fail_after(10):
            while len(requests) < 3 or not isinstance(requests[-1], NotInterested):
                requests.append(await conn.receive())

    async with server(encryption, serve) as (port, _):
        async def opener(host: str, p: int, timeout: float) -> anyio.abc.ByteStream:
            stream = await anyio.connect_tcp(host, p)
            return stream if tcp else Wrapped(stream)

        conn = await connect("127.0.0.1", port, info_hash=INFO_HASH, peer_id=CLIENT_ID, encryption=encryption,
                             opener=opener)
        assert (type(conn).__name__ == "ProtocolPeerConnection") is tcp
        seen: list[object] = []
        kept: list[Piece] = []
        batches = 0

        def all_seen() -> None:
            if len(seen) == len(sent):
                conn.write_many([NotInterested()])

        def fast(batch: list[Any]) -> int:
            nonlocal batches
            batches += 1
            done = 0
            for msg in batch:
                if not isinstance(msg, Piece):
                    break
                seen.append(Piece(msg.index, msg.begin, bytes(msg.block)))  # a block is lent: copied
                kept.append(msg)
                done += 1
            if batches <= 3:  # written from inside the pass, sent without an await of ours
                conn.write_many([Request(0, 0, 16384)])
            all_seen()
            return done

        async def slow(msg: Any) -> None:
            seen.append(msg)
            all_seen()

        async with conn:
            with anyio.fail_after(10), pytest.raises(PeerConnectionClosed):
                await conn.run(fast, slow)  # until the server, done, closes the connection
        assert seen == sent
        assert batches < len(sent)  # many messages per pass
        if tcp:  # a block kept past the call (a view into the reused receive buffer) fails loudly
            with pytest.raises(ValueError):  # (the last: the first may have come with the handshake,
                bytes(kept[-1].block)  # and waited, copied, for run)
    assert requests == [Request(0, 0, 16384)] * 3 + [NotInterested()]


async def test_run_raises_what_the_fast_handler_raised() -> None:
    async def serve(conn: PeerConnection) -> None:
        await conn.send_many([Have(1), Have(2)])
        await anyio.sleep(5)

    async with server("disable", serve) as (port, _):
        conn = await connect("127.0.0.1", port, info_hash=INFO_HASH, peer_id=CLIENT_ID, encryption="disable")

        def fast(batch: list[Any]) -> int:
            raise KeyError("bug")

        async def slow(msg: Any) -> None:
            raise AssertionError("not reached")

        async with conn:
            with pytest.raises(KeyError):
                await conn.run(fast, slow)


async def test_run_goes_back_to_the_fast_handler_after_a_message_it_left() -> None:
    sent = [Have(i) for i in range(40)]

    async def serve(conn: PeerConnection) -> None:
        await conn.send_many(sent)
        await anyio.sleep(5)

    async with server("disable", serve) as (port, _):
        conn = await connect("127.0.0.1", port, info_hash=INFO_HASH, peer_id=CLIENT_ID, encryption="disable")
        fast_got: list[object] = []
        slow_got: list[object] = []

        def fast(batch: list[Any]) -> int:
            done = 0
            for msg in batch:
                if msg.index % 10 == 5:  # these need an await
                    break
                fast_got.append(msg)
                done += 1
            return done

        async def slow(msg: Any) -> None:
            slow_got.append(msg)

        async with conn:
            with anyio.move_on_after(1):
                await conn.run(fast, slow)
        assert slow_got == [Have(i) for i in (5, 15, 25, 35)]
        assert fast_got == [m for m in sent if m not in slow_got]


async def test_run_resumes_reading_after_a_full_queue() -> None:
    """Messages that came while nobody ran the connection fill its queue and stop the reading
    (flow control); run() takes them all and the reading goes on."""
    sent = [Have(i % 1000) for i in range(3000)]

    async def serve(conn: PeerConnection) -> None:
        for i in range(0, len(sent), 600):  # more than a full queue in the first read
            await conn.send_many(sent[i:i + 600])
            await anyio.sleep(0.02)
        await anyio.sleep(10)

    async with server("disable", serve) as (port, _):
        conn = await connect("127.0.0.1", port, info_hash=INFO_HASH, peer_id=CLIENT_ID, encryption="disable")
        got: list[object] = []

        def fast(batch: list[Any]) -> int:
            got.extend(batch)
            return len(batch)

        async def slow(msg: Any) -> None:
            raise AssertionError("not reached")

        async with conn:
            await anyio.sleep(0.3)  # messages arrive and queue up, nobody runs the connection
            with anyio.move_on_after(5):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(conn.run, fast, slow)
                    while len(got) < len(sent):
                        await anyio.sleep(0.01)
                    tg.cancel_scope.cancel()
        assert got == sent


async def test_reading_stops_while_a_message_waits_for_the_owner() -> None:
    """A block the fast handler leaves (it waits for memory, say) stops the reading at once: the
    blocks behind it stay in the socket, not copied into the queue, until the owner catches up."""
    sent = [Piece(i % 7, (i // 7) * 16384, bytes([i % 251]) * 16384) for i in range(300)]

    async def serve(conn: PeerConnection) -> None:
        for i in range(0, len(sent), 20):
            await conn.send_many(sent[i:i + 20])
        await anyio.sleep(10)

    async with server("disable", serve) as (port, _):
        conn = await connect("127.0.0.1", port, info_hash=INFO_HASH, peer_id=CLIENT_ID, encryption="disable")
        assert type(conn).__name__ == "ProtocolPeerConnection"
        proto = conn._protocol  # type: ignore[attr-defined]
        got: list[tuple[int, int, bytes]] = []
        release = anyio.Event()
        held: list[int] = []

        def fast(batch: list[Any]) -> int:
            done = 0
            for msg in batch:
                if len(got) == 10 and not release.is_set():
                    break  # the eleventh block must wait
                got.append((msg.index, msg.begin, bytes(msg.block)))
                done += 1
            return done

        async def slow(msg: Any) -> None:
            await anyio.sleep(0.5)  # meanwhile the peer goes on sending
            held.append(len(proto.queue))
            assert proto._paused
            release.set()
            got.append((msg.index, msg.begin, bytes(msg.block)))

        async with conn:
            with anyio.move_on_after(5):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(conn.run, fast, slow)
                    while len(got) < len(sent):
                        await anyio.sleep(0.01)
                    tg.cancel_scope.cancel()
        assert got == [(m.index, m.begin, m.block) for m in sent]
        assert held and held[0] <= 64  # at most the rest of one read, not the 290 blocks behind it


async def _send_blocks(conn: PeerConnection) -> None:
    for i in range(256):  # 4 MiB of blocks, sent as fast as the socket takes them
        await conn.send_many([Piece(i % 7, 0, b"b" * 16384)])


class _Reader:
    """``conn.run``'s handlers for the receive-buffer tests: every message taken on the fast
    path and counted, and the largest receive buffer seen at a read."""

    def __init__(self, conn: PeerConnection) -> None:
        self.conn = conn
        self.got = 0
        self.largest = 0

    def buffer(self) -> int:
        return len(self.conn._protocol._buf)  # type: ignore[attr-defined]

    def fast(self, batch: list[Any]) -> int:
        self.got += len(batch)
        self.largest = max(self.largest, self.buffer())
        return len(batch)

    async def slow(self, msg: Any) -> None:
        pass

    async def until(self, count: int) -> None:
        while self.got < count:
            await anyio.sleep(0.01)


async def test_the_receive_buffer_is_small_for_an_idle_peer_and_grows_for_a_busy_one() -> None:
    from torrent_engine.net.peer.protocol import BUFFER_SIZE, START_BUFFER

    go = anyio.Event()

    async def serve(conn: PeerConnection) -> None:
        await conn.send_many([Have(1), Have(2)])
        await go.wait()
        await _send_blocks(conn)
        await anyio.sleep(5)

    async with server("disable", serve) as (port, _):
        conn = await connect("127.0.0.1", port, info_hash=INFO_HASH, peer_id=CLIENT_ID, encryption="disable")
        async with conn:
            reader = _Reader(conn)
            assert await conn.receive() == Have(1) and await conn.receive() == Have(2)
            assert reader.buffer() == START_BUFFER  # an idle peer costs 64 KiB, not 1 MiB
            go.set()
            with anyio.move_on_after(5):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(conn.run, reader.fast, reader.slow)
                    await reader.until(256)
                    tg.cancel_scope.cancel()
            assert reader.got == 256
            assert START_BUFFER < reader.buffer() <= BUFFER_SIZE + BUFFER_SIZE // 4


async def test_the_receive_buffer_grows_no_further_than_its_ceiling_and_shrinks_to_a_lowered_one() -> None:
    from torrent_engine.net.peer.protocol import BUFFER_SIZE, START_BUFFER

    phase = [anyio.Event(), anyio.Event()]

    async def serve(conn: PeerConnection) -> None:
        for go in phase:
            await go.wait()
            await _send_blocks(conn)
        await anyio.sleep(5)

    async with server("disable", serve) as (port, _):
        conn = await connect("127.0.0.1", port, info_hash=INFO_HASH, peer_id=CLIENT_ID, encryption="disable")
        async with conn:
            reader = _Reader(conn)
            with anyio.move_on_after(10):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(conn.run, reader.fast, reader.slow)
                    phase[0].set()
                    await reader.until(256)
                    assert reader.largest > BUFFER_SIZE // 2  # a busy peer's buffer grew (to 1 MiB)
                    ceiling = 2 * START_BUFFER
                    conn.set_max_buffer(ceiling)
                    reader.largest = 0
                    phase[1].set()
                    await reader.until(512)
                    tg.cancel_scope.cancel()
            assert reader.got == 512
            # shrunk at the first read after it was lowered, and never grew past it again
            assert START_BUFFER <= reader.largest <= ceiling + ceiling // 4
            conn.set_max_buffer(1)  # clamped: never below START_BUFFER
            assert conn._protocol._max == START_BUFFER  # type: ignore[attr-defined]
