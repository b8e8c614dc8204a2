"""Many torrents under one ``TorrentManager``: one listen socket, one DHT, shared rate limits,
and every session's events on the manager's bus. All of them download at once (the manager
holds none back: a queue, and jobs that survive a restart, are the job service's, see
``examples/job_service.py``).

    python examples/many_torrents.py downloads/ a.torrent b.torrent 'magnet:?xt=urn:btih:...'
    python examples/many_torrents.py downloads/ a.torrent b.torrent --local --peer 127.0.0.1:6881

Prints the events as they come and a line per torrent once all are complete.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import anyio

import torrent_engine as te


def address(text: str) -> tuple[str, int]:
    """``host:port`` as a pair."""
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def show(event: te.Event) -> None:
    """Print an event (all but the once-a-second stats)."""
    if isinstance(event, te.StatsUpdate):
        return
    detail = ""
    if isinstance(event, te.PieceCompleted):
        detail = f"piece {event.index}"
    elif isinstance(event, (te.PeerConnected, te.PeerDisconnected)):
        detail = f"{event.address}:{event.port}"
    print(f"{event.info_hash[:8] or '-':8} {event.name:26} {detail}", flush=True)


async def download_all(save_path: Path, sources: list[str], config: te.Config,
                       peers: tuple[tuple[str, int], ...]) -> None:
    """Add every source to one manager and wait until each is complete."""
    async with te.TorrentManager(config) as manager:
        manager.events.subscribe("*", show)  # every session's events, re-published
        sessions = [await manager.add(source, save_path, peers=peers) for source in sources]
        async with anyio.create_task_group() as tg:
            for session in sessions:
                tg.start_soon(session.wait_completed)
        for session in sessions:
            status = session.status()
            print(f"done: {status.name} {status.total_wanted} bytes, {status.state}", flush=True)


def main() -> int:
    """Parse the arguments and download."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("save_path", type=Path)
    parser.add_argument("sources", nargs="+", help=".torrent files or magnet links")
    parser.add_argument("--peer", type=address, action="append", default=[], help="HOST:PORT to dial")
    parser.add_argument("--local", action="store_true",
                        help="loopback only: no DHT, trackers, LSD or port mapping")
    args = parser.parse_args()
    config = te.Config(seed=False)
    if args.local:
        config = te.Config(seed=False, listen_host="127.0.0.1", dht_enabled=False, tracker_enabled=False,
                           lsd_enabled=False, port_mapping=False)
    te.run(download_all, args.save_path, args.sources, config, tuple(args.peer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
