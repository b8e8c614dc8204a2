"""torrent_engine: a BitTorrent engine in pure Python, on one anyio event loop."""

from __future__ import annotations

from .bencode import decode as bdecode
from .bencode import encode as bencode
from .create import create_torrent
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
from .magnet import Magnet, parse_magnet
from .metainfo import FileEntry, Torrent

__version__ = "0.1.0"

__all__ = [
    "BencodeError",
    "DHTError",
    "EncryptionError",
    "Event",
    "EventBus",
    "FileEntry",
    "Magnet",
    "MagnetError",
    "MetainfoError",
    "PeerProtocolError",
    "SessionError",
    "StorageError",
    "Torrent",
    "TorrentEngineError",
    "TrackerError",
    "__version__",
    "bdecode",
    "bencode",
    "create_torrent",
    "parse_magnet",
]
