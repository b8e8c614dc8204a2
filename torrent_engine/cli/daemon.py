"""``torrent-engine daemon``: the job service with its HTTP API and web UI, until SIGINT/SIGTERM.

Its options come from the command line and, with ``--config FILE``, from a TOML file of the same
names (``daemon_config.py``); SIGHUP reads the file again and applies what can change while it
runs (the rate limits, the number of active downloads, the history's lifetime). One daemon at a
time holds a state directory (a lock file); SIGTERM stops it within ``--shutdown-timeout``."""

from __future__ import annotations

import argparse
import errno
import fcntl
import json
import logging
import math
import os
import resource
import signal
import sys
import threading
from pathlib import Path
from typing import IO

import anyio

from .. import __version__
from ..api import DEFAULT_API_HOST, DEFAULT_API_PORT, TOKEN_ENV, ApiServer, load_or_create_token
from ..api import tls as api_tls
from ..api.locate import API_FILE
from ..api.security import is_loopback
from ..config import (
    DEFAULT_ACTIVE_CHECKING,
    DEFAULT_MAX_OPEN_FILES,
    DHT_ROUTERS,
    TRANSPORTS,
    Config,
    default_state_dir,
)
from ..engine import fdlimit
from ..engine.runtime import run as run_loop
from ..engine.unwind import ExitStack
from ..errors import TorrentEngineError
from ..jobs import JobService
from ..jobs.tuning.altspeed import parse_days, parse_window
from ..logbook import LogBook, LogLevel
from ..policy.dedup import DEDUP_MODES, DEFAULT_DEDUP_MODE
from . import COMMANDS
from .collector import Sweeper, daemon_collector, freeze_start, loading
from .daemon_config import apply_config_file, asked_settings, load_config_file
from .download import add_dht_options, add_lsd_options, add_port_mapping_options, make_folder
from .units import parse_count, parse_port, parse_size

log = logging.getLogger(__name__)

LOCK_FILE = "daemon.lock"  # held (flock) by the daemon using the state dir; holds its pid
# what SIGHUP may change while the daemon runs (the rest needs a restart)
RELOADABLE = ("download_limit", "upload_limit", "max_active", "history_ttl", "incomplete_dir", "run_on_added",
              "run_on_completed", "run_on_seeding_done", "run_timeout", "watch_folder", "watch_interval",
              "proxy_url", "proxy_only",
              "ip_filter", "ip_filter_url", "ip_filter_trackers", "banned_ip", "alt_download_limit",
              "alt_upload_limit", "alt_schedule", "alt_schedule_days", "max_connections",
              "max_connections_per_torrent", "max_uploads", "max_uploads_per_torrent", "connection_speed",
              "bind_interface",
              "bind_address", "active_checking_limit", "listen_port", "random_port", "dht", "pex", "lsd",
              "encryption", "transport")


class DaemonError(TorrentEngineError):
    """The daemon cannot start as asked (e.g. its API port is taken)."""


def default_download_dir() -> Path:
    """The daemon's default download folder: torrent-engine in the user's downloads folder."""
    try:
        from platformdirs import user_downloads_dir

        return Path(user_downloads_dir()) / "torrent-engine"
    except ImportError:  # pragma: no cover - platformdirs is a dependency
        return Path.home() / "Downloads" / "torrent-engine"


def parse_rate(text: str) -> int:
    """``500K``, ``2M``, ``1.5MiB`` or a number of bytes per second; 0 = unlimited."""
    raw = text.strip().lower().removesuffix("/s").removesuffix("ib").removesuffix("b")
    scale = 1
    if raw and raw[-1] in "kmg":
        scale = {"k": 1024, "m": 1024**2, "g": 1024**3}[raw[-1]]
        raw = raw[:-1]
    try:
        value = float(raw) * scale
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a rate such as 500K or 2M, got {text!r}") from exc
    if value < 0:
        raise argparse.ArgumentTypeError("a rate cannot be negative")
    return int(value)


def _window(text: str) -> str:
    try:
        if text:  # ("": no schedule)
            parse_window(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _days(text: str) -> str:
    try:
        parse_days(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def parse_file_count(text: str) -> int:
    """A number of open files: a whole number, at least 1."""
    return parse_count(text, "file", "files")


def parse_checking_limit(text: str) -> int:
    """Torrents checked at once: a whole number from 1, or -1 for no limit."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of torrents, got {text!r}") from None
    if value != -1 and value < 1:
        raise argparse.ArgumentTypeError(f"expected -1 (no limit) or at least 1, got {value}")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``daemon`` subcommand to ``subparsers``."""
    p = subparsers.add_parser(
        "daemon", help=COMMANDS["daemon"],
        description="Run downloads in the background, with an HTTP API and a web UI on "
                    f"http://{DEFAULT_API_HOST}:{DEFAULT_API_PORT}/ (HTTPS with --tls-cert or --https) until "
                    "SIGINT/SIGTERM. "
                    "Jobs and their history are kept in the state directory.")
    p.add_argument("--config", type=Path, default=None, metavar="FILE",
                   help="read options from this TOML file (keys: these flags' names, e.g. api-port = 8686); "
                        "a flag given here wins; SIGHUP reads it again (see docs/daemon.md)")
    p.add_argument("--state-dir", type=Path, default=None,
                   help=f"jobs, resume data and the API token (default: {default_state_dir()})")
    p.add_argument("--download-dir", type=Path, default=None,
                   help="the download root; save paths must be inside it "
                        f"(default: {default_download_dir()})")
    p.add_argument("--api-host", default=DEFAULT_API_HOST,
                   help="address of the HTTP API (default: 127.0.0.1; anything else is reachable "
                        "from other machines)")
    p.add_argument("--api-port", type=parse_port, default=DEFAULT_API_PORT,
                   help=f"port of the HTTP API (default: {DEFAULT_API_PORT}; 0 = any free port)")
    p.add_argument("--api-token", default=None,
                   help=f"the API token (default: ${TOKEN_ENV}, else a random one kept in the state dir)")
    p.add_argument("--metrics-token", default=None, metavar="TOKEN",
                   help="a token that GET /metrics accepts besides the API token, and nothing else does "
                        "(for a Prometheus scraper; default: the API token only)")
    p.add_argument("--compat-username", default=None, metavar="NAME",
                   help="the user name for qBittorrent-API and Transmission-RPC logins (their password "
                        "is the API token; default: any user name)")
    p.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                   help="also answer requests for this Host name (repeatable; e.g. behind a proxy)")
    p.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                   help="allow cross-origin API calls from this origin (repeatable; default: none)")
    p.add_argument("--tls-cert", type=_optional_path, default=None, metavar="FILE",
                   help="serve the API, web UI and client dialects over HTTPS with this PEM certificate "
                        "(its chain may follow it; needs --tls-key; default: plain HTTP)")
    p.add_argument("--tls-key", type=_optional_path, default=None, metavar="FILE",
                   help="the certificate's private key (PEM, unencrypted) for --tls-cert")
    p.add_argument("--https", action="store_true",
                   help=f"serve over HTTPS with a self-signed certificate made at the first start in the "
                        f"state dir ({api_tls.SELF_SIGNED_CERT}, {api_tls.SELF_SIGNED_KEY}; made again once "
                        "expired); its SHA-256 fingerprint is printed at start")
    p.add_argument("--listen-port", type=parse_port, default=0,
                   help="TCP and uTP port for peers (default: a free one chosen at the first start, kept)")
    p.add_argument("--random-port", action="store_true",
                   help="a new free port for peers at each start (unless --listen-port names one)")
    p.add_argument("--listen-host", default="",
                   help="address for peers (default: every interface, IPv4 and IPv6)")
    add_dht_options(p)
    add_port_mapping_options(p)
    add_lsd_options(p)
    pex = p.add_mutually_exclusive_group()
    pex.add_argument("--pex", dest="pex", action="store_true", default=True,
                     help="exchange peers with connected peers (BEP 11; never for private torrents; default)")
    pex.add_argument("--no-pex", dest="pex", action="store_false", help="no peer exchange")
    p.add_argument("--no-trackers", action="store_true", help="do not announce to trackers")
    p.add_argument("--encryption", choices=["prefer", "require", "disable"], default="prefer",
                   help="MSE/PE policy (default: prefer)")
    p.add_argument("--transport", choices=TRANSPORTS, default="any",
                   help="peers over uTP and TCP (any: uTP first, TCP too; default; tcp_first: TCP first, uTP "
                        "too), TCP alone or uTP alone")
    p.add_argument("--download-limit", type=parse_rate, default=0, metavar="RATE",
                   help="total download rate limit, e.g. 2M (default: none)")
    p.add_argument("--upload-limit", type=parse_rate, default=0, metavar="RATE",
                   help="total upload rate limit, e.g. 500K (default: none)")
    p.add_argument("--max-active", type=int, default=0, metavar="N",
                   help="download at most N jobs at once, queue the rest (default: no limit)")
    p.add_argument("--incomplete-dir", default="", metavar="DIR",
                   help="download new jobs into DIR (inside the download dir), each moved to its save "
                        "path once complete (default: none; the API can change it at run time)")
    p.add_argument("--max-open-files", type=parse_file_count, default=DEFAULT_MAX_OPEN_FILES, metavar="N",
                   help="keep at most N torrent data files open, over every job (opened when read or "
                        f"written, closed when idle; default: {DEFAULT_MAX_OPEN_FILES})")
    p.add_argument("--history-ttl", type=float, default=86400.0, metavar="SECONDS",
                   help="drop finished jobs from the history after this long (default: 86400)")
    p.add_argument("--shutdown-timeout", type=float, default=30.0, metavar="SECONDS",
                   help="on SIGTERM/SIGINT, give the jobs this long to stop and save (default: 30)")
    p.add_argument("--run-on-added", default="", metavar="COMMAND",
                   help="run this program when a job is added: a command line (no shell reads it) with "
                        "qBittorrent's placeholders, e.g. 'notify.sh %%N %%L' (see docs/daemon.md)")
    p.add_argument("--run-on-completed", default="", metavar="COMMAND",
                   help="run this program when a job's download completes (placeholders as above)")
    p.add_argument("--run-on-seeding-done", default="", metavar="COMMAND",
                   help="run this program when a job reaches its share limit (placeholders as above)")
    p.add_argument("--run-timeout", type=float, default=60.0, metavar="SECONDS",
                   help="kill such a program (its process group) after this long (default: 60)")
    p.add_argument("--watch-folder", action="append", default=[], metavar="DIR",
                   help="add the .torrent and .magnet files dropped in this folder (repeatable; a "
                        "sub-folder's name is the category; taken files are renamed .added)")
    p.add_argument("--watch-interval", type=float, default=3.0, metavar="SECONDS",
                   help="scan the watched folders this often (default: 3)")
    p.add_argument("--proxy-url", default="", metavar="URL",
                   help="go through this proxy: socks5://, socks5h://, socks4://, socks4a:// or http:// "
                        "(user:password@ optional): trackers, web seeds, .torrent URLs and outgoing "
                        "peers (see docs/proxy.md; default: none; the API can change it at run time)")
    p.add_argument("--proxy-only", action="store_true",
                   help="send nothing outside the proxy: no listening for peers, no uTP, DHT, LSD, "
                        "port mapping or UDP trackers (needs --proxy-url)")
    p.add_argument("--ip-filter", default="", metavar="FILE",
                   help="refuse peers whose address this list blocks (eMule ipfilter.dat, PeerGuardian "
                        ".p2p or CIDR lines, gzip or not; re-read when it changes)")
    p.add_argument("--ip-filter-url", default="", metavar="URL",
                   help="refuse peers whose address the list at this URL blocks (fetched daily and on "
                        "demand; the copy is kept in the state folder)")
    p.add_argument("--ip-filter-trackers", action="store_true",
                   help="apply the IP filter to trackers' addresses too")
    p.add_argument("--banned-ip", action="append", default=[], metavar="ADDRESS",
                   help="refuse peers from this IP address (repeatable)")
    p.add_argument("--active-checking-limit", type=parse_checking_limit, default=DEFAULT_ACTIVE_CHECKING,
                   metavar="N", help="torrents hashing their data at once (a check, a recheck); "
                                     f"-1 = no limit (default: {DEFAULT_ACTIVE_CHECKING})")
    p.add_argument("--max-connections", type=int, default=500, metavar="N",
                   help="peers connected at once over every torrent; -1 = no limit (default: 500)")
    p.add_argument("--max-connections-per-torrent", type=int, default=60, metavar="N",
                   help="peers connected at once per torrent; -1 = no limit (default: 60)")
    p.add_argument("--max-uploads", type=int, default=-1, metavar="N",
                   help="peers unchoked at once over every torrent; -1 = no limit (the default)")
    p.add_argument("--max-uploads-per-torrent", type=int, default=4, metavar="N",
                   help="unchoke slots per torrent, plus one optimistic; -1 = no limit (default: 4)")
    p.add_argument("--connection-speed", type=int, default=30, metavar="N",
                   help="outgoing connection attempts a second over every torrent, the torrents with the "
                        "fewest peers first; -1 = no limit, 0 = no outgoing connection (incoming peers only) "
                        "(default: 30)")
    p.add_argument("--alt-download-limit", type=parse_rate, default=0, metavar="RATE",
                   help="the alternative global download limit, in force while the alternative "
                        "limits are on (by the schedule, the API, or a client's toggle); 0 = none")
    p.add_argument("--alt-upload-limit", type=parse_rate, default=0, metavar="RATE",
                   help="the alternative global upload limit (as above)")
    p.add_argument("--alt-schedule", type=_window, default="", metavar="HH:MM-HH:MM",
                   help="turn the alternative limits on at the first time and off at the second "
                        "(local time; may cross midnight); default: no schedule")
    p.add_argument("--alt-schedule-days", type=_days, default="all", metavar="DAYS",
                   help="the days of the schedule: all, weekdays, weekends or day names (mon,wed,fri)")
    p.add_argument("--bind-interface", default="", metavar="NAME",
                   help="send and receive by this network interface alone (e.g. a VPN's wg0): every "
                        "socket is bound to it, so nothing leaves by another one while it is down "
                        "(Linux; default: any; see docs/daemon.md)")
    p.add_argument("--bind-address", default="", metavar="IP",
                   help="with --bind-interface: this one of its addresses as the source and listen "
                        "address (default: the kernel's choice among the interface's own)")
    p.add_argument("--dedup", choices=DEDUP_MODES, default=DEFAULT_DEDUP_MODE,
                   help="take a new v2 torrent's file from a file already held whole with the same "
                        "pieces root (a complete torrent's, an indexed folder's), verified before use: "
                        "reflink (copy-on-write where the file system can, else a copy), hardlink "
                        "(else a copy), copy, or off (default: reflink; see docs/dedup.md)")
    p.add_argument("--dedup-folder", action="append", default=[], metavar="DIR",
                   help="index this folder's files for --dedup (repeatable; hashed once, then again "
                        "when a file's size or time changes)")
    p.add_argument("--disk-reserve", type=parse_size, default=0, metavar="SIZE",
                   help="leave this much free on the disk each download writes to (500M, 20G): below, "
                        "downloads stop until there is room again, as on a full disk (default: 0, none)")
    p.add_argument("--mutable-poll-interval", type=_positive_seconds, default=3600.0, metavar="SECONDS",
                   help="look this often for a newer version of each BEP 46 (btpk) link a job came "
                        "from (default: 3600)")
    p.add_argument("--sse-heartbeat", type=float, default=15.0, help=argparse.SUPPRESS)
    p.set_defaults(run=run, parser=p)


def _write_api_file(state_dir: Path, url: str, cafile: Path | None = None) -> None:
    """``api.json``: the address `remote` finds the daemon at (with ``cafile``, the self-signed
    certificate to verify it with)."""
    path = state_dir / API_FILE
    tmp = path.with_name(f".{API_FILE}.{os.getpid()}.tmp")
    written: dict[str, object] = {"url": url, "pid": os.getpid()}
    if cafile is not None:
        written["cafile"] = str(cafile.absolute())
    tmp.write_text(json.dumps(written) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def lock_state_dir(state_dir: Path) -> IO[str]:
    """Hold ``state_dir``'s lock for as long as the returned file is open; ``DaemonError`` naming
    the daemon that holds it already (its store is never touched then)."""
    handle = open(state_dir / LOCK_FILE, "a+", encoding="utf-8")  # (held until the daemon exits)
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise DaemonError(f"another daemon (pid {holder}) is using the state directory {state_dir}; stop it, "
                          "or give this one another --state-dir") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


async def _reload(args: argparse.Namespace, service: JobService) -> str:
    """SIGHUP: read ``--config`` again and apply what can change at run time; what it did. The
    rate limits go through the service's settings, as a change from the API does (the latest
    change wins, and a restart keeps it: ``JobService.configure``); so do the download slots."""
    if args.config is None:
        return "no --config file: nothing to reload"
    values = load_config_file(args.config, args.parser)
    changed, later = [], []
    for dest, value in values.items():
        if dest in RELOADABLE and value != getattr(args, dest):
            setattr(args, dest, value)
            changed.append(dest.replace("_", "-"))
        elif dest not in RELOADABLE and value != getattr(args, dest):
            later.append(dest.replace("_", "-"))
    await service.configure(download_limit=args.download_limit, upload_limit=args.upload_limit,
                            max_active_downloads=args.max_active, incomplete_dir=args.incomplete_dir,
                            asked=asked_settings(args))
    service.history_ttl = args.history_ttl
    said = f"reloaded {args.config}: " + (", ".join(changed) if changed else "nothing changed")
    if later:
        said += f" ({', '.join(later)}: only at the next start)"
    return said


def raise_descriptor_limit() -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard one (as qBittorrent does at start): systemd's
    default soft limit, 1024, is few for a seedbox's peers, files and clients; (soft, hard) now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # an unlimited hard limit cannot be the soft one everywhere (macOS: OPEN_MAX)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            log.debug("descriptor limit stays %d (hard %d): %s", soft, hard, exc)
            return soft, hard
        log.debug("descriptor limit raised from %d to %d (the hard limit)", soft, target)
        return target, hard
    log.debug("descriptor limit is %d (hard %d)", soft, hard)
    return soft, hard


def fit_open_files(max_open_files: int, soft: int) -> int:
    """``max_open_files``, lowered (and said so) to a fifth of what the descriptor limit leaves
    once its reserve is kept, as libtorrent fits its file pool: data files must never take the
    descriptors that peers, the API and the job store need."""
    room = max(1, (soft - fdlimit.reserve(soft)) // 5)
    if max_open_files <= room:
        return max_open_files
    log.warning("max-open-files %d is more than the descriptor limit (%d) leaves for data files: "
                "using %d (raise LimitNOFILE to keep %d)", max_open_files, soft, room, max_open_files)
    return room


def _watchdog(seconds: float) -> None:
    """After a stop signal: leave the process if stopping takes longer than ``seconds``."""
    def expire() -> None:
        print(f"torrent-engine daemon: not stopped within {seconds:g} s (--shutdown-timeout): exiting now",
              file=sys.stderr, flush=True)
        os._exit(1)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()


def _optional_path(text: str) -> Path | None:
    """A file's path; "" (a config file's way to say none) is None."""
    return Path(text).expanduser() if text.strip() else None


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"expected a number of seconds above 0, got {text!r}")
    return value


# what to do when the API's address cannot be listened on, by the system's reason (an address no
# interface has was told another daemon may be running there)
_API_HINTS = {
    errno.EADDRINUSE: "another daemon may be running there; choose another port with --api-port, or "
                      "--api-port 0 for any free one",
    errno.EADDRNOTAVAIL: "no interface of this machine has that address: see --api-host",
    errno.EACCES: "a port below 1024 needs privileges: choose another with --api-port",
}


async def _daemon(args: argparse.Namespace) -> int:
    state_dir = Path(args.state_dir) if args.state_dir else default_state_dir()
    download_dir = Path(args.download_dir) if args.download_dir else default_download_dir()
    for folder, option in ((state_dir, "--state-dir"), (download_dir, "--download-dir")):
        make_folder(folder, option)  # (a file there said "[Errno 17] File exists")
    lock = lock_state_dir(state_dir)
    book = LogBook()  # (what clients read of the log: qBittorrent's log/main, /api/log)
    book.write(LogLevel.NORMAL, f"torrent-engine {__version__} started")
    book.write(LogLevel.INFO, f"downloads in {download_dir}, state in {state_dir}")
    try:
        with daemon_collector() as collector, book.capturing(logging.getLogger("torrent_engine")):
            return await _serve(args, state_dir, download_dir, collector, book)
    finally:
        lock.close()


def check_tls_flags(args: argparse.Namespace) -> None:
    """``TlsError`` naming the flag when the TLS flags do not go together."""
    if args.https and (args.tls_cert is not None or args.tls_key is not None):
        raise api_tls.TlsError("cannot go with --tls-cert/--tls-key (--https makes its own certificate; give "
                       "one or the other)", "--https")
    if args.tls_cert is not None and args.tls_key is None:
        raise api_tls.TlsError("needs --tls-key, the certificate's private key", "--tls-cert")
    if args.tls_key is not None and args.tls_cert is None:
        raise api_tls.TlsError("needs --tls-cert, the certificate the key goes with", "--tls-key")


def tls_files(args: argparse.Namespace, state_dir: Path) -> api_tls.TlsFiles | None:
    """The certificate and key the API serves with, checked (or made, ``--https``); None: HTTP."""
    check_tls_flags(args)
    if args.https:
        return api_tls.self_signed(state_dir, api_tls.served_names(args.api_host, args.allowed_host))
    if args.tls_cert is not None:
        return api_tls.load_tls(Path(args.tls_cert).expanduser(), Path(args.tls_key).expanduser())
    return None


def describe_tls(tls: api_tls.TlsFiles) -> str:
    """The lines printed at start about the certificate the API serves with."""
    kind = ("self-signed, made now" if tls.made else "self-signed") if tls.self_signed else "given"
    return (f"  TLS certificate {tls.certfile} ({kind}, valid until {tls.not_after:%Y-%m-%d}); "
            f"SHA-256 fingerprint:\n  {tls.fingerprint}")


async def _serve(args: argparse.Namespace, state_dir: Path, download_dir: Path,
                 collector: Sweeper, book: LogBook) -> int:
    tls = tls_files(args, state_dir)  # (a bad certificate stops the start before anything is loaded)
    token = args.api_token or os.environ.get(TOKEN_ENV) or load_or_create_token(state_dir)
    loopback_peers = is_loopback(args.listen_host)
    config = Config(listen_host=args.listen_host, listen_port=args.listen_port,
                    state_dir=state_dir, encryption=args.encryption, transport=args.transport,
                    tracker_enabled=not args.no_trackers, dht_enabled=args.dht,
                    dht_bootstrap=tuple(args.dht_bootstrap) or DHT_ROUTERS, port_mapping=args.port_mapping,
                    lsd_enabled=args.lsd, pex_enabled=args.pex,
                    enforce_bep42=not loopback_peers, download_rate_limit=args.download_limit,
                    upload_rate_limit=args.upload_limit, max_active_downloads=args.max_active,
                    max_open_files=fit_open_files(args.max_open_files, fdlimit.limit()),
                    active_checking_limit=args.active_checking_limit, dedup=args.dedup,
                    dedup_folders=tuple(str(Path(f).expanduser().absolute()) for f in args.dedup_folder),
                    mutable_poll_interval=args.mutable_poll_interval)
    service = JobService(config, download_root=download_dir, state_dir=state_dir,
                         history_ttl=args.history_ttl, incomplete_dir=args.incomplete_dir,
                         configured=asked_settings(args))
    freeze_start()  # (what the start made so far lives as long as the daemon: no collection walks it)
    # The records first, then the API: it answers (the jobs as their records say; a change gets
    # 503 with Retry-After) while the torrents are loaded and the jobs restored.
    with loading():  # (no collection walks the records read; only a whole sweep, later)
        await service.load()
    api = ApiServer(service, token=token, host=args.api_host, port=args.api_port,
                    allowed_hosts=tuple(args.allowed_host), cors_origins=tuple(args.cors_origin),
                    heartbeat=args.sse_heartbeat, compat_username=args.compat_username,
                    metrics_token=args.metrics_token, tls=tls, logbook=book, on_request=collector.stir)
    stopping = anyio.Event()
    starting = anyio.CancelScope()
    listening = anyio.CancelScope()  # (the signals' receiver: it ends with the stop)

    def stop(why: str) -> None:
        """Save and stop (a signal, or a client that asked): the API answers what it has under
        way, the service stops, then the task group ends."""
        if stopping.is_set():
            return
        listening.cancel()
        print(f"torrent-engine daemon: {why}, saving and stopping", file=sys.stderr, flush=True)
        book.write(LogLevel.INFO, f"{why}: saving and stopping")
        _watchdog(args.shutdown_timeout)
        api.stop()
        stopping.set()
        if not service.ready:
            starting.cancel()  # (a start under way is given up: nothing was changed yet)

    api.shutdown = lambda door: stop(f"{door} asked for the stop")
    async with anyio.create_task_group() as tg:
        try:
            await tg.start(api.serve)
        except OSError as exc:
            hint = _API_HINTS.get(exc.errno or 0)
            raise DaemonError(f"cannot serve the API on {args.api_host}:{args.api_port}: "
                              f"{exc.strerror or exc}" + (f" ({hint})" if hint else "")) from None
        print(f"torrent-engine daemon: web UI and API at {api.ui_url}", flush=True)
        book.write(LogLevel.INFO, f"web UI and API at {api.url}")
        if tls is not None:
            print(describe_tls(tls), flush=True)
        print(f"  downloads in {download_dir}, state in {state_dir}; "
              "stop with Ctrl-C (or SIGTERM)", flush=True)

        async def stop_on_signal() -> None:
            receiver = anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
            with listening, receiver as signals:
                async for signum in signals:
                    if signum == signal.SIGHUP:
                        try:
                            said = await _reload(args, service)
                        except TorrentEngineError as exc:
                            said = f"reload refused, nothing changed: {exc}"
                        except OSError as exc:  # (the settings could not be saved)
                            said = f"reload failed: {exc}"
                        print(f"torrent-engine daemon: SIGHUP: {said}", file=sys.stderr, flush=True)
                        continue
                    stop(signal.Signals(signum).name)
                    return

        tg.start_soon(stop_on_signal)
        with starting:
            async with ExitStack() as stack:
                with loading():  # (and what restoring the jobs makes: as long-lived)
                    await stack.enter_async_context(service)  # the torrents loaded, the jobs restored
                # changes are taken now (what `remote` and scripts wait for: ready)
                _write_api_file(state_dir, api.url, tls.certfile if tls and tls.self_signed else None)
                async with anyio.create_task_group() as sweeping:
                    sweeping.start_soon(collector.sweep_when_due)
                    await stopping.wait()
                    sweeping.cancel_scope.cancel()
    # Leaving JobService's context stops every job and saves its state.
    (state_dir / API_FILE).unlink(missing_ok=True)
    print("torrent-engine daemon: stopped", file=sys.stderr, flush=True)
    return 0


def run(args: argparse.Namespace) -> int:
    """Run the job service with its HTTP API until SIGINT/SIGTERM; return the exit code."""
    if args.config is not None:
        apply_config_file(args, args.config, args.parser)
    check_tls_flags(args)
    raise_descriptor_limit()
    return run_loop(_daemon, args)
