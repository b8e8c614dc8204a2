"""``torrent-engine create PATH -o OUT.torrent ...``: hash a file or folder into a .torrent."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from ..errors import MetainfoError
from ..storage.create import Version, create_torrent
from ..units import human_bytes
from . import COMMANDS
from .units import parse_size, parse_threads

PROGRESS_MIN_BYTES = 32 * 1024 * 1024  # smaller inputs finish before a progress line helps


def piece_length_arg(text: str) -> int:
    """Bytes, or a size as every command reads one (``256K``, ``4M``, ``1G``: ``units.parse_size``);
    whether a torrent may have it is the creator's to say (``1G`` was "not a size")."""
    try:
        return parse_size(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected bytes or a size such as 256K or 4M, got {text!r}") from None


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``create`` subcommand to ``subparsers``."""
    p = subparsers.add_parser(
        "create",
        help=COMMANDS["create"],
        description="Hash a file or folder and write a .torrent (v1 unless told: --v2 or --hybrid).",
    )
    p.add_argument("path", metavar="PATH", help="the file or folder to share")
    p.add_argument("-o", "--output", required=True, metavar="OUT.torrent", help="where to write it")
    p.add_argument("-f", "--force", action="store_true", help="overwrite OUT.torrent if it exists")
    p.add_argument(
        "--tracker",
        action="append",
        default=[],
        metavar="URL",
        help="announce URL; repeat for more tiers, separate URLs of one tier with commas",
    )
    p.add_argument("--piece-length", type=piece_length_arg, metavar="N", help="bytes per piece (256K, 4M...)")
    kind = p.add_mutually_exclusive_group()
    kind.add_argument("--v1", dest="version", action="store_const", const="v1",
                      help="BitTorrent v1 (default)")
    kind.add_argument("--v2", dest="version", action="store_const", const="v2", help="BitTorrent v2 only")
    kind.add_argument(
        "--hybrid", dest="version", action="store_const", const="hybrid",
        help="v1 and v2 in one (BEP 52; some clients, e.g. Transmission 3.00, refuse it)"
    )
    p.add_argument("--private", action="store_true", help="private torrent (BEP 27: trackers only)")
    p.add_argument("--web-seed", action="append", default=[], metavar="URL", help="BEP 19 web seed")
    p.add_argument("--comment", metavar="TEXT")
    p.add_argument("--no-date", action="store_true", help="leave out the creation date")
    p.add_argument("--threads", type=parse_threads, default=2, help="hashing threads (default 2)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    p.set_defaults(run=run, version=None)


class HashProgress:
    """Hashing progress on stderr: percent, amount, rate. On a terminal one line redrawn in place;
    into a pipe or a file, a plain line every 5 s and at the end (no ``\r`` noise). ``label``
    begins the line (``create``'s hashing, ``verify``'s checking)."""

    def __init__(self, terminal: bool, label: str = "hashing") -> None:
        self.terminal = terminal
        self.label = label
        self.started = time.monotonic()
        self.last = self.started if not terminal else 0.0

    def __call__(self, done: int, total: int) -> None:
        """``done`` of ``total`` bytes hashed (a line shown at most every 0.2 s, 5 s into a pipe)."""
        now = time.monotonic()
        if now - self.last < (0.2 if self.terminal else 5.0) and done < total:
            return
        self.last = now
        rate = done / max(now - self.started, 1e-6)
        line = (f"{self.label} {100 * done / total:5.1f}%  {human_bytes(done)} / {human_bytes(total)}"
                f"  {human_bytes(int(rate))}/s")
        if self.terminal:
            sys.stderr.write(f"\r{line}   " + ("\n" if done >= total else ""))
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()


def _input_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    total = 0
    for dirpath, _, filenames in os.walk(path):
        for fn in filenames:
            p = Path(dirpath) / fn
            if p.is_file() and not p.is_symlink():
                total += p.stat().st_size
    return total


def check_output(out: Path, *, force: bool, option: str = "-o") -> None:
    """``MetainfoError`` naming ``option`` (before any hashing, or any download) when a .torrent
    cannot be written at ``out``: a folder, a file there already (unless ``force``), or a
    folder that does not exist or is not writable."""
    if out.is_dir():
        raise MetainfoError(f"{out} is a folder: give the name of the .torrent file to write", option)
    if out.exists() and not force:
        raise MetainfoError(f"{out} exists (use --force to overwrite it)", option)
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise MetainfoError(f"cannot write {out}: the folder {parent} does not exist", option)
    if not os.access(parent, os.W_OK):
        raise MetainfoError(f"cannot write {out}: the folder {parent} is not writable", option)


def run(args: argparse.Namespace) -> int:
    """Hash ``args.path`` and write its .torrent; return the exit code."""
    src = Path(args.path)
    if not src.exists():
        raise FileNotFoundError(f"no such file or directory: {src}")
    out = Path(args.output)
    check_output(out, force=args.force)
    tiers = [[u.strip() for u in t.split(",") if u.strip()] for t in args.tracker]
    # v1 by default, as mktorrent and transmission-create: Transmission 3.00 refuses hybrids and
    # aria2 shows their pad files as files; v2 and hybrid are there when asked for.
    version: Version = args.version or "v1"
    show = not args.quiet and _input_size(src) >= PROGRESS_MIN_BYTES
    torrent = create_torrent(
        src,
        version=version,
        piece_length=args.piece_length,
        trackers=[t for t in tiers if t],
        web_seeds=args.web_seed,
        private=args.private,
        comment=args.comment,
        creation_date=None if args.no_date else int(time.time()),
        threads=args.threads,
        progress=HashProgress(sys.stderr.isatty()) if show else None,
    )
    tmp = out.with_name(out.name + ".part")
    try:
        tmp.write_bytes(torrent.to_bytes())
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)  # never leave a half-written file behind
    print(f"wrote {out}")
    if torrent.info_hash_v1:
        print(f"info-hash v1: {torrent.info_hash_v1.hex()}")
    if torrent.info_hash_v2:
        print(f"info-hash v2: {torrent.info_hash_v2.hex()}")
    print(f"pieces:       {torrent.num_pieces} x {human_bytes(torrent.piece_length)}")
    if src.is_dir() and not torrent.is_multi_file:
        print(f"note: a v2 torrent's tree of one file names no folder (BEP 52): it holds "
              f"{torrent.files[0].path[0]} alone, so it is seeded from {src}, not from the folder above it")
    return 0
