"""torrent_engine: a BitTorrent engine in pure Python, on one anyio event loop."""

from __future__ import annotations

from .bencode import decode as bdecode
from .bencode import encode as bencode
from .errors import (
    BencodeError,
    DHTError,
    EncryptionError,
    MagnetError,
    MetainfoError,
    PeerProtocolError,
    SessionError,
    StorageError,
    TorrentEngineError,
    TrackerError,
)
from .events import Event, EventBus

__version__ = "0.1.0"

__all__ = [
    "BencodeError",
    "DHTError",
    "EncryptionError",
    "Event",
    "EventBus",
    "MagnetError",
    "MetainfoError",
    "PeerProtocolError",
    "SessionError",
    "StorageError",
    "TorrentEngineError",
    "TrackerError",
    "__version__",
    "bdecode",
    "bencode",
]
