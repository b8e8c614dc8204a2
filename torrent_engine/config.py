"""Engine settings: one ``Config`` shared by a ``TorrentManager`` and the sessions it runs.

Every number that shapes traffic lives here so tests and the CLI can turn it down or up; the
defaults follow libtorrent's where the spec leaves a choice open.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .errors import ConfigError
from .net.interface import NetBind, check_names
from .net.proxy.settings import ProxyConfig
from .net.tracker.messages import announce_ip_refusal
from .policy.dedup import DEDUP_MODES, DEFAULT_DEDUP_MODE, DedupMode

Encryption = Literal["prefer", "require", "disable"]
# Peer transports: "any" = dial uTP first, TCP too if uTP has no link within utp_head_start,
# accept both (libtorrent too prefers uTP by default); "tcp_first" = the same with TCP dialed
# first (Transmission 4.1's preferred_transports ["tcp", "utp"]); "utp" = dial and accept uTP
# only; "tcp" = TCP only (no uTP socket is opened).
Transport = Literal["tcp", "utp", "any", "tcp_first"]
# How verified pieces reach the disk: "direct" = the page-aligned part of each piece with O_DIRECT
# (past the page cache; falls back to "cached" by itself where the file system refuses it),
# "cached" = every byte through the page cache (libtorrent 1.x's disable_os_cache vs enable_os_cache).
DiskWriteMode = Literal["direct", "cached"]



def default_state_dir() -> Path:
    """The user's data directory for torrent_engine (platformdirs: XDG_DATA_HOME or
    ~/.local/share on Linux, the platform's own place elsewhere)."""
    import platformdirs

    return Path(platformdirs.user_data_path("torrent_engine", appauthor=False))


# The well-known DHT routers a new node bootstraps from (the saved table comes first once there).
DHT_ROUTERS = (("router.bittorrent.com", 6881), ("dht.transmissionbt.com", 6881),
               ("router.utorrent.com", 6881))

# The highest rate limit, bytes per second (libtorrent's limits are a C int as well): past it a
# limit is refused, not taken; 0 is "no limit".
MAX_RATE_LIMIT = 2**31 - 1
PEER_TURNOVER = 4  # percent: ``peer_turnover``'s default (libtorrent's, qBittorrent's)
PEER_TURNOVER_CUTOFF = 90  # percent
PEER_TURNOVER_INTERVAL = 300.0  # seconds
STOP_TRACKER_TIMEOUT = 5.0  # seconds: ``stop_tracker_timeout``'s default (libtorrent's too)
RESUME_SAVE_INTERVAL = 60.0  # seconds: ``resume_save_interval``'s default
CONCURRENT_HTTP_ANNOUNCES = 50  # ``max_concurrent_http_announces``'s default (libtorrent's too)
MAX_HTTP_ANNOUNCES = 65535  # the most ``max_concurrent_http_announces`` may be

# Config.max_open_files unless set (the daemon's --max-open-files too).
DEFAULT_MAX_OPEN_FILES = 256
# torrents hashing their data at once (Config.active_checking_limit, the daemon's
# --active-checking-limit, qBittorrent's max_active_checking_torrents)
DEFAULT_ACTIVE_CHECKING = 1


@dataclass(slots=True)
class Config:
    """Every setting of the engine, with defaults for the real network (see each field)."""

    # Listening for incoming peers. Port 0 lets the OS choose (tests, parallel runs). "" is every
    # interface, IPv4 and IPv6, on one port (a dual-stack socket where the system has one).
    listen_host: str = ""
    listen_port: int = 0
    # Where metainfo and resume files are kept; None = no persistence (a throwaway session).
    state_dir: str | os.PathLike[str] | None = None  # a Path once the Config is made
    encryption: Encryption = "prefer"
    # Under "prefer": whether an MSE peer that offers both gets RC4 for the payload. Off, as in
    # libtorrent: the handshake is obfuscated and the payload is plaintext (RC4 costs CPU on
    # both ends for no secrecy worth having); "require" always uses RC4.
    prefer_rc4: bool = False
    # BEP 29 uTP runs on a UDP socket on listen_port (shared with the DHT when both are on).
    transport: Transport = "any"
    # How long a uTP dial may wait for its ST_SYN to be answered before it counts as failed.
    utp_connect_timeout: float = 3.0
    # With transport "any": how long a uTP dial runs alone before a TCP dial races it (the first
    # handshaken link wins), so a peer whose UDP port swallows uTP costs this, not the timeout;
    # with "tcp_first", how long TCP runs alone before uTP races it.
    utp_head_start: float = 0.5
    # Choking (BEP 3 leaves the numbers to the client; these are the classic ones).
    upload_slots: int = 4
    rechoke_interval: float = 10.0
    optimistic_unchoke_interval: float = 30.0
    # Requests: the pipeline is sized from the peer's rate (libtorrent's request_queue_time).
    request_queue_time: float = 3.0
    min_request_queue: int = 2
    # A new peer's pipeline before its rate is known (slow start grows it by one a block, so it
    # doubles each round trip): from 16 blocks (256 KiB) a 1.6 MB/s link at 400 ms RTT is full
    # after two round trips instead of five. 32 filled such links a round trip sooner, but over
    # uTP let a sender's slow start overrun a short link's queue (bench/RESULTS.md).
    initial_request_queue: int = 16
    max_request_queue: int = 500
    request_timeout: float = 30.0
    snub_timeout: float = 60.0
    # Pieces are assembled in memory and written once verified. This many bytes of pieces being
    # assembled or verified at most: past it, a block waits for a verified piece's buffer, or
    # (pieces still being assembled) its piece is written block by block and verified from disk.
    # (32 MiB measured as fast as 64 MiB for a disk-bound 1 GiB download: bench/RESULTS.md.)
    piece_buffer_bytes: int = 32 * 1024 * 1024
    # Verified pieces written past the page cache ("direct", O_DIRECT) or through it ("cached").
    # Writing into new page-cache pages cost 0.3-3.1 CPU s per GiB on a VM that hands freed pages
    # back to its host, O_DIRECT 0.05 (bench/RESULTS.md); reads and single blocks stay cached.
    disk_write_mode: DiskWriteMode = "direct"
    # Seconds a verified piece may wait for the pieces verified after it, to be written with them
    # in one write (up to 4 MiB; at once when the torrent's last piece or a reader waits for it,
    # or when its memory is needed). A thousand small torrents downloading at once cost 12-27 %
    # less CPU with 0.25 than with 0 (bench/RESULTS.md, "Verified pieces gathered").
    disk_write_gather: float = 0.25
    # Open file descriptors for torrent data, over every torrent of a manager (libtorrent's
    # file_pool_size): files are opened when read or written and the least recently used closed
    # past this bound (a file written with O_DIRECT holds two). Kept well under the usual soft
    # RLIMIT_NOFILE of 1024, so that peers' sockets have room too.
    max_open_files: int = DEFAULT_MAX_OPEN_FILES
    # A file nobody read or wrote for this many seconds is closed (one sweep for the whole manager).
    close_idle_files_after: float = 60.0
    # Announces in flight at once over every torrent of a manager (libtorrent's
    # active_tracker_limit, active_dht_limit): a start of thousands of torrents queues its
    # announces rather than opening thousands of tracker requests, or DHT lookups, at once.
    active_tracker_limit: int = 1600
    active_dht_limit: int = 88
    # HTTP(S) tracker announces in flight at once over every torrent, within active_tracker_limit
    # (libtorrent's and qBittorrent's max_concurrent_http_announces, 50 there too); read at each
    # announce.
    max_concurrent_http_announces: int = CONCURRENT_HTTP_ANNOUNCES
    # Seconds an HTTP(S) tracker connection is kept open after an announce or scrape for the next
    # one to the same tracker (of any torrent), as Transmission's are; 0: a connection each, as
    # libtorrent's. At most 16 a tracker and 64 in all; read at each announce.
    tracker_keep_alive: float = 30.0
    # Torrents hashing their data at once (a check without trusted resume data, a recheck), over
    # every torrent of a manager (libtorrent's active_checking): the others wait their turn in
    # "checking", so that adding a thousand torrents whose data is on disk reads one at a time
    # rather than a thousand files at once; -1: no limit (qBittorrent's "Maximum active checking
    # torrents" at ∞). The default is measured: bench/RESULTS.md, "Live torrents at scale".
    active_checking_limit: int = DEFAULT_ACTIVE_CHECKING
    # Peers.
    max_peers_per_torrent: int = 60
    # Peer turnover (libtorrent's and qBittorrent's, their defaults; policy/turnover.py): every
    # peer_turnover_interval seconds a torrent whose connections reach peer_turnover_cutoff
    # percent of its limit (6 at least) drops peer_turnover percent of them (one at least, no
    # more than the addresses it could dial instead), its worst first, to try others. 0: never.
    # Read at each look.
    peer_turnover: int = PEER_TURNOVER
    peer_turnover_cutoff: int = PEER_TURNOVER_CUTOFF
    peer_turnover_interval: float = PEER_TURNOVER_INTERVAL
    connect_timeout: float = 10.0
    handshake_timeout: float = 20.0
    # Incoming connections still in their handshake; no more are taken until one is through (each
    # holds a file descriptor for up to handshake_timeout, so an idle flood would otherwise use
    # them all up): a TCP peer waits in the kernel's backlog, a uTP SYN is sent again.
    max_pending_handshakes: int = 64
    keepalive_interval: float = 120.0  # BEP 3: peers drop a connection silent for two minutes
    # A control message (have, choke, interest, PEX, cancel) sent to many peers waits this long
    # for one peer's socket; a peer that reads nothing for so long is closed as unresponsive.
    control_send_timeout: float = 15.0
    max_failures_before_ban: int = 2  # a peer that sent data of this many failed pieces is banned
    # Seeding.
    seed: bool = True
    # A download that completes has its files hashed again before it counts as complete (it
    # seeds, its trackers hear "completed", its owner's completion comes after the check); what
    # that check finds missing is downloaded, then it completes without another (qBittorrent's
    # "recheck torrents on completion"). Read at each completion.
    recheck_on_completion: bool = False
    # The job service: a seed whose session has been quiet this many seconds (no peer, no
    # transfer, no reader open) goes dormant, its session stopped without telling its trackers
    # (they go on hearing of it from the dormant seeds' announcer) until a peer asks for it.
    # 0 = a seed keeps its session until the service stops.
    dormant_after: float = 300.0
    # The job service's download slots (its queue: ``JobService``, the daemon's --max-active):
    # at most this many jobs download at once, the others wait queued; seeding ones do not count.
    # 0 = no queue. A ``TorrentManager`` holds no torrent back: it runs what it is given.
    max_active_downloads: int = 0
    # Bandwidth (bytes per second, 0 = unlimited), shared by every session of a manager.
    download_rate_limit: int = 0
    upload_rate_limit: int = 0
    # DHT (BEP 5): on, as in every client people compare us with, bootstrapping from the saved
    # routing table and the well-known routers. Tests and the demo set it explicitly.
    dht_enabled: bool = True
    dht_port: int = 0
    dht_bootstrap: tuple[tuple[str, int], ...] = DHT_ROUTERS
    enforce_bep42: bool = True
    dht_interval: float = 15 * 60.0
    # BEP 46: seconds between two looks at a mutable torrent's DHT item for a newer version
    mutable_poll_interval: float = 60 * 60.0
    # Port mapping: ask the gateway (NAT-PMP, then UPnP IGD) to forward the listen ports, renew
    # the leases and remove them at the end. On, as in every client people compare us with; tests,
    # benchmarks and the demo set it explicitly (the test suite's guard fails any that leaks).
    port_mapping: bool = True
    natpmp_gateway: tuple[str, int] | None = None  # None: the default route's gateway, port 5351
    upnp_ssdp_address: tuple[str, int] = ("239.255.255.250", 1900)  # UPnP's SSDP multicast group
    # Local Service Discovery (BEP 14): announce running torrents on the LAN's multicast groups
    # (239.192.152.143 and ff15::efc0:988f, port 6771) and dial peers heard there; never for
    # private torrents. On, as in every client people compare us with; tests, benchmarks and the
    # demo set it explicitly (the test suite's guard fails a group join outside a network
    # namespace the test made; see docs/lsd.md).
    lsd_enabled: bool = True
    # Peer exchange (BEP 11, ut_pex): tell connected peers of the others and take theirs; never
    # for private torrents. Off: nothing is sent nor taken from then on, and new connections do
    # not offer ut_pex (those made before keep what their handshake said, as in libtorrent).
    pex_enabled: bool = True
    # Trackers.
    tracker_enabled: bool = True
    # Announce to every tier of a torrent's trackers (each to its first tracker that answers, on
    # its own schedule), as qBittorrent (its default) and Transmission do: a torrent's trackers
    # after its first tier (the default trackers among them) hear of it too. False: BEP 12's walk,
    # the first tier that answers alone (libtorrent's default).
    announce_to_all_tiers: bool = True
    # The address trackers are told to hand out for us ("": the one they see): an IP address, or
    # a host name (HTTP trackers only; a UDP tracker's field holds an IPv4 address alone).
    # libtorrent's and qBittorrent's announce_ip: behind a NAT or a VPN whose exit is not where
    # peers can reach this host.
    announce_ip: str = ""
    # Seconds a torrent that stops (paused, removed, the engine's stop) gives its trackers'
    # ``stopped`` announces, all at once; 0: none is sent (libtorrent's and qBittorrent's
    # stop_tracker_timeout, 5 by default there too). Read at each stop.
    stop_tracker_timeout: float = STOP_TRACKER_TIMEOUT
    # BEP 19: fetch pieces from the torrent's (or magnet's ws=) HTTP(S) web seeds too
    web_seeds: bool = True
    # Server-side request forgery mitigation (libtorrent's and qBittorrent's ssrf_mitigation, on
    # by default there too; net/ssrf.py): an HTTP(S) tracker URL whose query holds announce
    # arguments is refused; a tracker request reaching this host goes only to /announce (a
    # scrape's to /scrape); a web seed on the local network has no query string, and one on the
    # internet never redirects there. Read at each tracker request and web seed connection.
    ssrf_mitigation: bool = True
    # When a source of our external address (the gateway through port mapping, the DHT's votes)
    # says another address than it said before, every torrent announces to its trackers at once,
    # so that they hand out the new one (qBittorrent's reannounce_when_address_changed, off by
    # default there too). Read at each change.
    reannounce_when_address_changed: bool = False
    # Status and persistence.
    stats_interval: float = 1.0
    stall_after: float = 30.0  # seconds without progress before a download says why it is stuck
    # seconds between saves of a running torrent's resume data, when it changed (0: none but
    # those at a stop, a pause, a completion); read at each save
    resume_save_interval: float = RESUME_SAVE_INTERVAL
    extra_peers: tuple[tuple[str, int], ...] = field(default=())
    # A proxy (docs/proxy.md): HTTP(S) trackers, web seeds and .torrent URL fetches go through it,
    # outgoing peer connections too with its peer_connections, UDP trackers by a SOCKS5 one's UDP
    # relay; with its ``only`` nothing leaves outside it (no listening, uTP, LSD or port mapping;
    # the DHT by a SOCKS5 relay, else off, and so UDP trackers). None: no proxy.
    proxy: ProxyConfig | None = None
    # One network interface for everything (docs/daemon.md, "Binding to an interface"): every
    # socket is bound to it (SO_BINDTODEVICE: Linux; before Linux 5.7 it needs root or
    # CAP_NET_RAW) so nothing leaves by another one, even while it is down; bind_address, one
    # of its addresses, is then the source and listen address ("": the kernel's choice on it).
    bind_interface: str = ""
    bind_address: str = ""
    # v2 deduplication (docs/dedup.md; the job service): a new torrent's file whose BEP 52 pieces
    # root is that of a file held whole (a complete job's, or one below ``dedup_folders``) is
    # placed from it before the torrent's check verifies it: "reflink" (copy-on-write where the
    # file system can, else a copy: the default), "hardlink" (else a copy), "copy", or "off".
    dedup: DedupMode = DEFAULT_DEDUP_MODE
    dedup_folders: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Check every setting at construction, so a bad value is an error here, naming it,
        rather than a session that dies later."""
        if self.encryption not in ENCRYPTION_MODES:
            modes = ", ".join(ENCRYPTION_MODES)
            raise ConfigError(f"{self.encryption!r} is not one of {modes}", "encryption")
        if self.transport not in TRANSPORTS:
            raise ConfigError(f"{self.transport!r} is not one of {', '.join(TRANSPORTS)}", "transport")
        if self.disk_write_mode not in DISK_WRITE_MODES:
            raise ConfigError(f"{self.disk_write_mode!r} is not one of {', '.join(DISK_WRITE_MODES)}",
                              "disk_write_mode")
        if self.state_dir is not None:
            if not isinstance(self.state_dir, (str, os.PathLike)):
                raise ConfigError(f"{self.state_dir!r} is not a path", "state_dir")
            self.state_dir = Path(self.state_dir)
        for name in ("listen_port", "dht_port"):
            _check_port(name, getattr(self, name), allow_zero=True)
        for name in ("upload_slots", "piece_buffer_bytes", "max_active_downloads"):
            _check_number(name, getattr(self, name), minimum=0)
        _check_number("dormant_after", self.dormant_after, minimum=0)
        _check_number("resume_save_interval", self.resume_save_interval, minimum=0)
        _check_number("stop_tracker_timeout", self.stop_tracker_timeout, minimum=0,
                      maximum=MAX_STOP_TRACKER_TIMEOUT)
        _check_number("disk_write_gather", self.disk_write_gather, minimum=0, maximum=MAX_WRITE_GATHER)
        for name in ("download_rate_limit", "upload_rate_limit"):
            _check_number(name, getattr(self, name), minimum=0, maximum=MAX_RATE_LIMIT)
        for name in ("min_request_queue", "initial_request_queue", "max_request_queue",
                     "max_peers_per_torrent", "max_pending_handshakes", "max_failures_before_ban",
                     "max_open_files", "active_tracker_limit", "active_dht_limit"):
            _check_number(name, getattr(self, name), minimum=1)
        _check_number("max_concurrent_http_announces", self.max_concurrent_http_announces, minimum=1,
                      maximum=MAX_HTTP_ANNOUNCES)
        _check_number("tracker_keep_alive", self.tracker_keep_alive, minimum=0, maximum=3600)
        for name in ("peer_turnover", "peer_turnover_cutoff"):
            _check_number(name, getattr(self, name), minimum=0, maximum=100)
        _check_number("peer_turnover_interval", self.peer_turnover_interval, minimum=0, exclusive=True)
        if self.active_checking_limit != -1:
            _check_number("active_checking_limit", self.active_checking_limit, minimum=1)
        for name in ("rechoke_interval", "optimistic_unchoke_interval", "request_queue_time",
                     "request_timeout", "snub_timeout", "connect_timeout", "handshake_timeout",
                     "keepalive_interval", "control_send_timeout", "dht_interval", "mutable_poll_interval",
                     "stats_interval",
                     "stall_after", "utp_connect_timeout", "utp_head_start",
                     "close_idle_files_after"):
            _check_number(name, getattr(self, name), minimum=0, exclusive=True)
        if self.max_request_queue < self.min_request_queue:
            raise ConfigError(f"{self.max_request_queue} is below min_request_queue {self.min_request_queue}",
                              "max_request_queue")
        for name in ("dht_bootstrap", "extra_peers"):
            for address in getattr(self, name):
                _check_address(name, address)
        if self.natpmp_gateway is not None:
            _check_address("natpmp_gateway", self.natpmp_gateway)
        _check_address("upnp_ssdp_address", self.upnp_ssdp_address)
        if self.proxy is not None and not isinstance(self.proxy, ProxyConfig):
            raise ConfigError(f"{self.proxy!r} is not a ProxyConfig (proxy.parse_proxy_url reads a URL)",
                              "proxy")
        self.bind_address = check_names(self.bind_interface, self.bind_address)
        refusal = announce_ip_refusal(self.announce_ip)
        if refusal is not None:
            raise ConfigError(refusal, "announce_ip")
        if self.dedup not in DEDUP_MODES:
            raise ConfigError(f"{self.dedup!r} is not one of {', '.join(DEDUP_MODES)}", "dedup")
        if isinstance(self.dedup_folders, (str, os.PathLike)) or not all(
                isinstance(f, (str, os.PathLike)) for f in self.dedup_folders):
            raise ConfigError(f"{self.dedup_folders!r} is not a tuple of folders", "dedup_folders")

    def netbind(self) -> NetBind | None:
        """Where the engine's sockets are bound (None: no interface is set)."""
        if not self.bind_interface:
            return None
        return NetBind(self.bind_interface, self.bind_address)

    @property
    def proxy_only(self) -> bool:
        """Whether nothing may leave outside the proxy (``ProxyConfig.only``)."""
        return self.proxy is not None and self.proxy.only

    def proxied_peers(self) -> ProxyConfig | None:
        """The proxy outgoing peer connections go through (None: they go straight)."""
        proxy = self.proxy
        return proxy if proxy is not None and (proxy.peer_connections or proxy.only) else None


ENCRYPTION_MODES: tuple[Encryption, ...] = ("prefer", "require", "disable")
TRANSPORTS: tuple[Transport, ...] = ("any", "utp", "tcp", "tcp_first")
DISK_WRITE_MODES: tuple[DiskWriteMode, ...] = ("direct", "cached")
MAX_WRITE_GATHER = 10.0  # seconds: the most ``disk_write_gather`` may be
MAX_STOP_TRACKER_TIMEOUT = 300.0  # seconds: the most a stop waits for its ``stopped`` announces


def _check_number(name: str, value: object, *, minimum: float, exclusive: bool = False,
                  maximum: float | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise ConfigError(f"{value!r} is not a number", name)
    if value < minimum or (exclusive and value == minimum):
        raise ConfigError(f"{value!r} must be {'above' if exclusive else 'at least'} {minimum:g}", name)
    if maximum is not None and value > maximum:
        raise ConfigError(f"{value!r} must be at most {maximum:g}", name)


def _check_port(name: str, value: object, *, allow_zero: bool) -> None:
    lowest = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or not lowest <= value <= 65535:
        raise ConfigError(f"{value!r} is not a port number", name)


def _check_address(name: str, address: object) -> None:
    if (not isinstance(address, tuple) or len(address) != 2 or not isinstance(address[0], str)
            or not address[0]):
        raise ConfigError(f"{address!r} is not a (host, port) pair", name)
    _check_port(name, address[1], allow_zero=False)
