"""The SQLite databases of a state folder (the job records, the kept metainfo): opened the one
way, every change one transaction.

WAL mode, ``synchronous=FULL``: a transaction is committed (the WAL written and fsynced) before
the call returns, so a change that was acknowledged survives a SIGKILL or a power loss. A
database holds a ``meta`` table whose ``schema`` row is the version of its tables: a database of
another version is refused, never read as this one. SQLite's errors become the store's own
``OSError`` (``database_error``), whose ``errno`` is ``ENOSPC`` when SQLite found the disk full.
"""

from __future__ import annotations

import errno
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

__all__ = ["Database", "database_error", "open_database", "transaction"]


class Database:
    """One connection to a database of the state folder (``open_database``), opened at its first
    use and then kept; used by one thread at a time (``using``). ``setup``: run on the connection
    once it is opened, before anything else uses it (a migration); ``what`` and ``error``: how its
    failures are told (``database_error``). ``reading``: a second connection, for reads alone
    (WAL: a read sees the last commit and never waits for a write under way)."""

    def __init__(self, path: Path, tables: Sequence[str], schema: int, *, what: str, error: type[OSError],
                 setup: Callable[[sqlite3.Connection], None] | None = None) -> None:
        self.path = path
        self._tables, self._schema, self._setup = tables, schema, setup
        self._what, self._error = what, error
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._reader: sqlite3.Connection | None = None
        self._read_lock = threading.Lock()

    @property
    def opened(self) -> bool:
        """Whether the connection is open (a call made it, and no ``close`` since)."""
        return self._db is not None

    @contextmanager
    def using(self) -> Iterator[sqlite3.Connection]:
        """The connection, held by this thread for the block (opened first, the first time);
        SQLite's errors as ``error``."""
        with self._lock:
            try:
                if self._db is None:
                    self._db = self._open()
                yield self._db
            except sqlite3.Error as exc:
                raise database_error(exc, self._what, self._error) from exc

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """The reads' connection, held by this thread for the block (the database opened first by
        ``using``'s, its tables made and ``setup`` run); SQLite's errors as ``error``."""
        if self._reader is None and self._db is None:
            with self.using():
                pass
        with self._read_lock:
            try:
                if self._reader is None:
                    self._reader = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                    self._reader.execute("PRAGMA busy_timeout=5000")
                yield self._reader
            except sqlite3.Error as exc:
                raise database_error(exc, self._what, self._error) from exc

    def _open(self) -> sqlite3.Connection:
        db = open_database(self.path, self._tables, self._schema)
        if self._setup is not None:
            try:
                self._setup(db)
            except BaseException:
                db.close()
                raise
        return db

    def close(self) -> None:
        """Close the connections (they open again on the next ``using`` or ``reading``)."""
        with self._lock, self._read_lock:
            for db in (self._reader, self._db):
                if db is not None:
                    db.close()
            self._db = self._reader = None


def open_database(path: Path, tables: Sequence[str], schema: int) -> sqlite3.Connection:
    """A connection to the database at ``path`` (made, with its folder, when missing), any thread
    may use (one at a time: the caller's lock): WAL, ``synchronous=FULL``, its ``tables``
    (``CREATE TABLE IF NOT EXISTS`` statements) made and its ``schema`` version checked, in one
    transaction. ``sqlite3.Error`` when it cannot be (another version's: ``DatabaseError``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA busy_timeout=5000")
        with transaction(db):
            db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            for table in tables:
                db.execute(table)
            row = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if row is None:
                db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(schema),))
            elif row[0] != str(schema):
                raise sqlite3.DatabaseError(f"{path}: unknown schema version {row[0]!r}")
    except BaseException:
        db.close()
        raise
    return db


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    """One transaction: committed when the block ends, rolled back if it raises."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def database_error(exc: sqlite3.Error, what: str, kind: type[OSError]) -> OSError:
    """``exc`` as a ``kind`` saying ``what`` failed (the store and its file) and SQLite's reason;
    its ``errno`` ``ENOSPC`` when SQLite found the disk full."""
    if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
        return kind(errno.ENOSPC, f"{what}: {exc}")
    return kind(f"{what}: {exc}")
