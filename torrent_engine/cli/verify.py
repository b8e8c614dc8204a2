"""``torrent-engine verify FILE.torrent [-d DIR] [--all] [--json]``: check downloaded data against
a torrent's hashes, nothing written (``storage.datacheck``)."""

from __future__ import annotations

import argparse
import json
import sys

from ..engine.addtorrent import AddTorrentError, TorrentUrl, from_text, read_add_torrent
from ..formats.metainfo import Torrent
from ..storage.datacheck import DataCheck, FileCheck, check_data
from . import COMMANDS
from .create import PROGRESS_MIN_BYTES, HashProgress
from .info import human_size

_SHOWN = {"complete": "complete", "incomplete": "incomplete", "missing": "missing",
          "wrong_size": "wrong size", "unreadable": "unreadable"}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``verify`` subcommand to ``subparsers``."""
    p = subparsers.add_parser(
        "verify",
        help=COMMANDS["verify"],
        description="Hash the files a torrent names in the folder it was downloaded into and say "
        "which pieces verify and which files are complete, missing, of another size or damaged. "
        "Nothing is written. Exit status 0 when every piece verifies and every file is complete, "
        "1 otherwise (or on an error).",
    )
    p.add_argument("source", metavar="FILE.torrent|URL", help="a .torrent file, or an http(s) URL of one")
    p.add_argument("-d", "--dir", default=".", metavar="DIR",
                   help="the folder the torrent was downloaded into, as download's -o (default: .); a "
                   "torrent of several files has its own folder below it")
    p.add_argument("-a", "--all", action="store_true", help="list every file, the complete ones too")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.add_argument("--threads", type=int, default=2, help="hashing threads (default 2)")
    p.set_defaults(run=run)


def _torrent(source: str) -> Torrent:
    request = from_text(source)
    if isinstance(request, TorrentUrl):
        from ..engine.runtime import run as run_loop  # (fetched as download fetches it)
        from .download import load_source

        read = run_loop(load_source, request.url)
    else:
        read = read_add_torrent(request)
    if not isinstance(read, Torrent):
        raise AddTorrentError("a magnet link names no pieces to check: give the .torrent file", "magnet")
    return read


def _line(f: FileCheck) -> str:
    more = ""
    if f.state == "incomplete":
        more = f"  ({f.verified} of {f.pieces} pieces verified)"
    elif f.state == "wrong_size":
        more = f"  ({f.size_on_disk} bytes on disk, {f.length} in the torrent)"
    elif f.state == "unreadable":
        more = f"  ({f.reason})"
    return f"  {_SHOWN[f.state]:<10} {human_size(f.length):>10}  {f.path}{more}"


def report(torrent: Torrent, found: DataCheck, *, every: bool) -> str:
    """What ``verify`` prints of ``found``: the torrent, the files not complete (every file with
    ``every``), and the totals."""
    kind = "hybrid" if torrent.is_hybrid else "v2" if torrent.is_v2 else "v1"
    lines = [f"{torrent.name} ({kind}, {len(found.files)} files, {human_size(found.total_bytes)}, "
             f"{found.num_pieces} pieces of {human_size(torrent.piece_length)}) in {found.save_path}"]
    lines += [_line(f) for f in found.files if every or f.state != "complete"]
    pieces = len(found.verified)
    share = 100 * pieces / found.num_pieces if found.num_pieces else 100.0
    bad = sum(1 for f in found.files if f.state != "complete")
    rate = found.total_bytes / found.seconds if found.seconds > 0 else 0.0
    lines.append(f"{pieces} of {found.num_pieces} pieces verified ({share:.1f} %), "
                 f"{human_size(found.verified_bytes)} of {human_size(found.total_bytes)}; "
                 + (f"{bad} of {len(found.files)} files not complete" if bad else "every file complete")
                 + f"; hashed in {found.seconds:.1f} s ({human_size(int(rate))}/s)")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Check the data of ``args.source`` under ``args.dir``; 0 when it is all there and whole."""
    from ..engine.runtime import run as run_loop

    torrent = _torrent(args.source)
    show = not args.quiet and not args.json and torrent.total_length >= PROGRESS_MIN_BYTES
    bar = HashProgress(sys.stderr.isatty(), "checking") if show else None
    length = torrent.piece_length

    def progress(checked: int, total: int) -> None:
        if bar is not None:
            bar(min(checked * length, torrent.total_length), torrent.total_length)

    found = run_loop(lambda: check_data(torrent, args.dir, threads=args.threads, progress=progress))
    if args.json:
        print(json.dumps({"name": torrent.name, "save_path": str(found.save_path), "complete": found.complete,
                          "pieces": found.num_pieces, "verified_pieces": len(found.verified),
                          "verified_bytes": found.verified_bytes, "total_bytes": found.total_bytes,
                          "seconds": round(found.seconds, 3),
                          "files": [f.to_json() for f in found.files]}, indent=2))
    else:
        print(report(torrent, found, every=args.all))
    return 0 if found.complete else 1
