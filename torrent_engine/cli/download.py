"""``torrent-engine download FILE.torrent``: fetch a torrent with a progress line, then exit (or seed)."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import anyio

from ..config import Config
from ..errors import SessionError
from ..magnet import Magnet, parse_magnet
from ..metainfo import Torrent
from ..runtime import run as run_loop
from ..session import Session, SessionStatus

PUBLIC_DHT_ROUTERS = (("router.bittorrent.com", 6881), ("dht.transmissionbt.com", 6881),
                      ("router.utorrent.com", 6881))  # used only with --dht and no --dht-bootstrap


def parse_peer(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("download", help="download a torrent (then seed with --seed)",
                              description="Download FILE.torrent into DIR with a progress line; "
                                          "exit 0 when complete.")
    p.add_argument("torrent", metavar="FILE.torrent|MAGNET", help="a .torrent file or a magnet link")
    p.add_argument("-o", "--output", default=".", metavar="DIR", help="where to save (default: .)")
    p.add_argument("--peer", action="append", type=parse_peer, default=[], metavar="HOST:PORT",
                   help="connect to this peer too (repeatable)")
    seed = p.add_mutually_exclusive_group()
    seed.add_argument("--seed", dest="seed", action="store_true",
                      help="keep seeding after completion until Ctrl-C")
    seed.add_argument("--no-seed", dest="seed", action="store_false", help="exit when complete (default)")
    p.set_defaults(seed=False)
    p.add_argument("--encryption", choices=["prefer", "require", "disable"], default="prefer",
                   help="MSE/PE policy (default: prefer)")
    p.add_argument("--transport", choices=["any", "utp", "tcp"], default="any",
                   help="peer transport: uTP first with TCP fallback (any, default), uTP only, TCP only")
    p.add_argument("--port", type=int, default=0, help="TCP port to listen on (default: any)")
    p.add_argument("--listen-host", default="0.0.0.0", help="address to listen on (default: 0.0.0.0)")
    p.add_argument("--no-trackers", action="store_true", help="do not announce to the torrent's trackers")
    p.add_argument("--dht", action="store_true", help="find peers through the DHT too (BEP 5)")
    p.add_argument("--dht-bootstrap", action="append", type=parse_peer, default=[], metavar="HOST:PORT",
                   help="DHT bootstrap node (repeatable; default: the well-known public routers)")
    p.add_argument("--state-dir", type=Path, default=None,
                   help="keep resume data here so an interrupted download continues without a recheck")
    p.set_defaults(run=run)


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"


def human_eta(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def progress_line(label: str, st: SessionStatus) -> str:
    return (f"{label} {st.progress * 100:6.2f}%  {st.state:<11} down {human_bytes(st.download_rate)}/s"
            f"  up {human_bytes(st.upload_rate)}/s  peers {st.peers}  eta {human_eta(st.eta)}")


class ProgressDisplay:
    """One line per torrent; redrawn in place on a terminal, printed every few seconds otherwise."""

    def __init__(self, out: TextIO = sys.stderr, *, interval: float = 1.0) -> None:
        self.out = out
        self.tty = out.isatty()
        self.interval = interval if self.tty else max(interval, 5.0)
        self._lines = 0

    def show(self, lines: list[str]) -> None:
        if self.tty:
            if self._lines:
                self.out.write(f"\x1b[{self._lines}F")
            for line in lines:
                self.out.write("\x1b[2K" + line + "\n")
            self._lines = len(lines)
        else:
            for line in lines:
                self.out.write(line + "\n")
        self.out.flush()

    async def run(self, source: Callable[[], list[str]]) -> None:
        while True:
            self.show(source())
            await anyio.sleep(self.interval)


async def _download(args: argparse.Namespace) -> int:
    source: Torrent | Magnet
    if args.torrent.startswith("magnet:"):
        source = parse_magnet(args.torrent)
    else:
        source = await anyio.to_thread.run_sync(Torrent.load, args.torrent)
    bootstrap = tuple(args.dht_bootstrap) or PUBLIC_DHT_ROUTERS
    loopback = args.listen_host.startswith("127.")
    config = Config(listen_host=args.listen_host, listen_port=args.port, encryption=args.encryption,
                    seed=args.seed, tracker_enabled=not args.no_trackers, state_dir=args.state_dir,
                    dht_enabled=args.dht, dht_bootstrap=bootstrap, enforce_bep42=not loopback,
                    transport=args.transport)
    resume_path = None
    if args.state_dir is not None:
        resume_path = Path(args.state_dir) / "torrents" / f"{source.info_hash.hex()}.resume"
    display = ProgressDisplay()
    label = source.name if isinstance(source, Torrent) else source.display_name or source.info_hash.hex()
    label = label[:30]
    started = time.monotonic()
    interrupted = False
    session = Session(source, args.output, config=config, peers=args.peer, resume_path=resume_path)
    async with session:
        async with anyio.create_task_group() as tg:
            async def on_signal() -> None:
                nonlocal interrupted
                with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    async for _ in signals:
                        interrupted = True
                        tg.cancel_scope.cancel()
                        return

            tg.start_soon(on_signal)
            tg.start_soon(display.run, lambda: [progress_line(label, session.status())])
            try:
                await session.wait_completed()
            except SessionError as exc:
                display.show([progress_line(label, session.status())])
                print(f"torrent-engine download: {exc}", file=sys.stderr)
                tg.cancel_scope.cancel()
                return 1
            elapsed = time.monotonic() - started
            display.show([progress_line(label, session.status())])
            size = session.torrent.payload_size
            print(f"completed {session.torrent.name}: {human_bytes(size)} in {elapsed:.1f} s "
                  f"({size / max(elapsed, 1e-6) / 1e6:.1f} MB/s), every piece verified", file=sys.stderr)
            if not args.seed:
                tg.cancel_scope.cancel()
            else:
                print("seeding; press Ctrl-C to stop", file=sys.stderr)
    if interrupted:
        print("stopped", file=sys.stderr)
        return 0 if session.status().progress >= 1.0 else 130
    return 0


def run(args: argparse.Namespace) -> int:
    return run_loop(_download, args)
