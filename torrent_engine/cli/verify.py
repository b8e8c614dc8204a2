"""``torrent-engine verify FILE.torrent [-d DIR] [--find-in SRC [--place MODE]] [--all] [--json]``:
check downloaded data against a torrent's hashes (``storage.datacheck``), nothing written; with
``--find-in``, look for the files missing there among other files by their content
(``storage.findfiles``), and with ``--place``, put those found in place first."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ..engine.addtorrent import AddTorrentError, TorrentUrl, from_text, read_add_torrent
from ..errors import StorageError
from ..formats.layout import FileMap
from ..formats.metainfo import Torrent
from ..policy.dedup import DedupMode, methods
from ..storage.datacheck import DataCheck, FileCheck, check_data, look_at
from ..storage.dedup import PlaceError, place_file
from ..storage.findfiles import Found, alone, find_files
from ..storage.paths import real_path, safe_join
from ..units import human_bytes
from . import COMMANDS
from .create import PROGRESS_MIN_BYTES, HashProgress
from .units import parse_threads

_SHOWN = {"complete": "complete", "incomplete": "incomplete", "missing": "missing",
          "wrong_size": "wrong size", "unreadable": "unreadable"}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``verify`` subcommand to ``subparsers``."""
    p = subparsers.add_parser(
        "verify",
        help=COMMANDS["verify"],
        description="Hash the files a torrent names in the folder it was downloaded into and say "
        "which pieces verify and which files are complete, missing, of another size or damaged. "
        "Nothing is written unless --place says. Exit status 0 when every piece verifies and "
        "every file is complete, 1 otherwise (or on an error).",
    )
    p.add_argument("source", metavar="FILE.torrent|URL", help="a .torrent file, or an http(s) URL of one")
    p.add_argument("-d", "--dir", default=".", metavar="DIR",
                   help="the folder the torrent was downloaded into, as download's -o (default: .); a "
                   "torrent of several files has its own folder below it")
    p.add_argument("-a", "--all", action="store_true", help="list every file, the complete ones too")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.add_argument("--find-in", action="append", default=[], type=Path, metavar="SRC",
                   help="look for the files missing in DIR among the files under SRC (repeat for more "
                   "folders): a file of the same size whose pieces verify, whatever its name")
    p.add_argument("--place", choices=["reflink", "hardlink", "copy"], metavar="MODE",
                   help="put each file --find-in found at its place in DIR before the check: reflink "
                   "(shares the blocks where the file system can, else a copy), hardlink (else a copy; "
                   "a copy too of a file that shares a piece with another) or copy; never over a file "
                   "that is there")
    p.add_argument("--threads", type=parse_threads, default=2, help="hashing threads (default 2)")
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
    return f"  {_SHOWN[f.state]:<10} {human_bytes(f.length):>10}  {f.path}{more}"


def report(torrent: Torrent, found: DataCheck, *, every: bool) -> str:
    """What ``verify`` prints of ``found``: the torrent, the files not complete (every file with
    ``every``), and the totals."""
    kind = "hybrid" if torrent.is_hybrid else "v2" if torrent.is_v2 else "v1"
    lines = [f"{torrent.name} ({kind}, {len(found.files)} files, {human_bytes(found.total_bytes)}, "
             f"{found.num_pieces} pieces of {human_bytes(torrent.piece_length)}) in {found.save_path}"]
    lines += [_line(f) for f in found.files if every or f.state != "complete"]
    pieces = len(found.verified)
    share = 100 * pieces / found.num_pieces if found.num_pieces else 100.0
    bad = sum(1 for f in found.files if f.state != "complete")
    # (a rate only when all was read: pieces of missing files cost no read)
    rate = f" ({human_bytes(int(found.total_bytes / found.seconds))}/s)" \
        if found.seconds > 0 and pieces == found.num_pieces else ""
    lines.append(f"{pieces} of {found.num_pieces} pieces verified ({share:.1f} %), "
                 f"{human_bytes(found.verified_bytes)} of {human_bytes(found.total_bytes)}; "
                 + (f"{bad} of {len(found.files)} files not complete" if bad else "every file complete")
                 + f"; checked in {found.seconds:.1f} s{rate}")
    return "\n".join(lines)


def _at_place(torrent: Torrent, root: Path) -> tuple[list[int], dict[int, Path]]:
    """The stored files (not pad files or links) with nothing at their path under ``root``, and
    those there at their size and readable (by index: their path), which pieces shared with a
    missing one read; as ``check_data`` finds them (``datacheck.look_at``)."""
    missing, present = [], {}
    for i, f in enumerate(torrent.files):
        if f.pad or "l" in f.attr or f.length == 0:
            continue
        path = safe_join(root, f.path)
        size, why = look_at(root, path)
        if size is None and not why and not os.path.lexists(path):  # (a dangling link is not nothing)
            missing.append(i)
        elif size == f.length and not why:
            present[i] = path
    return missing, present


def _find(torrent: Torrent, root: Path, args: argparse.Namespace) -> list[dict[str, object]]:
    """``--find-in`` and ``--place``: what was found of each missing file, where, and how it was
    placed (or why not), each said on stderr unless ``--json`` or ``-q``."""
    say = not args.quiet and not args.json
    folders = [real_path(f) for f in args.find_in]
    for folder in folders:
        if not folder.is_dir():
            raise StorageError(f"--find-in {folder}: is not a folder to look in")
    wanted, present = _at_place(torrent, root)
    if say:
        print(f"looking for {len(wanted)} missing file(s) in {', '.join(map(str, folders))}", file=sys.stderr)
    out: list[dict[str, object]] = []
    spans = FileMap(torrent)
    for found in find_files(torrent, wanted, folders, present):
        f = torrent.files[found.index]
        path = "/".join(f.path)
        row: dict[str, object] = {"path": path, "source": str(found.source) if found.source else None,
                                  "placed": None, "why": found.why}
        if found.source is not None and args.place:
            mode: DedupMode = args.place
            # (a hard link of a file sharing a piece: that piece's download would go into the source)
            ways = methods(mode) if mode != "hardlink" or alone(spans, found.index) else ("copy",)
            try:
                placed = place_file(found.source, safe_join(root, f.path), f.length, ways)
                row["placed"] = placed.method
                row["why"] = "; ".join(f"{way} refused: {why}" for way, why in placed.refused)
            except PlaceError as exc:
                row["why"] = str(exc)
        out.append(row)
        if say:
            print(_found_line(found, path, row), file=sys.stderr)
    return out


def _found_line(found: Found, path: str, row: dict[str, object]) -> str:
    if found.source is None:
        return f"  not found  {path}: {found.why}"
    if row["placed"]:
        refused = f"; {row['why']}" if row["why"] else ""
        return f"  placed     {path} from {found.source} ({row['placed']}{refused})"
    if row["why"]:
        return f"  found      {path} in {found.source}, not placed: {row['why']}"
    return f"  found      {path} in {found.source} (--place puts it there)"


def run(args: argparse.Namespace) -> int:
    """Check the data of ``args.source`` under ``args.dir``; 0 when it is all there and whole."""
    from ..engine.runtime import run as run_loop

    torrent = _torrent(args.source)
    if args.place and not args.find_in:
        raise StorageError("--place puts the files --find-in finds: give --find-in SRC too")
    root = real_path(args.dir)
    found = _find(torrent, root, args) if args.find_in and root.is_dir() else None
    show = not args.quiet and not args.json and torrent.total_length >= PROGRESS_MIN_BYTES
    bar = HashProgress(sys.stderr.isatty(), "checking") if show else None
    length = torrent.piece_length

    def progress(checked: int, total: int) -> None:
        if bar is not None:
            bar(min(checked * length, torrent.total_length), torrent.total_length)

    checked = run_loop(lambda: check_data(torrent, args.dir, threads=args.threads, progress=progress))
    if args.json:
        doc: dict[str, object] = {
            "name": torrent.name, "save_path": str(checked.save_path), "complete": checked.complete,
            "pieces": checked.num_pieces, "verified_pieces": len(checked.verified),
            "verified_bytes": checked.verified_bytes, "total_bytes": checked.total_bytes,
            "seconds": round(checked.seconds, 3), "files": [f.to_json() for f in checked.files]}
        if found is not None:
            doc["found"] = found
        print(json.dumps(doc, indent=2))
    else:
        print(report(torrent, checked, every=args.all))
    return 0 if checked.complete else 1
