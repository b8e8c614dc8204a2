"""``torrent-engine scrape FILE.torrent``: seeders, leechers and completed downloads per tracker."""

from __future__ import annotations

import argparse
import json

import anyio

from ..engine.addtorrent import TorrentFile, read_add_torrent
from ..engine.runtime import run as run_loop
from ..errors import TrackerError
from ..formats.metainfo import Torrent
from ..net.tracker.client import scrape
from ..net.tracker.messages import ScrapeStats
from ..net.tracker.udp import UdpTrackerClient
from . import COMMANDS


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``scrape`` subcommand to ``subparsers``."""
    p = subparsers.add_parser(
        "scrape",
        help=COMMANDS["scrape"],
        description="Scrape every tracker of a .torrent file (HTTP per BEP 48, UDP per BEP 15) "
        "and print seeders, leechers and completed downloads per tracker.",
    )
    p.add_argument("torrent", metavar="FILE.torrent", help="a .torrent file")
    p.add_argument("--timeout", type=float, default=15.0, help="seconds per tracker (default 15)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.set_defaults(run=run)


async def scrape_all(
    torrent: Torrent, timeout: float
) -> list[tuple[int, str, ScrapeStats | None, str | None]]:
    """(tier, url, stats or None, error or None) for every tracker, all scraped at once."""
    urls = [(tier, url) for tier, urls in enumerate(torrent.trackers) for url in urls]
    results: list[tuple[int, str, ScrapeStats | None, str | None]] = [(t, u, None, None) for t, u in urls]
    udp = UdpTrackerClient()

    async def one(i: int) -> None:
        tier, url = urls[i]
        try:
            response = await scrape(url, [torrent.info_hash], timeout=timeout, udp=udp)
        except TrackerError as exc:
            results[i] = (tier, url, None, exc.reason)
            return
        stats = response.files.get(torrent.info_hash)
        results[i] = (tier, url, stats, None if stats else "tracker does not list this torrent")

    async with anyio.create_task_group() as tg:
        for i in range(len(urls)):
            tg.start_soon(one, i)
    return results


def run(args: argparse.Namespace) -> int:
    """Scrape every tracker of ``args.torrent`` and print what each answered; return the exit code."""
    torrent = read_add_torrent(TorrentFile(args.torrent))  # (one it cannot read or parse: named)
    assert isinstance(torrent, Torrent)  # (a file's: never a magnet)
    if not torrent.trackers:
        print(f"{torrent.name}: no trackers (trackerless torrent)")
        return 1
    results = run_loop(scrape_all, torrent, args.timeout)
    if args.json:
        rows = [
            {
                "tier": tier,
                "url": url,
                "seeders": stats.complete if stats else None,
                "leechers": stats.incomplete if stats else None,
                "completed": stats.downloaded if stats else None,
                "error": error,
            }
            for tier, url, stats, error in results
        ]
        print(json.dumps({"name": torrent.name, "info_hash": torrent.info_hash.hex(), "trackers": rows}))
    else:
        print(f"{torrent.name} ({torrent.info_hash.hex()})")
        width = max(len(url) for _, url, _, _ in results)
        print(f"{'TIER':>4}  {'TRACKER':<{width}}  {'SEEDERS':>8} {'LEECHERS':>8} {'COMPLETED':>9}")
        for tier, url, stats, error in results:
            if stats is not None:
                counts = f"{stats.complete:>8} {stats.incomplete:>8} {stats.downloaded:>9}"
            else:
                counts = f"error: {error}"
            print(f"{tier:>4}  {url:<{width}}  {counts}")
    return 0 if any(stats is not None for _, _, stats, _ in results) else 1
