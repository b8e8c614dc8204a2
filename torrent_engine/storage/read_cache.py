"""The pieces read for the peers being served, one LRU and one byte budget for every torrent of an
engine. Each torrent keeps its pieces on its own ``Shelf`` (what its peers are being sent and what
is read ahead for them, within a budget that follows how many it serves); the cache bounds them
all together, so what seeding holds in memory follows the peers served now, never the number of
torrents served once. Pure bookkeeping: no I/O, no clock.
"""

from __future__ import annotations

from collections import OrderedDict

__all__ = ["ReadCache", "Shelf"]

READ_CACHE_SIZE = 32 * 1024 * 1024  # bytes for every torrent together


class ReadCache:
    """Verified pieces by torrent (``Shelf``) and piece index, least recently used first out."""

    def __init__(self, max_bytes: int = READ_CACHE_SIZE) -> None:
        if max_bytes < 0:
            raise ValueError("a read cache's size must be >= 0")
        self.max_bytes = max_bytes
        self.bytes = 0
        self._lru: OrderedDict[tuple[Shelf, int], None] = OrderedDict()  # every piece held, oldest first

    def shelf(self) -> Shelf:
        """A new torrent's place in the cache."""
        return Shelf(self)

    def __len__(self) -> int:
        return len(self._lru)

    def _touch(self, shelf: Shelf, index: int) -> None:
        self._lru.move_to_end((shelf, index))

    def _added(self, shelf: Shelf, index: int, size: int) -> None:
        self._lru[(shelf, index)] = None
        self.bytes += size
        while self.bytes > self.max_bytes and len(self._lru) > 1:
            (oldest, i), _ = self._lru.popitem(last=False)
            self.bytes -= oldest._forget(i)

    def _removed(self, shelf: Shelf, index: int, size: int) -> None:
        del self._lru[(shelf, index)]
        self.bytes -= size


class Shelf:
    """One torrent's pieces in the shared cache: ``get``, ``put`` within a budget of its own,
    ``drop`` a piece (no longer to be served from memory), ``clear`` all of them."""

    __slots__ = ("_cache", "_pieces", "bytes", "__weakref__")

    def __init__(self, cache: ReadCache) -> None:
        self._cache = cache
        self._pieces: OrderedDict[int, bytes] = OrderedDict()  # this torrent's, oldest first
        self.bytes = 0

    def __contains__(self, index: object) -> bool:
        return index in self._pieces

    def __len__(self) -> int:
        return len(self._pieces)

    def get(self, index: int) -> bytes | None:
        """Piece ``index`` if held (it becomes the most recently used)."""
        data = self._pieces.get(index)
        if data is not None:
            self._pieces.move_to_end(index)
            self._cache._touch(self, index)
        return data

    def put(self, index: int, data: bytes, budget: int) -> None:
        """Hold piece ``index``; this torrent's oldest pieces go while it holds more than
        ``budget`` bytes (one piece is always kept), the whole cache's oldest while it holds more
        than its size."""
        self.drop(index)
        self._pieces[index] = data
        self.bytes += len(data)
        while self.bytes > budget and len(self._pieces) > 1:
            oldest = next(iter(self._pieces))
            self.drop(oldest)
        self._cache._added(self, index, len(data))

    def drop(self, index: int) -> None:
        """Piece ``index`` is held no more."""
        data = self._pieces.pop(index, None)
        if data is not None:
            self.bytes -= len(data)
            self._cache._removed(self, index, len(data))

    def clear(self) -> None:
        """None of this torrent's pieces is held any more."""
        for index in list(self._pieces):
            self.drop(index)

    def _forget(self, index: int) -> int:
        """The cache let piece ``index`` go (it is the oldest of all): its size."""
        data = self._pieces.pop(index)
        self.bytes -= len(data)
        return len(data)
