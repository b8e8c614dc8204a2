"""``torrent-engine info FILE.torrent|MAGNET [--json]``: what a torrent or magnet link holds."""

from __future__ import annotations

import argparse
import datetime
import json
from typing import Literal, TypedDict

from ..engine.addtorrent import TorrentUrl, from_text, read_add_torrent
from ..formats.magnet import Magnet
from ..formats.metainfo import Torrent
from ..units import human_bytes
from . import COMMANDS


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``info`` subcommand to ``subparsers``."""
    p = subparsers.add_parser(
        "info",
        help=COMMANDS["info"],
        description="Show the name, info-hashes, files, pieces, trackers and web seeds of a "
        ".torrent file (or the URL of one) or a magnet link.",
    )
    p.add_argument("source", metavar="FILE.torrent|URL|MAGNET",
                   help="a .torrent file, an http(s) URL of one (as download takes), or a magnet: URI")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.set_defaults(run=run)


class FileSummary(TypedDict):
    """One file of a .torrent as ``info --json`` shows it."""

    index: int
    path: str
    length: int
    attr: str


class TorrentSummary(TypedDict):
    """What ``info --json`` shows of a .torrent."""

    kind: Literal["torrent"]
    name: str
    version: str
    info_hash: str
    info_hash_v1: str | None
    info_hash_v2: str | None
    piece_length: int
    num_pieces: int
    total_size: int
    private: bool
    trackers: list[list[str]]
    web_seeds: list[str]
    comment: str | None
    created_by: str | None
    creation_date: int | None
    files: list[FileSummary]
    magnet: str


class MagnetSummary(TypedDict):
    """What ``info --json`` shows of a magnet link."""

    kind: Literal["magnet"]
    name: str | None
    info_hash: str
    info_hash_v1: str | None
    info_hash_v2: str | None
    exact_length: int | None
    trackers: list[str]
    web_seeds: list[str]
    peers: list[str]
    select_only: list[list[int]]


def torrent_summary(t: Torrent) -> TorrentSummary:
    """What ``info`` shows of a .torrent, as a JSON-ready dict."""
    return {
        "kind": "torrent",
        "name": t.name,
        "version": "hybrid" if t.is_hybrid else "v2" if t.is_v2 else "v1",
        "info_hash": t.info_hash.hex(),
        "info_hash_v1": t.info_hash_v1.hex() if t.info_hash_v1 else None,
        "info_hash_v2": t.info_hash_v2.hex() if t.info_hash_v2 else None,
        "piece_length": t.piece_length,
        "num_pieces": t.num_pieces,
        "total_size": t.payload_size,
        "private": t.private,
        "trackers": [list(tier) for tier in t.trackers],
        "web_seeds": list(t.web_seeds),
        "comment": t.comment,
        "created_by": t.created_by,
        "creation_date": t.creation_date,
        "files": [
            {"index": i, "path": "/".join(f.path), "length": f.length, "attr": f.attr}
            for i, f in enumerate(f for f in t.files if not f.pad)
        ],
        "magnet": t.magnet_uri(),
    }


def magnet_summary(m: Magnet) -> MagnetSummary:
    """What ``info`` shows of a magnet link, as a JSON-ready dict."""
    return {
        "kind": "magnet",
        "name": m.display_name,
        "info_hash": m.info_hash.hex(),
        "info_hash_v1": m.info_hash_v1.hex() if m.info_hash_v1 else None,
        "info_hash_v2": m.info_hash_v2.hex() if m.info_hash_v2 else None,
        "exact_length": m.exact_length,
        "trackers": list(m.trackers),
        "web_seeds": list(m.web_seeds),
        "peers": [f"{h}:{p}" for h, p in m.peers],
        "select_only": [[lo, hi] for lo, hi in m.select_only],
    }


def _text(s: TorrentSummary | MagnetSummary) -> str:
    lines: list[str] = []

    def row(label: str, value: object) -> None:
        lines.append(f"{label + ':':<14}{value}")

    row("name", s["name"] if s["name"] is not None else "(unknown)")
    if s["info_hash_v1"]:
        row("info-hash v1", s["info_hash_v1"])
    if s["info_hash_v2"]:
        row("info-hash v2", s["info_hash_v2"])
    if s["kind"] == "magnet":
        if s["exact_length"] is not None:
            row("size", human_bytes(s["exact_length"]))
        row("trackers", len(s["trackers"]))
        lines.extend(f"  {u}" for u in s["trackers"])
        if s["web_seeds"]:
            row("web seeds", len(s["web_seeds"]))
            lines.extend(f"  {u}" for u in s["web_seeds"])
        if s["peers"]:
            row("peers", " ".join(s["peers"]))
        if s["select_only"]:
            row("select only", ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in s["select_only"]))
        return "\n".join(lines)
    row("version", s["version"])
    row("size", f"{human_bytes(s['total_size'])} ({s['total_size']} bytes)")
    row("pieces", f"{s['num_pieces']} x {human_bytes(s['piece_length'])}")
    row("private", "yes" if s["private"] else "no")
    if s["comment"]:
        row("comment", s["comment"])
    if s["created_by"]:
        row("created by", s["created_by"])
    if s["creation_date"] is not None:
        when = datetime.datetime.fromtimestamp(s["creation_date"], tz=datetime.UTC)
        row("created", when.strftime("%Y-%m-%d %H:%M:%S UTC"))
    row("trackers", sum(len(t) for t in s["trackers"]))
    for i, tier in enumerate(s["trackers"]):
        lines.extend(f"  tier {i}: {u}" for u in tier)
    row("web seeds", len(s["web_seeds"]))
    lines.extend(f"  {u}" for u in s["web_seeds"])
    row("files", len(s["files"]))
    width = max((len(str(f["length"])) for f in s["files"]), default=1)
    digits = len(str(max(len(s["files"]) - 1, 0)))
    for index, f in enumerate(s["files"]):  # the index --select-file takes
        lines.append(f"  [{index:>{digits}}] {f['length']:>{width}}  {f['path']}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Show a .torrent file's or magnet link's contents; return the exit code."""
    request = from_text(args.source)
    summary: TorrentSummary | MagnetSummary
    if isinstance(request, TorrentUrl):
        from ..engine.runtime import run as run_loop  # (fetched as download fetches it)
        from .download import load_source

        read = run_loop(load_source, request.url)
    else:
        read = read_add_torrent(request)
    summary = magnet_summary(read) if isinstance(read, Magnet) else torrent_summary(read)
    print(json.dumps(summary, indent=2) if args.json else _text(summary))
    return 0
