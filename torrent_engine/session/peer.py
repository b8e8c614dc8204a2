"""What a session knows about one connected peer: its choke/interest state, rates and queues.

The requests in flight at the peer are not here: the picker is their one record (``in_flight``,
``expired``); the session asks it.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import anyio

from ..errors import PeerError
from ..formats.bitfield import Bitfield
from ..net.peer import messages as m
from ..net.peer.extensions import PexState
from .peer_io import PeerLink

DEFAULT_PEER_REQQ = 250  # BEP 10: libtorrent's default when the peer sends no 'reqq'


# a connection's state (``PeerState.wire_state``, ``JobPeer.wire``): we want its pieces, it chokes
# us, it wants ours, we choke it, unchoked as our optimistic unchoke, snubbed (it sent nothing we
# asked for lately), its payload RC4-encrypted, its handshake through MSE (then RC4 or plaintext)
WIRE_STATES = ("am_interested", "peer_choking", "peer_interested", "am_choking", "optimistic",
               "snubbed", "rc4", "mse")


@dataclass(eq=False)
class PeerState:
    """One connected peer (all mutated on the event loop)."""

    host: str
    port: int
    link: PeerLink
    incoming: bool
    have: Bitfield
    client: str = ""
    # on this host or its local network (loopback, private, link-local): past the global limits
    # while they do not apply there (``Bandwidth.set_local_limited``)
    local: bool = False
    am_choking: bool = True
    am_interested: bool = False
    peer_choking: bool = True
    peer_interested: bool = False
    fast: bool = False
    extension: bool = False
    reqq: int = DEFAULT_PEER_REQQ
    ut_metadata: int = 0  # the peer's id for ut_metadata messages (0: it has none)
    ut_pex: int = 0  # the peer's id for ut_pex messages (0: it has none)
    ut_holepunch: int = 0  # the peer's id for ut_holepunch messages (0: it has none; BEP 55)
    lt_donthave: int = 0  # the peer's id for lt_donthave messages (0: it has none; BEP 54)
    # it told us of no piece at first (HAVE NONE, an empty bitfield or none): it may be a BEP 16
    # super-seed, which hands out its next piece once it hears our HAVE of the last: it is told
    # every HAVE, also of pieces it says it has
    started_empty: bool = True
    lost_asks: int = 0  # its requests of pieces we lost, rejected (see ``Uploader.refuse_lost``)
    listen_port: int | None = None  # from its extension handshake ('p')
    pex: PexState = field(default_factory=PexState)
    last_pex: float = -math.inf
    allowed_fast: set[int] = field(default_factory=set)
    upload_queue: deque[m.Request] = field(default_factory=deque)
    upload_wakeup: anyio.Event = field(default_factory=anyio.Event)
    # starts the peer's upload loop in its connection's task group, at its first queued request
    # (``queue_upload``): a peer that asks for nothing, a seed we download from, costs no task.
    # None before the connection runs (``PeerHandler.serve`` sets it), once started, or once over.
    serve_soon: Callable[[], object] | None = None
    connected_at: float = 0.0
    last_block: float = 0.0
    last_sent: float = 0.0
    snubbed: bool = False
    slow_start: bool = True
    queue_target: int = 4
    downloaded: int = 0
    uploaded: int = 0
    down_window: int = 0
    up_window: int = 0
    down_rate: float = 0.0
    up_rate: float = 0.0
    unchoked_at: float | None = None
    uploaded_at_unchoke: int = 0
    closed: bool = False
    close_reason: str = ""
    # what closing it cancels: the scopes its exchange and its uploads run in (each task then
    # returns, where a task that ends cancelled is kept in a reference cycle by anyio)
    scopes: tuple[anyio.CancelScope, ...] = ()

    @property
    def key(self) -> tuple[str, int]:
        """The peer's ``(host, port)``."""
        return (self.host, self.port)

    @property
    def address(self) -> str:
        """The peer as ``host:port``."""
        return f"{self.host}:{self.port}"

    @property
    def is_seed(self) -> bool:
        """Whether the peer has every piece."""
        return self.have.all()

    @property
    def transport(self) -> str:
        """How the peer is connected: "tcp" or "utp"."""
        return self.link.transport

    def wire_state(self, optimistic: bool = False) -> frozenset[str]:
        """The connection's state now, as the ``WIRE_STATES`` that hold (``optimistic``: the
        choker unchoked it as its optimistic unchoke)."""
        link = self.link
        held = (self.am_interested, self.peer_choking, self.peer_interested, self.am_choking, optimistic,
                self.snubbed, link.encrypted, link.mse)
        return frozenset(name for name, on in zip(WIRE_STATES, held, strict=True) if on)

    async def send(self, *msgs: m.Message) -> None:
        """Send ``msgs`` to the peer in one write."""
        self.last_sent = time.monotonic()
        await self.link.send_many(msgs)

    def queue_upload(self, req: m.Request) -> None:
        """Queue an accepted REQUEST for the upload loop, started now if it had not been."""
        self.upload_queue.append(req)
        self.upload_wakeup.set()
        start = self.serve_soon
        if start is not None:
            self.serve_soon = None
            start()

    def close(self, reason: str) -> None:
        """Close the peer's link (``reason`` is logged and published)."""
        if not self.closed:
            self.closed = True
            self.close_reason = reason
        for scope in self.scopes:
            scope.cancel()


async def fan_out(peers: Iterable[PeerState], send: Callable[[PeerState], Awaitable[None]],
                  timeout: float) -> None:
    """Run ``send`` for each open peer concurrently, each bounded by ``timeout``: a peer that reads
    nothing (its window full) must not hold up the others; once the bound passes it is closed."""

    async def one(peer: PeerState) -> None:
        with anyio.move_on_after(timeout) as scope:
            try:
                await send(peer)
            except PeerError:
                peer.close("send failed")
        if scope.cancelled_caught:
            peer.close(f"unresponsive: a send blocked for {timeout:g} s")

    async with anyio.create_task_group() as tg:
        for peer in peers:
            if not peer.closed:
                tg.start_soon(one, peer)
