"""A custom storage: download a torrent into memory (no file is written) and print each file's
SHA-256, the way an object store or a cache would hold a torrent's data.

    python examples/memory_storage.py small.torrent
    python examples/memory_storage.py small.torrent --local --peer 127.0.0.1:6881

``Session(torrent, save_path, storage=factory)`` takes any ``factory(layout, save_path)`` that
returns a ``torrent_engine.storage.PieceStorage``: the session hands it verified pieces (and
single blocks when memory is short) and reads pieces back to seed them and to check them.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Callable
from pathlib import Path

import torrent_engine as te
from torrent_engine.formats.layout import TorrentLayout
from torrent_engine.storage import PieceStorage


class MemoryStorage:
    """A torrent's pieces in a dict (a ``PieceStorage``): piece index -> its bytes."""

    def __init__(self, layout: TorrentLayout) -> None:
        self.layout = layout
        self.pieces: dict[int, bytearray] = {}

    def _piece(self, index: int) -> bytearray:
        if index not in self.pieces:  # never written: zeros, which fail the piece's hash check
            self.pieces[index] = bytearray(self.layout.piece_size(index))
        return self.pieces[index]

    def file_path(self, file_index: int) -> Path | None:
        """No file is on disk."""
        return None

    async def write_block(self, index: int, begin: int, data: bytes | memoryview) -> None:
        """Write one block of a piece."""
        self._piece(index)[begin:begin + len(data)] = data

    async def write_piece_if(self, index: int, data: bytes | bytearray | memoryview,
                             check: Callable[[], bool]) -> bool:
        """Keep a whole piece if ``check()`` says it is still wanted."""
        if not check():
            return False
        self.pieces[index] = bytearray(data)
        return True

    async def read_block(self, index: int, begin: int, length: int) -> bytes:
        """Bytes of a piece (a peer asked for them)."""
        return bytes(self._piece(index)[begin:begin + length])

    async def read_piece(self, index: int) -> bytes:
        """A whole piece."""
        return bytes(self._piece(index))

    def read_piece_blocking(self, index: int) -> bytes:
        """A whole piece, from a worker thread (to check it)."""
        return bytes(self._piece(index))

    async def flush(self) -> None:
        """Nothing to make durable."""

    async def create_empty_files(self) -> None:
        """Empty files have no bytes to keep."""

    async def close(self) -> None:
        """Nothing to close."""

    async def delete_files(self) -> None:
        """Forget every piece."""
        self.pieces.clear()

    def file_bytes(self, file_index: int) -> bytes:
        """A file's bytes, read across the pieces it spans."""
        entry = self.layout.files[file_index]
        out = bytearray()
        offset, end = entry.offset, entry.offset + entry.length
        while offset < end:
            index, begin = divmod(offset, self.layout.piece_length)
            take = min(end - offset, self.layout.piece_size(index) - begin)
            out += self._piece(index)[begin:begin + take]
            offset += take
        return bytes(out)


def address(text: str) -> tuple[str, int]:
    """``host:port`` as a pair."""
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


async def fetch(torrent: te.Torrent, config: te.Config, peers: tuple[tuple[str, int], ...]) -> MemoryStorage:
    """Download ``torrent`` into a ``MemoryStorage`` and return it."""
    made: list[MemoryStorage] = []

    def factory(layout: TorrentLayout, save_path: Path) -> PieceStorage:
        made.append(MemoryStorage(layout))
        return made[-1]

    async with te.Session(torrent, ".", config=config, peers=peers, storage=factory) as session:
        await session.wait_completed()
        return made[-1]


def main() -> int:
    """Parse the arguments, download, print the files' digests."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("torrent", help=".torrent file")
    parser.add_argument("--peer", type=address, action="append", default=[], help="HOST:PORT to dial")
    parser.add_argument("--local", action="store_true",
                        help="loopback only: no DHT, trackers, LSD or port mapping")
    args = parser.parse_args()
    config = te.Config(seed=False)
    if args.local:
        config = te.Config(seed=False, listen_host="127.0.0.1", dht_enabled=False, tracker_enabled=False,
                           lsd_enabled=False, port_mapping=False)
    torrent = te.Torrent.load(args.torrent)
    storage = te.run(fetch, torrent, config, tuple(args.peer))
    for i, entry in enumerate(torrent.files):
        if not entry.pad:
            print(hashlib.sha256(storage.file_bytes(i)).hexdigest(), "/".join(entry.path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
