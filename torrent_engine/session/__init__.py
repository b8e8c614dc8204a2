"""The session layer: one torrent's life (``Session``) and what it is made of.

``core`` holds the ``Session`` facade; the parts it is made of each have a module (see
``core``'s docstring for the map). ``peer`` holds ``PeerState``; ``peer_pool`` the pure peer pool
(addresses, bans, back-off). The package re-exports its public names so that
``from torrent_engine.session import Session, SessionStatus`` stays the way to reach it.
"""

from __future__ import annotations

from ..peer.messages import BLOCK_SIZE
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
