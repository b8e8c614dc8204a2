"""qBittorrent's metadata calls (WebAPI 2.11.9–2.13: ``torrents/fetchMetadata``,
``parseMetadata``, ``saveMetadata``): the JSON a torrent's metainfo is shown as, and what the
dialect remembers between the calls (as qBittorrent's ``TorrentsController`` keeps its source and
metadata caches), bounded. Pure: no request, no I/O."""

from __future__ import annotations

from collections import OrderedDict
from typing import TypeVar

from ...formats.magnet import Magnet
from ...formats.metainfo import Torrent
from ...jsonvalue import JSON

K = TypeVar("K")
V = TypeVar("V")
MAX_REMEMBERED = 64  # torrents (and URLs) the dialect remembers between calls


def info_hash_record(torrent: Torrent | Magnet) -> dict[str, JSON]:
    """qBittorrent's ``serializeInfoHash``: what is known before the metadata."""
    v1 = torrent.info_hash_v1.hex() if torrent.info_hash_v1 is not None else ""
    v2 = torrent.info_hash_v2.hex() if torrent.info_hash_v2 is not None else ""
    return {"infohash_v1": v1, "infohash_v2": v2, "hash": torrent.info_hash.hex()}


def metadata_record(torrent: Torrent) -> dict[str, JSON]:
    """qBittorrent's ``serializeTorrentInfo`` of a torrent descriptor: the hashes, ``info``
    (files with their ``path`` from the torrent's top folder and ``length``, pad files left out
    as qBittorrent's file list has none), trackers with their tiers, web seeds and the metainfo's
    creator, date (``-1`` none, as qBittorrent's ``toSecsSinceEpoch`` of an invalid date) and
    comment."""
    files: list[JSON] = [{"path": "/".join(f.path), "length": f.length} for f in torrent.files if not f.pad]
    record = info_hash_record(torrent)
    record["info"] = {"files": files, "length": torrent.payload_size, "name": torrent.name,
                      "piece_length": torrent.piece_length, "pieces_num": torrent.num_pieces,
                      "private": torrent.private}
    record["trackers"] = [{"url": url, "tier": tier} for tier, urls in enumerate(torrent.trackers)
                          for url in urls]
    record["webseeds"] = list(torrent.web_seeds)
    record["created_by"] = torrent.created_by or ""
    record["creation_date"] = torrent.creation_date if torrent.creation_date is not None else -1
    record["comment"] = torrent.comment or ""
    return record


class MetadataMemory:
    """What ``fetchMetadata``/``parseMetadata`` learnt, for ``saveMetadata`` and ``torrents/add``:
    the metainfo by info-hash (hex), the magnets asked for whose metadata is being fetched, and
    the info-hash each fetched URL turned out to be. The oldest is forgotten past ``limit``."""

    def __init__(self, limit: int = MAX_REMEMBERED) -> None:
        self.limit = limit
        self.torrents: OrderedDict[str, Torrent] = OrderedDict()
        self.magnets: OrderedDict[str, Magnet] = OrderedDict()
        self.sources: OrderedDict[str, str] = OrderedDict()  # URL -> info-hash

    def keep(self, torrent: Torrent, source: str | None = None) -> None:
        """``torrent``'s metainfo is known (fetched from ``source``, a URL, if given)."""
        key = torrent.info_hash.hex()
        self.magnets.pop(key, None)
        _put(self.torrents, key, torrent, self.limit)
        if source is not None:
            _put(self.sources, source, key, self.limit)

    def asked(self, magnet: Magnet) -> None:
        """``magnet``'s metadata is being fetched."""
        _put(self.magnets, magnet.info_hash.hex(), magnet, self.limit)

    def forget(self, key: str, source: str | None = None) -> None:
        """An add took it (as qBittorrent's add drops it from its caches)."""
        self.torrents.pop(key, None)
        self.magnets.pop(key, None)
        if source is not None:
            self.sources.pop(source, None)


def _put(table: OrderedDict[K, V], key: K, value: V, limit: int) -> None:
    table[key] = value
    table.move_to_end(key)
    while len(table) > limit:
        table.popitem(last=False)
