"""torrent_engine: a BitTorrent engine in pure Python, on one anyio event loop.

The public names load on first use (PEP 562), so importing one core module
(``torrent_engine.formats.bencode``) loads neither anyio nor the session layer."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ._lazy import lazy_names

# Bound at import, not lazily: the submodule ``torrent_engine.formats.bencode`` shares the name, and
# importing it (as metainfo does) would otherwise set this package's ``bencode`` to the module.
# Once the submodule is loaded here, later imports of it leave the package's names alone.
from .formats.bencode import decode as bdecode
from .formats.bencode import encode as bencode
from .version import __version__

# A library prints nothing unless the application configures logging (docs/logging.md): without a
# handler on the way up, Python's last-resort handler would print the engine's warnings to stderr.
logging.getLogger(__name__).addHandler(logging.NullHandler())

if TYPE_CHECKING:
    from .config import Config
    from .engine.manager import DownloadSummary, TorrentManager, download
    from .engine.runtime import run
    from .engine.shared import SharedResources
    from .engine.sync import BackgroundDownload
    from .errors import (
        BencodeError,
        ConfigError,
        DHTError,
        DownloadTimeout,
        EncryptionError,
        HttpError,
        LsdError,
        MagnetError,
        MetainfoError,
        PeerConnectionClosed,
        PeerError,
        PeerProtocolError,
        PortMapError,
        SessionError,
        StorageError,
        StreamError,
        TorrentEngineError,
        TrackerError,
        WebSeedError,
    )
    from .events import (
        DhtBootstrapped,
        Event,
        EventBus,
        PeerConnected,
        PeerDisconnected,
        PieceCompleted,
        PieceHashFailed,
        SessionChecking,
        SessionCompleted,
        SessionFailed,
        SessionMetadataReceived,
        SessionPaused,
        SessionPieceLayersReceived,
        SessionResumed,
        SessionStalled,
        SessionStarted,
        SessionStopped,
        StatsUpdate,
        Subscription,
        TrackerFailed,
        TrackerSuccess,
        UnknownEventError,
    )
    from .formats.magnet import Magnet, parse_magnet
    from .formats.metainfo import FileEntry, Torrent
    from .session import Session, SessionStatus
    from .session.state_table import State as SessionState
    from .storage.create import create_torrent

_WHERE = {
    "BencodeError": "errors",
    "Config": "config",
    "ConfigError": "errors",
    "DHTError": "errors",
    "BackgroundDownload": "engine.sync",
    "DownloadSummary": "engine.manager",
    "DownloadTimeout": "errors",
    "EncryptionError": "errors",
    "Event": "events",
    "EventBus": "events",
    "DhtBootstrapped": "events",
    "PeerConnected": "events",
    "PeerDisconnected": "events",
    "PieceCompleted": "events",
    "PieceHashFailed": "events",
    "SessionChecking": "events",
    "SessionCompleted": "events",
    "SessionFailed": "events",
    "SessionMetadataReceived": "events",
    "SessionPaused": "events",
    "SessionPieceLayersReceived": "events",
    "SessionResumed": "events",
    "SessionStalled": "events",
    "SessionStarted": "events",
    "SessionStopped": "events",
    "StatsUpdate": "events",
    "Subscription": "events",
    "UnknownEventError": "events",
    "TrackerFailed": "events",
    "TrackerSuccess": "events",
    "FileEntry": "formats.metainfo",
    "Magnet": "formats.magnet",
    "HttpError": "errors",
    "LsdError": "errors",
    "MagnetError": "errors",
    "MetainfoError": "errors",
    "PeerConnectionClosed": "errors",
    "PeerError": "errors",
    "PeerProtocolError": "errors",
    "PortMapError": "errors",
    "Session": "session",
    "SessionError": "errors",
    "StreamError": "errors",
    "SessionState": "session.state_table:State",
    "SessionStatus": "session",
    "SharedResources": "engine.shared",
    "StorageError": "errors",
    "Torrent": "formats.metainfo",
    "TorrentEngineError": "errors",
    "TorrentManager": "engine.manager",
    "TrackerError": "errors",
    "WebSeedError": "errors",
    "create_torrent": "storage.create",
    "download": "engine.manager",
    "parse_magnet": "formats.magnet",
    "run": "engine.runtime",
}

__all__ = [
    "BackgroundDownload",
    "DownloadTimeout",
    "BencodeError",
    "Config",
    "ConfigError",
    "DHTError",
    "DhtBootstrapped",
    "DownloadSummary",
    "EncryptionError",
    "Event",
    "EventBus",
    "FileEntry",
    "HttpError",
    "Magnet",
    "MagnetError",
    "LsdError",
    "MetainfoError",
    "PeerConnected",
    "PeerConnectionClosed",
    "PeerDisconnected",
    "PeerError",
    "PeerProtocolError",
    "PieceCompleted",
    "PieceHashFailed",
    "PortMapError",
    "Session",
    "SessionChecking",
    "SessionCompleted",
    "SessionError",
    "StreamError",
    "SessionFailed",
    "SessionMetadataReceived",
    "SessionPaused",
    "SessionPieceLayersReceived",
    "SessionResumed",
    "SessionStalled",
    "SessionStarted",
    "SessionState",
    "SessionStatus",
    "SessionStopped",
    "SharedResources",
    "StatsUpdate",
    "StorageError",
    "Subscription",
    "Torrent",
    "TorrentEngineError",
    "TorrentManager",
    "TrackerError",
    "TrackerFailed",
    "TrackerSuccess",
    "UnknownEventError",
    "WebSeedError",
    "__version__",
    "bdecode",
    "bencode",
    "create_torrent",
    "download",
    "parse_magnet",
    "run",
]


__getattr__, __dir__ = lazy_names(__name__, _WHERE)
