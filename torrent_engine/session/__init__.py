"""The session layer: one torrent's life (``Session``) and what it is made of.

``core`` holds the ``Session`` facade; the parts it is made of each have a module (see
``core``'s docstring for the map). ``peer`` holds ``PeerState``; ``peer_pool`` the pure peer pool
(addresses, bans, back-off). The package offers its public names so that
``from torrent_engine.session import Session, SessionStatus`` stays the way to reach them; they
load on first use, so importing one of its pure parts (``requesting``, ``smart_ban``,
``peer_pool``) loads neither anyio nor the facade.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_names

if TYPE_CHECKING:
    from ..net.peer.messages import BLOCK_SIZE
    from .core import Session
    from .peer import PeerState
    from .peer_pool import MAX_CONNECT_FAILURES, RETRY_DELAYS, SEED_RETRY_DELAY, PeerPool
    from .status import SessionStatus

__all__ = [
    "BLOCK_SIZE",
    "MAX_CONNECT_FAILURES",
    "RETRY_DELAYS",
    "SEED_RETRY_DELAY",
    "PeerPool",
    "PeerState",
    "Session",
    "SessionStatus",
]

__getattr__, __dir__ = lazy_names(__name__, {
    "BLOCK_SIZE": ".net.peer.messages",  # (relative to this package: torrent_engine.net.peer.messages)
    "MAX_CONNECT_FAILURES": "peer_pool",
    "RETRY_DELAYS": "peer_pool",
    "SEED_RETRY_DELAY": "peer_pool",
    "PeerPool": "peer_pool",
    "PeerState": "peer",
    "Session": "core",
    "SessionStatus": "status",
})
