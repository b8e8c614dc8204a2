"""``torrent-engine daemon``: the job service with its HTTP API and web UI, until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

import anyio

from ..api import DEFAULT_API_HOST, DEFAULT_API_PORT, TOKEN_ENV, ApiServer, load_or_create_token
from ..api.security import is_loopback
from ..config import DHT_ROUTERS, Config, default_state_dir
from ..errors import TorrentEngineError
from ..jobs import JobService
from ..runtime import run as run_loop
from .download import add_dht_options, add_port_mapping_options

log = logging.getLogger(__name__)

API_FILE = "api.json"  # where the daemon says which address it serves (read by `remote`)


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


def register(subparsers: Any) -> None:
    """Add the ``daemon`` subcommand to ``subparsers``."""
    p = subparsers.add_parser(
        "daemon", help="run the job service with its HTTP API and web UI",
        description="Run downloads in the background, with an HTTP API and a web UI on "
                    f"http://{DEFAULT_API_HOST}:{DEFAULT_API_PORT}/ until SIGINT/SIGTERM. "
                    "Jobs and their history are kept in the state directory.")
    p.add_argument("--state-dir", type=Path, default=None,
                   help=f"jobs, resume data and the API token (default: {default_state_dir()})")
    p.add_argument("--download-dir", type=Path, default=None,
                   help="the download root; save paths must be inside it "
                        f"(default: {default_download_dir()})")
    p.add_argument("--api-host", default=DEFAULT_API_HOST,
                   help="address of the HTTP API (default: 127.0.0.1; anything else is reachable "
                        "from other machines)")
    p.add_argument("--api-port", type=int, default=DEFAULT_API_PORT,
                   help=f"port of the HTTP API (default: {DEFAULT_API_PORT}; 0 = any free port)")
    p.add_argument("--api-token", default=None,
                   help=f"the API token (default: ${TOKEN_ENV}, else a random one kept in the state dir)")
    p.add_argument("--compat-username", default=None, metavar="NAME",
                   help="the user name for qBittorrent-API and Transmission-RPC logins (their password "
                        "is the API token; default: any user name)")
    p.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                   help="also answer requests for this Host name (repeatable; e.g. behind a proxy)")
    p.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                   help="allow cross-origin API calls from this origin (repeatable; default: none)")
    p.add_argument("--listen-port", type=int, default=0, help="TCP port for peers (default: any)")
    p.add_argument("--listen-host", default="",
                   help="address for peers (default: every interface, IPv4 and IPv6)")
    add_dht_options(p)
    add_port_mapping_options(p)
    p.add_argument("--no-trackers", action="store_true", help="do not announce to trackers")
    p.add_argument("--encryption", choices=["prefer", "require", "disable"], default="prefer",
                   help="MSE/PE policy (default: prefer)")
    p.add_argument("--download-limit", type=parse_rate, default=0, metavar="RATE",
                   help="total download rate limit, e.g. 2M (default: none)")
    p.add_argument("--upload-limit", type=parse_rate, default=0, metavar="RATE",
                   help="total upload rate limit, e.g. 500K (default: none)")
    p.add_argument("--max-active", type=int, default=0, metavar="N",
                   help="download at most N jobs at once, queue the rest (default: no limit)")
    p.add_argument("--history-ttl", type=float, default=86400.0, metavar="SECONDS",
                   help="drop finished jobs from the history after this long (default: 86400)")
    p.add_argument("--sse-heartbeat", type=float, default=15.0, help=argparse.SUPPRESS)
    p.set_defaults(run=run)


def _write_api_file(state_dir: Path, url: str) -> None:
    path = state_dir / API_FILE
    tmp = path.with_name(f".{API_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"url": url, "pid": os.getpid()}) + "\n", encoding="utf-8")
    os.replace(tmp, path)


async def _daemon(args: argparse.Namespace) -> int:
    state_dir = Path(args.state_dir) if args.state_dir else default_state_dir()
    download_dir = Path(args.download_dir) if args.download_dir else default_download_dir()
    state_dir.mkdir(parents=True, exist_ok=True)
    download_dir.mkdir(parents=True, exist_ok=True)
    token = args.api_token or os.environ.get(TOKEN_ENV) or load_or_create_token(state_dir)
    loopback_peers = is_loopback(args.listen_host)
    config = Config(listen_host=args.listen_host, listen_port=args.listen_port,
                    state_dir=state_dir, encryption=args.encryption,
                    tracker_enabled=not args.no_trackers, dht_enabled=args.dht,
                    dht_bootstrap=tuple(args.dht_bootstrap) or DHT_ROUTERS, port_mapping=args.port_mapping,
                    enforce_bep42=not loopback_peers, download_rate_limit=args.download_limit,
                    upload_rate_limit=args.upload_limit, max_active_downloads=args.max_active)
    async with JobService(config, download_root=download_dir, state_dir=state_dir,
                          history_ttl=args.history_ttl) as service:
        api = ApiServer(service, token=token, host=args.api_host, port=args.api_port,
                        allowed_hosts=tuple(args.allowed_host), cors_origins=tuple(args.cors_origin),
                        heartbeat=args.sse_heartbeat, compat_username=args.compat_username)
        async with anyio.create_task_group() as tg:
            try:
                await tg.start(api.serve)
            except OSError as exc:
                raise DaemonError(f"cannot serve the API on {args.api_host}:{args.api_port}: "
                                  f"{exc.strerror or exc} (another daemon may be running there; "
                                  "choose another port with --api-port, or --api-port 0 for any "
                                  "free one)") from None
            _write_api_file(state_dir, api.url)
            print(f"torrent-engine daemon: web UI and API at {api.ui_url}", flush=True)
            print(f"  downloads in {download_dir}, state in {state_dir}; "
                  "stop with Ctrl-C (or SIGTERM)", flush=True)

            async def stop_on_signal() -> None:
                with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    async for signum in signals:
                        print(f"torrent-engine daemon: {signal.Signals(signum).name}, saving and stopping",
                              file=sys.stderr, flush=True)
                        api.stop()  # api.serve returns, then the task group ends
                        return

            tg.start_soon(stop_on_signal)
    # Leaving JobService's context stops every job and saves its state.
    (state_dir / API_FILE).unlink(missing_ok=True)
    print("torrent-engine daemon: stopped", file=sys.stderr, flush=True)
    return 0


def run(args: argparse.Namespace) -> int:
    """Run the job service with its HTTP API until SIGINT/SIGTERM; return the exit code."""
    return run_loop(_daemon, args)
