"""``torrent-engine demo``: a whole transfer on this machine, no network needed.

Makes a random payload in a temporary folder, creates its torrent, seeds it with one Session and
downloads it with another over 127.0.0.1 — real sockets, hashing and files — then compares.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import anyio

from ..config import TRANSPORTS, Config
from ..engine.runtime import run as run_loop
from ..events import PeerConnected
from ..session import Session
from ..storage.create import create_torrent
from ..units import human_bytes
from . import COMMANDS
from .display import ProgressDisplay, progress_line

CHUNK = 4 * 1024 * 1024


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``demo`` subcommand to ``subparsers``."""
    p = subparsers.add_parser("demo", help=COMMANDS["demo"],
                              description="Seed and download a generated payload between two sessions "
                                          "on 127.0.0.1 (no network needed).")
    p.add_argument("--size", type=int, default=256, metavar="MIB", help="payload size in MiB (default: 256)")
    p.add_argument("--piece-length", type=int, default=1024, metavar="KIB",
                   help="piece length in KiB (default: 1024)")
    p.add_argument("--encryption", choices=["prefer", "require", "disable"], default="disable",
                   help="MSE/PE policy of both sessions (default: disable)")
    p.add_argument("--transport", choices=TRANSPORTS, default="any",
                   help="peer transport of both sessions (default: any, i.e. uTP first, as a download)")
    p.add_argument("--keep", type=Path, default=None, metavar="DIR",
                   help="work in DIR and keep the files (default: a temporary folder, removed)")
    p.set_defaults(run=run)


def _write_payload(folder: Path, size: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    # a big file, a small odd-sized one and an empty one: pieces cross file boundaries
    sizes = {"payload.bin": max(size - 1_234_567, 1), "notes/readme.txt": min(size, 1_234_567), "empty": 0}
    for name, length in sizes.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            left = length
            while left > 0:
                n = min(CHUNK, left)
                f.write(os.urandom(n))
                left -= n


def _same_tree(a: Path, b: Path) -> bool:
    for src in sorted(p for p in a.rglob("*") if p.is_file()):
        dst = b / src.relative_to(a)
        if not dst.is_file() or dst.stat().st_size != src.stat().st_size:
            return False
        with open(src, "rb") as fa, open(dst, "rb") as fb:
            while True:
                x, y = fa.read(CHUNK), fb.read(CHUNK)
                if x != y:
                    return False
                if not x:
                    break
    return True


async def _demo(args: argparse.Namespace, work: Path) -> int:
    size = args.size * 1024 * 1024
    seed_dir, leech_dir = work / "seeder", work / "leecher"
    err = sys.stderr
    quiet = bool(getattr(args, "quiet", False))

    def say(text: str) -> None:  # (-q: only the result line at the end)
        if not quiet:
            print(text, file=err)

    say(f"demo: writing a {human_bytes(size)} payload in {work}")
    await anyio.to_thread.run_sync(_write_payload, seed_dir / "demo", size)
    t0 = time.monotonic()
    torrent = await anyio.to_thread.run_sync(
        lambda: create_torrent(seed_dir / "demo", piece_length=args.piece_length * 1024, version="hybrid"))
    say(f"demo: torrent created in {time.monotonic() - t0:.1f} s: {torrent.num_pieces} pieces of "
        f"{human_bytes(torrent.piece_length)}, info-hash {torrent.info_hash.hex()}")
    config = Config(listen_host="127.0.0.1", encryption=args.encryption, transport=args.transport,
                    tracker_enabled=False, dht_enabled=False, port_mapping=False,
                    lsd_enabled=False)
    display = ProgressDisplay(err)
    async with Session(torrent, seed_dir, config=config) as seeder:
        await seeder.wait_ready()
        say(f"demo: seeder checked its files and listens on 127.0.0.1:{seeder.listen_port}")
        started = time.monotonic()
        cpu0 = time.process_time()
        leecher = Session(torrent, leech_dir, config=config, peers=[("127.0.0.1", seeder.listen_port)])
        transports: list[str] = []
        leecher.events.subscribe(PeerConnected, lambda e: transports.append(e.transport))
        async with leecher:
            async with anyio.create_task_group() as tg:
                if not quiet:
                    tg.start_soon(display.run, lambda: [progress_line("seeder ", seeder.status()),
                                                        progress_line("leecher", leecher.status())])
                with anyio.fail_after(3600):
                    await leecher.wait_completed()
                tg.cancel_scope.cancel()
            elapsed = time.monotonic() - started
            cpu = time.process_time() - cpu0
            if not quiet:
                display.show([progress_line("seeder ", seeder.status()),
                              progress_line("leecher", leecher.status())])
            failures = leecher.hash_failures
    same = await anyio.to_thread.run_sync(_same_tree, seed_dir, leech_dir)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    over = " and ".join(sorted({"uTP" if t == "utp" else "TCP" for t in transports})) or "?"
    print(f"demo: downloaded {human_bytes(torrent.payload_size)} over {over} in {elapsed:.2f} s = "
          f"{torrent.payload_size / elapsed / 1e6:.1f} MB/s; {torrent.num_pieces} pieces SHA-1 verified, "
          f"{failures} hash failures; files identical: {'yes' if same else 'NO'}; "
          f"CPU {cpu:.1f} s; peak RSS {rss:.0f} MiB (both sessions, one process)", file=err)
    return 0 if same and failures == 0 else 1


def run(args: argparse.Namespace) -> int:
    """Seed and download a generated payload over loopback; return the exit code."""
    if args.size < 1:
        print("torrent-engine demo: --size must be at least 1 MiB", file=sys.stderr)
        return 2
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        return run_loop(_demo, args, args.keep)
    with tempfile.TemporaryDirectory(prefix="torrent-engine-demo-") as tmp:
        return run_loop(_demo, args, Path(tmp))
