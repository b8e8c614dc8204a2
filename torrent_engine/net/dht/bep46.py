"""BEP 46: a torrent that changes, named by a BEP 44 mutable item whose value is
``{"ih": <20-byte info-hash>}``; the item's ``seq`` is the version. Sans-I/O: the values put
and the reading of the values got.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import DHTError
from ...formats.bencode import BValue

__all__ = ["MutableTorrentError", "TorrentVersion", "info_hash_of", "torrent_value"]

INFO_HASH_KEY = b"ih"  # BEP 46


class MutableTorrentError(DHTError):
    """A BEP 46 item that cannot be used (absent, or a value that names no info-hash)."""


@dataclass(frozen=True, slots=True)
class TorrentVersion:
    """One version of a mutable torrent: the info-hash its item names, at sequence ``seq``."""

    info_hash: bytes
    seq: int


def torrent_value(info_hash: bytes) -> dict[bytes, BValue]:
    """The item value a publisher puts for the torrent ``info_hash`` (BEP 46)."""
    if len(info_hash) != 20:
        raise MutableTorrentError(f"an info-hash is 20 bytes, got {len(info_hash)}")
    return {INFO_HASH_KEY: info_hash}


def info_hash_of(value: BValue) -> bytes:
    """The info-hash a BEP 46 item value names; ``MutableTorrentError`` saying what is wrong."""
    if not isinstance(value, dict):
        raise MutableTorrentError(f"the item's value is a {type(value).__name__}, not a dictionary with 'ih'")
    ih = value.get(INFO_HASH_KEY)
    if ih is None:
        raise MutableTorrentError("the item's value has no 'ih' key (BEP 46)")
    if not isinstance(ih, bytes) or len(ih) != 20:
        shown = len(ih) if isinstance(ih, bytes) else type(ih).__name__
        raise MutableTorrentError(f"the item's 'ih' is not a 20-byte info-hash ({shown})")
    return ih
