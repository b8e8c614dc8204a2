"""Download a torrent (a .torrent file, its URL or a magnet link) with a progress bar.

    python examples/download.py ubuntu.torrent downloads/
    python examples/download.py 'magnet:?xt=urn:btih:...' downloads/
    python examples/download.py x.torrent downloads/ --local --peer 127.0.0.1:6881   # one machine

``te.download`` blocks until every piece is verified and calls ``progress`` about once a second.
"""

from __future__ import annotations

import argparse
import shutil
import sys

import torrent_engine as te


def progress_bar(status: te.SessionStatus) -> None:
    """One line, redrawn in place: bar, percentage, rate, peers."""
    width = max(10, min(40, shutil.get_terminal_size().columns - 45))
    done = int(status.progress * width)
    sys.stdout.write(f"\r[{'#' * done}{'.' * (width - done)}] {status.progress:6.1%} "
                     f"{status.download_rate / 1e6:6.2f} MB/s {status.peers:3d} peers")
    sys.stdout.flush()


def address(text: str) -> tuple[str, int]:
    """``host:port`` as a pair."""
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def main() -> int:
    """Parse the arguments, download, print a summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help=".torrent file, its URL, or a magnet link")
    parser.add_argument("save_path", help="folder to download into")
    parser.add_argument("--peer", type=address, action="append", default=[], help="HOST:PORT to dial")
    parser.add_argument("--local", action="store_true",
                        help="loopback only: no DHT, trackers, LSD or port mapping")
    args = parser.parse_args()
    config = te.Config()
    if args.local:
        config = te.Config(listen_host="127.0.0.1", dht_enabled=False, tracker_enabled=False,
                           lsd_enabled=False, port_mapping=False)
    try:
        summary = te.download(args.source, args.save_path, config=config, peers=tuple(args.peer),
                              progress=progress_bar)
    except te.TorrentEngineError as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 1
    print(f"\n{summary.name}: {summary.size} bytes in {summary.seconds:.1f} s, saved in {summary.save_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
