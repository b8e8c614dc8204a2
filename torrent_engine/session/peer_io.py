"""Glue between the peer wire shell (``net/peer/connection.py``) and sessions.

``open_connection`` dials a peer for a session; ``handshaker_for`` gives SharedResources the
function that answers incoming connections (plaintext or MSE, per the encryption policy) and
tells it which torrent they asked for. Both hand back a ``PeerLink``: the connection plus what
the session needs to know about it.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Awaitable, Callable, Iterable

import anyio
import anyio.abc

from ..config import Config
from ..engine.shared import Handshaker, SharedResources
from ..errors import PeerConnectionClosed, PeerError, ProxyError, UtpError
from ..net.peer.connection import BatchHandler, MessageHandler, PeerConnection
from ..net.peer.handshake import accept, connect
from ..net.peer.messages import Message
from ..net.peer.peer_id import client_name
from ..net.proxy.dial import open_connection as open_tunnel

log = logging.getLogger(__name__)

Opener = Callable[[str, int, float], Awaitable[anyio.abc.ByteStream]]


class PeerLink:
    """A handshaken connection to one peer, as the session uses it."""

    def __init__(self, conn: PeerConnection, remote: tuple[str, int], transport: str = "tcp") -> None:
        self.conn = conn
        self.transport = transport  # "tcp" or "utp"
        self.remote_address = remote
        self.peer_id = conn.peer_id
        self.peer_id_client = client_name(conn.peer_id)

    @property
    def fast(self) -> bool:
        """Whether both sides speak the Fast extension (BEP 6)."""
        return self.conn.wire.fast

    @property
    def extension(self) -> bool:
        """Whether both sides speak the extension protocol (BEP 10)."""
        return self.conn.wire.extension

    @property
    def encrypted(self) -> bool:
        """Whether the link is MSE-encrypted."""
        return self.conn.encrypted

    @property
    def mse(self) -> bool:
        """Whether its handshake went through MSE (its payload RC4 or plaintext after it)."""
        return self.conn.mse

    def set_metadata(self, num_pieces: int, piece_size: Callable[[int], int]) -> None:
        """Tell the wire codec the torrent's piece count and sizes (once the metadata is known)."""
        self.conn.set_metadata(num_pieces, piece_size)

    def set_max_buffer(self, size: int) -> None:
        """The most bytes the connection's receive buffer may grow to."""
        self.conn.set_max_buffer(size)

    async def receive(self) -> Message:
        """The next message from the peer."""
        return await self.conn.receive()

    def receive_nowait(self) -> Message | None:
        """The next message if one is already decoded, else None."""
        return self.conn.receive_nowait()

    async def send_many(self, msgs: Iterable[Message]) -> None:
        """Send ``msgs`` in one write."""
        await self.conn.send_many(msgs)

    async def run(self, fast: BatchHandler, slow: MessageHandler) -> None:
        """Receive until the connection ends: each read's messages to ``fast`` synchronously,
        the ones it leaves to ``slow`` (see ``PeerConnection.run``)."""
        await self.conn.run(fast, slow)

    def write(self, data: bytes) -> None:
        """Queue encoded protocol bytes without waiting (see ``write_many``)."""
        self.conn.write(data)

    def write_pieces(self, pieces: Iterable[tuple[int, int, bytes | memoryview]]) -> None:
        """Queue ``piece`` messages for ``(index, begin, block)`` as one write, without waiting."""
        self.conn.write_pieces(pieces)

    def write_many(self, msgs: Iterable[Message]) -> None:
        """Queue ``msgs`` as one write without waiting (sent at once over TCP; see ``drain``)."""
        self.conn.write_many(msgs)

    async def drain(self) -> None:
        """Wait until what ``write_many`` queued is on its way (bounded by the read timeout)."""
        await self.conn.drain()

    async def aclose(self) -> None:
        """Close the connection."""
        await self.conn.aclose()


async def open_connection(host: str, port: int, *, info_hash: bytes, peer_id: bytes, config: Config,
                          num_pieces: int | None, piece_size: Callable[[int], int] | None,
                          shared: SharedResources | None = None, transport: str | None = None) -> PeerLink:
    """Dial ``host:port`` and complete the handshakes (MSE per ``config.encryption``).

    The transport (``transport``, else ``config.transport``; hole punching dials over uTP only):
    "any" dials uTP first (on ``shared``'s UDP socket; without ``shared`` there is none) and TCP
    as well when uTP fails or has no link after ``config.utp_head_start``: the first handshaken
    link wins (a peer whose uTP stayed silent is then dialed over TCP alone for a while);
    "tcp_first" dials TCP first and uTP as well after the same head start; "utp" uses uTP only;
    "tcp" TCP only. With a proxy for peer connections
    (``Config.proxied_peers``) the peer is dialed over TCP through it alone (uTP is not proxied)."""
    mode = transport if transport is not None else config.transport
    utp = shared.utp if shared is not None else None
    proxy = config.proxied_peers()

    async def dial(opener: Opener | None) -> PeerConnection:  # (None: TCP, bound by config.netbind())
        return await connect(host, port, info_hash=info_hash, peer_id=peer_id, encryption=config.encryption,
                             timeout=config.connect_timeout, num_pieces=num_pieces, piece_size=piece_size,
                             read_timeout=config.keepalive_interval + 30.0, opener=opener,
                             bind=config.netbind())

    if proxy is not None:
        if transport == "utp":
            raise PeerConnectionClosed(f"cannot dial {host}:{port} over uTP: peers go through the proxy")

        async def open_proxied(h: str, p: int, timeout: float) -> anyio.abc.ByteStream:
            try:
                return await open_tunnel(proxy, h, p, timeout=timeout, bind=config.netbind())
            except ProxyError as exc:
                raise PeerConnectionClosed(f"cannot connect to {h}:{p}: {exc}") from None

        return PeerLink(await dial(open_proxied), (host, port))
    if mode == "tcp" or (utp is None and mode in ("any", "tcp_first")):
        return PeerLink(await dial(None), (host, port))
    if utp is None:
        raise PeerConnectionClosed(f"cannot dial {host}:{port} over uTP: no uTP socket is running")
    if mode == "any" and utp.is_silent(host, port):
        return PeerLink(await dial(None), (host, port))
    answered = False  # whether the uTP connect got its ST_STATE (the peer speaks uTP)

    async def open_utp(h: str, p: int, timeout: float) -> anyio.abc.ByteStream:
        nonlocal answered
        try:
            with anyio.fail_after(min(timeout, config.utp_connect_timeout)):
                stream = await utp.connect(h, p)
        except (TimeoutError, UtpError) as exc:
            utp.note_silent(h, p)
            why = str(exc) or "timed out"
            raise PeerConnectionClosed(f"uTP connect to {h}:{p} failed: {why}") from None
        answered = True
        return stream

    if mode == "utp":
        return PeerLink(await dial(open_utp), (host, port), transport="utp")
    if mode == "tcp_first":
        return await _race(lambda: dial(open_utp), lambda: dial(None), (host, port), config.utp_head_start,
                           tcp_first=True)
    link = await _race(lambda: dial(open_utp), lambda: dial(None), (host, port), config.utp_head_start)
    if link.transport == "tcp" and not answered:
        utp.note_silent(host, port)  # (TCP next time, without the head start)
    return link


Dial = Callable[[], Awaitable[PeerConnection]]


async def _race(utp_dial: Dial, tcp_dial: Dial, remote: tuple[str, int], head_start: float, *,
                tcp_first: bool = False) -> PeerLink:
    """uTP first (``tcp_first``: TCP); the other as well once the first failed or ``head_start``
    passed without a link. The first handshaken link wins and the other dial is called off (or
    its link closed, if it too got there). Both failing raises the TCP dial's error.

    The loser is called off by a cancel scope of its own, so that its task ends as a task that
    returned: a task of a task group that ends cancelled is kept by anyio in a reference cycle
    (its ``CancelledError``, whose traceback holds the frames of the whole dial) that only the
    garbage collector frees, a few hundred a second while many torrents start."""
    won: list[PeerLink] = []
    errors: dict[str, Exception] = {}
    first_failed = anyio.Event()
    off = {"utp": anyio.CancelScope(), "tcp": anyio.CancelScope()}  # (each dial's, called off by the winner)
    (first, first_dial), (second, second_dial) = (
        (("tcp", tcp_dial), ("utp", utp_dial)) if tcp_first else (("utp", utp_dial), ("tcp", tcp_dial)))

    async def attempt(transport: str, dial: Dial, wait: float = 0.0) -> None:
        conn: PeerConnection | None = None
        with off[transport]:
            if wait > 0:  # (the second: the first's head start, cut short by its failure)
                with anyio.move_on_after(wait):
                    await first_failed.wait()
            try:
                conn = await dial()
            except (PeerError, OSError) as exc:
                errors[transport] = exc
                if transport == first:
                    log.debug("%s to %s:%d failed (%s); %s now", first, remote[0], remote[1], exc, second)
                    first_failed.set()
                return
        if conn is None:
            return  # called off: the other transport won
        link = PeerLink(conn, remote, transport=transport)
        if won:  # the other transport got there first
            with anyio.CancelScope(shield=True):
                await link.aclose()
            return
        won.append(link)
        for other, scope in off.items():
            if other != transport:
                scope.cancel()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(attempt, first, first_dial)
            tg.start_soon(attempt, second, second_dial, head_start)
    except BaseException:
        # the dial itself was cancelled (a pause) as a link won: nobody will use or close that
        # link, and the peer would keep it as a live connection, refusing our next one as a
        # duplicate of its peer id
        for link in won:
            with anyio.CancelScope(shield=True):
                await link.aclose()
        raise
    if won:
        return won[0]
    raise errors.get("tcp") or errors["utp"]


def handshaker_for(shared: SharedResources) -> Handshaker:
    """The function SharedResources uses to answer an incoming connection."""

    async def handshake(stream: anyio.abc.ByteStream | socket.socket,
                        known: Callable[[bytes], bool]) -> tuple[bytes, PeerLink]:
        conn = await accept(stream, lookup=known, peer_id=shared.peer_id, encryption=shared.config.encryption,
                            info_hashes=shared.info_hashes, timeout=shared.config.handshake_timeout,
                            read_timeout=shared.config.keepalive_interval + 30.0,
                            prefer_rc4=shared.config.prefer_rc4)
        remote = conn.remote if conn.remote is not None else ("", 0)
        transport = "tcp" if isinstance(stream, (socket.socket, anyio.abc.SocketStream)) else "utp"
        return conn.info_hash, PeerLink(conn, remote, transport)

    return handshake
