"""Engine settings: one ``Config`` shared by a ``TorrentManager`` and the sessions it runs.

Every number that shapes traffic lives here so tests and the CLI can turn it down or up; the
defaults follow libtorrent's where the spec leaves a choice open.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Encryption = Literal["prefer", "require", "disable"]
# Peer transports: "any" = dial uTP first and fall back to TCP, accept both (libtorrent's
# default); "utp" = dial and accept uTP only; "tcp" = TCP only (no uTP socket is opened).
Transport = Literal["tcp", "utp", "any"]

BLOCK_SIZE = 16 * 1024  # BEP 3: the request size every client uses


def default_state_dir() -> Path:
    """The user's data directory for torrent_engine (XDG on Unix)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "torrent_engine"


@dataclass(slots=True)
class Config:
    # Listening for incoming peers. Port 0 lets the OS choose (tests, parallel runs).
    listen_host: str = "0.0.0.0"
    listen_port: int = 0
    # Where metainfo and resume files are kept; None = no persistence (a throwaway session).
    state_dir: Path | None = None
    encryption: Encryption = "prefer"
    # BEP 29 uTP runs on a UDP socket on listen_port (shared with the DHT when both are on).
    transport: Transport = "any"
    # How long a uTP dial may wait for its ST_SYN to be answered before falling back to TCP.
    utp_connect_timeout: float = 3.0
    # Choking (BEP 3 leaves the numbers to the client; these are the classic ones).
    upload_slots: int = 4
    rechoke_interval: float = 10.0
    optimistic_unchoke_interval: float = 30.0
    # Requests: the pipeline is sized from the peer's rate (libtorrent's request_queue_time).
    request_queue_time: float = 3.0
    min_request_queue: int = 2
    max_request_queue: int = 500
    request_timeout: float = 30.0
    snub_timeout: float = 60.0
    # Pieces are assembled in memory and written once verified; past this many bytes of pieces
    # in progress, further pieces are written block by block and verified from disk instead.
    piece_buffer_bytes: int = 64 * 1024 * 1024
    # Peers.
    max_peers_per_torrent: int = 60
    connect_timeout: float = 10.0
    handshake_timeout: float = 20.0
    # Incoming connections still in their handshake; more are closed at once (each holds a file
    # descriptor for up to handshake_timeout, so an idle flood would otherwise use them all up).
    max_pending_handshakes: int = 64
    keepalive_interval: float = 120.0  # BEP 3: peers drop a connection silent for two minutes
    # A control message (have, choke, interest, PEX, cancel) sent to many peers waits this long
    # for one peer's socket; a peer that reads nothing for so long is closed as unresponsive.
    control_send_timeout: float = 15.0
    max_failures_before_ban: int = 2  # a peer that sent data of this many failed pieces is banned
    # Seeding.
    seed: bool = True
    # Manager queueing: at most this many torrents download (or fetch metadata, or check) at
    # once; the others wait in state "queued". Seeding torrents do not count. 0 = no limit.
    max_active_downloads: int = 0
    # Bandwidth (bytes per second, 0 = unlimited), shared by every session of a manager.
    download_rate_limit: int = 0
    upload_rate_limit: int = 0
    # DHT (BEP 5). Off by default: a node on the public network needs public bootstrap nodes.
    dht_enabled: bool = False
    dht_port: int = 0
    dht_bootstrap: tuple[tuple[str, int], ...] = ()
    enforce_bep42: bool = True
    dht_interval: float = 15 * 60.0
    # Trackers.
    tracker_enabled: bool = True
    # Status and persistence.
    stats_interval: float = 1.0
    resume_save_interval: float = 60.0
    extra_peers: tuple[tuple[str, int], ...] = field(default=())
