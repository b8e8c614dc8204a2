"""The metainfo a ``TorrentManager`` keeps between runs: ``state_dir/torrents.sqlite3``.

One row per torrent, its info-hash (as it was added by) and its bencoded metainfo, in SQLite
(WAL mode, ``synchronous=FULL``): a batch of adds is one transaction, committed (the WAL written
and fsynced) before the call returns, so a torrent whose add was acknowledged survives a SIGKILL
or a power loss. One file a torrent (write, fsync, rename, a sync of the folder) cost the
kernel's work of creating a file each: 25 of them took 5.4-14.0 ms a batch on this machine's
disk, against 0.7-1.2 ms for the same 25 rows in the same runs (bench/RESULTS.md, "The metainfo
kept in one database").

A state folder from the earlier layout (``torrents/<info-hash>.torrent``, one file each) is taken
in when the store first opens: the files' bytes inserted in one transaction, and only once it is
committed are the files removed (a crash between the two takes them in again, the same bytes).
A row already in the store wins over a file of the same torrent.

The writes block (an fsync) and are made on worker threads: one connection, one thread at a
time. The reads have a connection of their own (WAL: a read sees the last commit and never waits
for a write under way), so a small read on the event loop's thread (a dormant seed's metainfo an
API call asks for) is not held behind a batch's fsync.

The ``resume`` table holds the resume data of torrents checked without a session (the job
service's checks of imported data): one row each, written in groups, where a file each cost the
kernel's work of creating a file (``bench/RESULTS.md``, "Resume data of checks kept as rows").
A session reads and writes its resume data as a file: the manager writes a row out as the file
before a session of that torrent starts, and a row is never kept beside a newer file (writing
rows removes those torrents' files).

A failure is an ``OSError`` (``MetainfoStoreError``: what SQLite said, and the file), whose
``errno`` is ``ENOSPC`` when SQLite found the disk full, so a caller that handles a failed
write of a file handles this one alike.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from .database import Database, transaction

__all__ = ["DB_FILE", "LEGACY_SUFFIX", "MetainfoStore", "MetainfoStoreError"]

log = logging.getLogger(__name__)

DB_FILE = "torrents.sqlite3"
LEGACY_SUFFIX = ".torrent"  # the earlier layout's files, in the folder given as ``legacy``
SCHEMA_VERSION = 1
TABLES = ("CREATE TABLE IF NOT EXISTS metainfo (info_hash BLOB PRIMARY KEY, data BLOB NOT NULL)",
          # (added in the same schema: a store of before gains it at its next open, and a reader
          # of before that never looks at it checks those torrents again)
          "CREATE TABLE IF NOT EXISTS resume (info_hash BLOB PRIMARY KEY, data BLOB NOT NULL)")


class MetainfoStoreError(OSError):
    """The metainfo store could not be read or written (what SQLite said, and the file); its
    ``errno`` is ``ENOSPC`` when SQLite found the disk full."""


class MetainfoStore:
    """The kept metainfo, by info-hash: ``put_many``, ``get``, ``delete``, ``keys``; and resume
    data kept as rows: ``put_resume_many``, ``get_resume``, ``delete_resume``, ``resume_keys``.

    ``path``: the database; ``legacy``: the folder of the earlier layout's ``<hex>.torrent``
    files, taken in at the first open. Nothing is created until something is written or read."""

    def __init__(self, path: Path, legacy: Path | None = None) -> None:
        self.path = path
        self.legacy = legacy
        self.taken_in = 0  # files of the earlier layout taken in at this open
        # (opened at its first use: its tables made, an earlier layout taken in)
        self._db = Database(path, TABLES, SCHEMA_VERSION, what=f"metainfo store {path}",
                            error=MetainfoStoreError, setup=self._take_in)

    def _take_in(self, db: sqlite3.Connection) -> None:
        """The earlier layout's files, inserted (a row there already wins), then removed."""
        if self.legacy is None:
            return
        try:
            names = [n for n in os.listdir(self.legacy) if n.endswith(LEGACY_SUFFIX)]
        except FileNotFoundError:
            return
        rows: list[tuple[bytes, bytes]] = []
        paths: list[Path] = []
        for name in names:
            stem = name[:-len(LEGACY_SUFFIX)]
            try:
                key = bytes.fromhex(stem)
            except ValueError:
                continue  # (not a file the manager wrote)
            if len(key) not in (20, 32):
                continue
            path = self.legacy / name
            try:
                rows.append((key, path.read_bytes()))
            except OSError as exc:
                log.warning("cannot read %s to take it into %s: %s (left where it is)", path, self.path, exc)
                continue
            paths.append(path)
        if not rows:
            return
        with transaction(db):
            db.executemany("INSERT OR IGNORE INTO metainfo VALUES (?, ?)", rows)
        for path in paths:  # (committed: the files can go)
            path.unlink(missing_ok=True)
        self.taken_in = len(rows)
        log.info("%d .torrent files of %s taken into %s", len(rows), self.legacy, self.path)

    def close(self) -> None:
        """Close the database (it opens again on the next call)."""
        self._db.close()

    def put_many(self, items: Sequence[tuple[bytes, bytes]]) -> None:
        """Keep each (info-hash, metainfo), replacing what was kept for it: one transaction,
        committed on return."""
        self._upsert(("metainfo", items))

    def put_with_resume(self, metainfo: Sequence[tuple[bytes, bytes]],
                        resume: Sequence[tuple[bytes, bytes]]) -> None:
        """``put_many(metainfo)`` and ``put_resume_many(resume)`` in one transaction (torrents
        added together, with their first resume data: one sync of the disk), committed on
        return."""
        self._upsert(("metainfo", metainfo), ("resume", resume))

    def _upsert(self, *tables: tuple[str, Sequence[tuple[bytes, bytes]]]) -> None:
        """For each (table, items) (a table of ``TABLES``), each (info-hash, data) of the items,
        replacing a row of the same info-hash: one transaction for all, committed on return."""
        writes = [(name, rows) for name, rows in tables if rows]
        if not writes:
            return
        with self._db.using() as db, transaction(db):
            for name, rows in writes:
                db.executemany(f"INSERT INTO {name} VALUES (?, ?) ON CONFLICT(info_hash) DO UPDATE SET "
                               "data = excluded.data", rows)

    def get(self, key: bytes) -> bytes | None:
        """The metainfo kept for ``key`` (None: none)."""
        with self._db.reading() as db:
            row = db.execute("SELECT data FROM metainfo WHERE info_hash = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def has(self, key: bytes) -> bool:
        """Whether metainfo is kept for ``key`` (its row looked up, not read)."""
        with self._db.reading() as db:
            return db.execute("SELECT 1 FROM metainfo WHERE info_hash = ?", (key,)).fetchone() is not None

    def delete(self, key: bytes) -> None:
        """Forget ``key``'s metainfo and resume row (committed on return; nothing when none is
        kept)."""
        self.delete_many([key])

    def delete_many(self, keys: Sequence[bytes]) -> None:
        """Forget the metainfo and resume row of each of ``keys``: one transaction, committed on
        return."""
        if not keys or (not self.path.exists() and not self._db.opened):
            return  # (nothing was ever kept: no database made for nothing)
        rows = [(key,) for key in keys]
        with self._db.using() as db, transaction(db):
            db.executemany("DELETE FROM metainfo WHERE info_hash = ?", rows)
            db.executemany("DELETE FROM resume WHERE info_hash = ?", rows)

    def put_resume_many(self, items: Sequence[tuple[bytes, bytes]]) -> None:
        """Keep each (info-hash, encoded resume data) as a row, replacing what was kept for it:
        one transaction, committed on return."""
        self._upsert(("resume", items))

    def get_resume(self, key: bytes) -> bytes | None:
        """The resume data kept as a row for ``key`` (None: none)."""
        if not self.path.exists() and not self._db.opened:
            return None
        with self._db.reading() as db:
            row = db.execute("SELECT data FROM resume WHERE info_hash = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def delete_resume(self, key: bytes) -> None:
        """Forget ``key``'s resume row (committed on return; nothing when none is kept)."""
        self.delete_resume_many([key])

    def delete_resume_many(self, keys: Sequence[bytes]) -> None:
        """Forget the resume row of each of ``keys``: one transaction, committed on return."""
        if not keys or (not self.path.exists() and not self._db.opened):
            return
        with self._db.using() as db, transaction(db):
            db.executemany("DELETE FROM resume WHERE info_hash = ?", [(key,) for key in keys])

    def resume_keys(self) -> set[bytes]:
        """The info-hashes whose resume data is kept as a row."""
        if not self.path.exists() and not self._db.opened:
            return set()
        with self._db.reading() as db:
            return {bytes(k) for (k,) in db.execute("SELECT info_hash FROM resume")}

    def keys(self) -> set[bytes]:
        """The info-hashes whose metainfo is kept."""
        if not self.path.exists() and not self._db.opened and not self._legacy_files():
            return set()
        with self._db.reading() as db:
            return {bytes(k) for (k,) in db.execute("SELECT info_hash FROM metainfo")}

    def _legacy_files(self) -> bool:
        if self.legacy is None:
            return False
        try:
            return any(n.endswith(LEGACY_SUFFIX) for n in os.listdir(self.legacy))
        except FileNotFoundError:
            return False
