"""torrent_engine: a BitTorrent engine in pure Python, on one anyio event loop."""

from __future__ import annotations

from .bencode import decode as bdecode
from .bencode import encode as bencode
from .config import Config
from .create import create_torrent
from .errors import (
    BencodeError,
    ConfigError,
    DHTError,
    EncryptionError,
    MagnetError,
    MetainfoError,
    PeerProtocolError,
    PortMapError,
    SessionError,
    StorageError,
    TorrentEngineError,
    TrackerError,
)
from .events import Event, EventBus
from .magnet import Magnet, parse_magnet
from .manager import DownloadSummary, TorrentManager, download
from .metainfo import FileEntry, Torrent
from .runtime import run
from .session import Session, SessionStatus
from .session_state import State as SessionState
from .shared import SharedResources

__version__ = "0.1.0"

__all__ = [
    "BencodeError",
    "Config",
    "ConfigError",
    "DHTError",
    "DownloadSummary",
    "EncryptionError",
    "Event",
    "EventBus",
    "FileEntry",
    "Magnet",
    "MagnetError",
    "MetainfoError",
    "PeerProtocolError",
    "PortMapError",
    "Session",
    "SessionError",
    "SessionState",
    "SessionStatus",
    "SharedResources",
    "StorageError",
    "Torrent",
    "TorrentManager",
    "TorrentEngineError",
    "TrackerError",
    "__version__",
    "bdecode",
    "bencode",
    "create_torrent",
    "download",
    "parse_magnet",
    "run",
]
