"""The metainfo and resume data a state folder keeps (``storage/kept.py``), as tests look at
them or damage them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from torrent_engine.formats.metainfo import Torrent, load_saved_metainfo
from torrent_engine.storage.kept import DB_FILE, MetainfoStore
from torrent_engine.storage.resume import ResumeData, decode_resume, encode_resume


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


def kept_resume(state_dir: Path, info_hash: bytes) -> ResumeData | None:
    """``info_hash``'s resume data kept as a row (None: none), read as another process would
    while the manager runs (read-only: nothing taken in, no table made)."""
    rows = [data for key, data in _resume_rows(state_dir) if key == info_hash]
    return rows[0] if rows else None


def all_kept_resume(state_dir: Path) -> list[ResumeData]:
    """Every resume row the state folder keeps (read-only, as ``kept_resume``)."""
    return [data for _, data in _resume_rows(state_dir)]


def _resume_rows(state_dir: Path) -> list[tuple[bytes, ResumeData]]:
    path = state_dir / DB_FILE
    if not path.exists():
        return []
    db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        db.execute("PRAGMA busy_timeout=5000")
        rows = db.execute("SELECT info_hash, data FROM resume").fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise
    finally:
        db.close()
    return [(bytes(key), decode_resume(bytes(data))) for key, data in rows]


def keep_resume(state_dir: Path, data: ResumeData) -> None:
    """``data`` kept as its torrent's resume row, in place of what was (as a session of before
    might have left it)."""
    store = MetainfoStore(state_dir / DB_FILE)
    try:
        store.put_resume_many([(data.info_hash, encode_resume(data))])
    finally:
        store.close()


def forget_resume(state_dir: Path, info_hash: bytes) -> None:
    """``info_hash``'s resume row deleted (as a state folder that lost it)."""
    store = MetainfoStore(state_dir / DB_FILE)
    try:
        store.delete_resume(info_hash)
    finally:
        store.close()
