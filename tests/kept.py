"""The metainfo a state folder keeps (``storage/kept.py``), as tests look at it or damage it."""

from __future__ import annotations

from pathlib import Path

from torrent_engine.engine.manager import load_saved_metainfo
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.storage.kept import DB_FILE, MetainfoStore


def damage_kept(state_dir: Path, info_hash: bytes, data: bytes = b"garbage") -> None:
    """``info_hash``'s kept metainfo replaced by ``data`` (as a bad disk or a bad hand would)."""
    store = MetainfoStore(state_dir / DB_FILE)
    try:
        store.put_many([(info_hash, data)])
    finally:
        store.close()


def kept_hashes(state_dir: Path) -> set[str]:
    """The info-hashes (hex) whose metainfo the state folder keeps."""
    store = MetainfoStore(state_dir / DB_FILE)
    try:
        return {key.hex() for key in store.keys()}
    finally:
        store.close()


def kept_torrent(state_dir: Path, info_hash: bytes) -> Torrent | None:
    """``info_hash``'s kept metainfo, read as the manager reads it (None: none kept)."""
    store = MetainfoStore(state_dir / DB_FILE)
    try:
        data = store.get(info_hash)
    finally:
        store.close()
    return None if data is None else load_saved_metainfo(data)
