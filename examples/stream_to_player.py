"""Play a torrent's file while it downloads: pipe it, in order, into a media player's stdin.

    python examples/stream_to_player.py film.torrent downloads/                 # mpv by default
    python examples/stream_to_player.py film.torrent downloads/ --player 'vlc -'
    python examples/stream_to_player.py film.torrent downloads/ --file 2 --player 'ffplay -i -'

``session.open_file(i)`` returns a reader: the pieces under it (and a read-ahead window sized to
the reading rate) are fetched first, and ``read`` returns only verified bytes, waiting for them.
The rest of the torrent downloads too. (``torrent-engine stream`` serves the file over HTTP with
seeking instead: see docs/streaming.md.)
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import anyio

import torrent_engine as te

CHUNK = 256 * 1024


def address(text: str) -> tuple[str, int]:
    """``host:port`` as a pair."""
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


async def stream(torrent: te.Torrent, save_path: Path, index: int | None, player: list[str],
                 config: te.Config, peers: tuple[tuple[str, int], ...]) -> int:
    """Download ``torrent`` and pipe file ``index`` (default: the largest) into ``player``."""
    if index is None:
        index = max(range(len(torrent.files)), key=lambda i: torrent.files[i].length)
    entry = torrent.files[index]
    print(f"streaming {'/'.join(entry.path)} ({entry.length} bytes) into {shlex.join(player)}",
          file=sys.stderr, flush=True)
    async with te.Session(torrent, save_path, config=config, peers=peers) as session:
        async with await anyio.open_process(player, stdout=None, stderr=None) as process:
            assert process.stdin is not None
            async with session.open_file(index) as reader:
                sent = 0
                while chunk := await reader.read(CHUNK):
                    try:
                        await process.stdin.send(chunk)
                    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                        break  # the player quit: so do we
                    sent += len(chunk)
            await process.stdin.aclose()
            code = await process.wait()
        print(f"sent {sent} bytes; the player exited with {code}", file=sys.stderr, flush=True)
        return code


def main() -> int:
    """Parse the arguments and stream."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("torrent", help=".torrent file or magnet link")
    parser.add_argument("save_path", type=Path)
    parser.add_argument("--file", type=int, default=None, help="file index (default: the largest)")
    parser.add_argument("--player", default="mpv -", help="command that reads the file on its stdin")
    parser.add_argument("--peer", type=address, action="append", default=[], help="HOST:PORT to dial")
    parser.add_argument("--local", action="store_true",
                        help="loopback only: no DHT, trackers, LSD or port mapping")
    args = parser.parse_args()
    source = args.torrent
    if source.startswith("magnet:"):
        parser.error("this example takes a .torrent (a magnet's file list is known only once its "
                     "metadata came: torrent-engine stream takes both)")
    config = te.Config()
    if args.local:
        config = te.Config(listen_host="127.0.0.1", dht_enabled=False, tracker_enabled=False,
                           lsd_enabled=False, port_mapping=False)
    return te.run(stream, te.Torrent.load(source), args.save_path, args.file, shlex.split(args.player),
                  config, tuple(args.peer))


if __name__ == "__main__":
    sys.exit(main())
