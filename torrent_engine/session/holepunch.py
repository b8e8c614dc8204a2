"""BEP 55 hole punching for a session: the ``ut_holepunch`` roles over the codec of
``peer/holepunch.py``.

- Relay: a peer's ``rendezvous`` naming another peer we are connected to is answered with
  ``connect`` to both (each with the other's listen endpoint), or an ``error`` to the initiator.
- Initiator: a peer that PEX listed as supporting holepunch and not reachable (flags 0x08 without
  0x10), whose direct dial then failed, is asked for through the peer that listed it (once per
  listing).
- Both ends of a ``connect``: dial the endpoint over uTP at once, unless already connected to it;
  the other side does the same, which opens the way through NATs and firewalls.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

from ..net.peer import messages as m
from ..net.peer.extensions import PEX_HOLEPUNCH, PEX_REACHABLE, PexMessage
from ..net.peer.holepunch import (
    Endpoint,
    HolepunchMessage,
    HolepunchType,
    answer_rendezvous,
    decode_holepunch,
    encode_holepunch,
)
from .peer import PeerState, fan_out

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ..config import Config
    from .peer_pool import PeerPool

log = logging.getLogger("torrent_engine.session")

MAX_RELAYED = 1000  # addresses remembered with the peer that listed them


def listen_endpoint(peer: PeerState) -> Endpoint:
    """Where ``peer`` takes connections: its address, and the port it told us ('p') when it dialed us."""
    return (peer.host, peer.listen_port or peer.port) if peer.incoming else (peer.host, peer.port)


class Reachable(Protocol):
    """What hole punching reads of the shared resources (``SharedResources`` is one)."""

    @property
    def utp(self) -> object | None:
        """The uTP socket, if there is one (``connect`` asks for a uTP dial)."""

    @property
    def external_ip(self) -> str | None:
        """Our address as the gateway reports it (our own endpoint), if known."""

    @property
    def listen_port(self) -> int:
        """Our port."""


class HolepunchContext(Protocol):
    """What hole punching reads of its torrent (``context.TorrentContext`` is one)."""

    @property
    def config(self) -> Config:
        """The transport, the connection budget, the send timeout."""

    @property
    def peers(self) -> Mapping[Endpoint, PeerState]:
        """The connected peers (relays, and whom we are connected to already)."""

    @property
    def pool(self) -> PeerPool:
        """Banned addresses are not dialed."""

    @property
    def shared(self) -> Reachable | None:
        """Whether we can dial over uTP, and our own endpoint."""


class Dialer(Protocol):
    """What hole punching needs of the dialing (``connector.Connector``)."""

    @property
    def connecting(self) -> set[Endpoint]:
        """The addresses being dialed."""

    def punch(self, key: Endpoint) -> None:
        """Dial ``key`` over uTP now (the other side dials us at the same moment)."""

    def peer_limit(self) -> int:
        """The torrent's connections at most."""


class Holepunch:
    """The session's ``ut_holepunch`` roles: relay, initiator, and both ends of a ``connect``."""

    def __init__(self, context: HolepunchContext, dialer: Dialer) -> None:
        self._ctx = context
        self._dialer = dialer
        self._relay_for: dict[Endpoint, tuple[str, int]] = {}  # PEX-listed address -> who listed it
        self.relayed = 0  # rendezvous answered with connect messages
        self.punched = 0  # connect messages acted on (uTP dials started)

    @property
    def can_dial(self) -> bool:
        """Whether we can act on ``connect`` (it asks for a uTP dial)."""
        ctx = self._ctx
        shared = ctx.shared
        return shared is not None and shared.utp is not None and ctx.config.transport != "tcp"

    def _connected_to(self, endpoint: Endpoint) -> bool:
        ctx = self._ctx
        return endpoint in ctx.peers or endpoint in self._dialer.connecting or any(
            listen_endpoint(p) == endpoint for p in ctx.peers.values())

    # -- PEX and failed dials (initiator) ---------------------------------------------------
    def note_pex(self, peer: PeerState, pex: PexMessage) -> None:
        """Remember which addresses ``peer`` listed as reachable only through a relay."""
        if not peer.ut_holepunch:
            return
        for added, flags in ((pex.added, pex.added_flags), (pex.added6, pex.added6_flags)):
            for address, flag in zip(added, flags, strict=False):
                if flag & PEX_HOLEPUNCH and not flag & PEX_REACHABLE and len(self._relay_for) < MAX_RELAYED:
                    self._relay_for[address] = peer.key

    async def dial_failed(self, key: Endpoint) -> None:
        """A direct dial of ``key`` failed: ask the peer that listed it to put us in touch."""
        relay_key = self._relay_for.pop(key, None)
        relay = self._ctx.peers.get(relay_key) if relay_key is not None else None
        if relay is None or relay.closed or not relay.ut_holepunch or not self.can_dial:
            return
        log.debug("asking %s to relay a connection to %s:%d", relay.address, key[0], key[1])
        await self._send(relay, HolepunchMessage(HolepunchType.RENDEZVOUS, key))

    # -- messages ------------------------------------------------------------------------
    async def on_message(self, peer: PeerState, payload: bytes) -> None:
        """A ``ut_holepunch`` message from ``peer`` (a malformed one is a ``PeerProtocolError``)."""
        if not peer.ut_holepunch:
            return  # BEP 55: from a peer that did not announce the extension, ignored
        msg = decode_holepunch(payload)
        if msg.type is HolepunchType.RENDEZVOUS:
            await self._relay(peer, msg)
        elif msg.type is HolepunchType.CONNECT:
            self._connect(msg.endpoint)
        else:
            log.info("%s could not relay to %s:%d: %s", peer.address, msg.endpoint[0], msg.endpoint[1],
                     msg.error.name)

    async def _relay(self, initiator: PeerState, msg: HolepunchMessage) -> None:
        ctx = self._ctx
        by_endpoint: dict[Endpoint, PeerState] = {}
        for p in ctx.peers.values():
            if not p.closed:
                by_endpoint[p.key] = p
                by_endpoint.setdefault(listen_endpoint(p), p)
        by_endpoint.pop(initiator.key, None)
        by_endpoint.pop(listen_endpoint(initiator), None)
        shared = ctx.shared
        own = [(shared.external_ip, shared.listen_port)] if shared is not None and shared.external_ip else []
        answer = answer_rendezvous(listen_endpoint(initiator), msg, own_endpoints=own,
                                   connected={e: bool(p.ut_holepunch) for e, p in by_endpoint.items()})
        for n, (_to, reply) in enumerate(answer):
            await self._send(initiator if n == 0 else by_endpoint[msg.endpoint], reply)
        if len(answer) == 2:
            self.relayed += 1

    def _connect(self, endpoint: Endpoint) -> None:
        ctx = self._ctx
        if not self.can_dial or self._connected_to(endpoint) or ctx.pool.is_banned(endpoint):
            return  # BEP 55: already connected (or unwilling): ignored silently
        if len(self._dialer.connecting) >= self._dialer.peer_limit():
            return  # a relay cannot make us dial without bound
        self.punched += 1
        self._dialer.punch(endpoint)

    async def _send(self, peer: PeerState, msg: HolepunchMessage) -> None:
        """Send to ``peer`` (maybe not the one whose message we are handling): a failure closes
        that peer only."""
        await fan_out([peer], lambda p: p.send(m.Extended(p.ut_holepunch, encode_holepunch(msg))),
                      self._ctx.config.control_send_timeout)
