"""Seed a folder: make its torrent, write the .torrent beside it, and print the peers that come.

    python examples/seed.py my-folder/            # then share my-folder.torrent; Ctrl-C to stop
    python examples/seed.py my-folder/ --local --port 6881

The folder's data is already complete, so the session verifies it and seeds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import anyio

import torrent_engine as te


def main() -> int:
    """Parse the arguments, then seed until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--port", type=int, default=0, help="listen port (default: any free one)")
    parser.add_argument("--local", action="store_true",
                        help="loopback only: no DHT, trackers, LSD or port mapping")
    args = parser.parse_args()
    folder: Path = args.folder.resolve()
    torrent = te.create_torrent(folder)  # hybrid (v1 + v2), hashed in worker threads
    torrent_file = folder.with_suffix(".torrent")
    torrent_file.write_bytes(torrent.to_bytes())
    config = te.Config(listen_port=args.port)
    if args.local:
        config = te.Config(listen_host="127.0.0.1", listen_port=args.port, dht_enabled=False,
                           tracker_enabled=False, lsd_enabled=False, port_mapping=False)

    def joined(event: te.PeerConnected) -> None:
        print(f"peer connected: {event.address} {event.client}", flush=True)

    def left(event: te.PeerDisconnected) -> None:
        print(f"peer gone: {event.address} ({event.reason})", flush=True)

    async def seed() -> None:
        async with te.TorrentManager(config) as manager:
            session = await manager.add(torrent, save_path=folder.parent)
            session.events.subscribe(te.PeerConnected, joined)
            session.events.subscribe(te.PeerDisconnected, left)
            await session.wait_ready()  # checked: every piece is there
            print(f"seeding {torrent.name} ({torrent.payload_size} bytes) on port {session.listen_port}; "
                  f"torrent: {torrent_file}", flush=True)
            print(f"magnet: {torrent.magnet_uri()}", flush=True)
            await anyio.sleep_forever()  # until Ctrl-C

    try:
        te.run(seed)
    except KeyboardInterrupt:
        print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
