"""The metainfo a manager keeps between runs (``storage/kept.py``): one database, every write
committed on return, a state folder of the earlier layout taken in, failures typed."""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from torrent_engine.storage import database
from torrent_engine.storage.kept import MetainfoStore, MetainfoStoreError


def test_kept_metainfo_round_trips_is_replaced_and_forgotten_and_outlives_the_store(tmp_path: Path) -> None:
    store = MetainfoStore(tmp_path / "state" / "torrents.sqlite3")
    a, b = b"a" * 20, b"b" * 32
    assert store.get(a) is None and store.keys() == set()
    store.put_many([(a, b"one"), (b, b"two")])
    store.put_many([(a, b"one, again")])
    assert (store.get(a), store.get(b)) == (b"one, again", b"two") and store.keys() == {a, b}
    store.delete(b)
    store.delete(b"c" * 20)  # (none kept: nothing)
    store.close()
    again = MetainfoStore(tmp_path / "state" / "torrents.sqlite3")
    assert again.keys() == {a} and again.get(a) == b"one, again"
    again.close()


def test_resume_rows_round_trip_and_go_with_their_torrent(tmp_path: Path) -> None:
    path = tmp_path / "torrents.sqlite3"
    db = sqlite3.connect(path)  # (a store of before: the metainfo table alone)
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("INSERT INTO meta VALUES ('schema', '1')")
    db.execute("CREATE TABLE metainfo (info_hash BLOB PRIMARY KEY, data BLOB NOT NULL)")
    db.commit()
    db.close()
    store = MetainfoStore(path)
    a, b = b"a" * 20, b"b" * 20
    assert store.get_resume(a) is None and store.resume_keys() == set()
    store.put_many([(a, b"metainfo a")])
    store.put_resume_many([(a, b"resume a"), (b, b"resume b")])
    store.put_resume_many([(b, b"resume b, again")])
    assert (store.get_resume(a), store.get_resume(b)) == (b"resume a", b"resume b, again")
    store.delete_resume(b)
    assert store.resume_keys() == {a} and store.get_resume(b) is None
    store.delete(a)  # (the torrent forgotten: its metainfo and its resume row)
    assert store.keys() == set() and store.resume_keys() == set()
    store.close()


def test_a_store_never_written_makes_no_database(tmp_path: Path) -> None:
    store = MetainfoStore(tmp_path / "torrents.sqlite3", tmp_path / "torrents")
    store.delete(b"a" * 20)
    store.delete_resume(b"a" * 20)
    assert store.get_resume(b"a" * 20) is None and store.resume_keys() == set()
    assert store.keys() == set() and not (tmp_path / "torrents.sqlite3").exists()


def test_what_a_write_returned_from_is_there_after_the_process_is_killed(tmp_path: Path) -> None:
    db = tmp_path / "torrents.sqlite3"
    child = ("import os, sys\n"
             "from pathlib import Path\n"
             "from torrent_engine.storage.kept import MetainfoStore\n"
             "s = MetainfoStore(Path(sys.argv[1]))\n"
             "s.put_many([(bytes([i]) * 20, b'x' * 700) for i in range(25)])\n"
             "os._exit(0)  # (no close, no checkpoint: as a SIGKILL after the add's answer)\n")
    subprocess.run([sys.executable, "-c", child, str(db)], check=True, timeout=60,
                   env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    store = MetainfoStore(db)
    assert store.keys() == {bytes([i]) * 20 for i in range(25)} and store.get(b"\x07" * 20) == b"x" * 700
    store.close()


def test_the_earlier_layouts_files_are_taken_in_once_and_a_kept_row_wins(tmp_path: Path) -> None:
    legacy = tmp_path / "torrents"
    legacy.mkdir()
    old, both = b"\x01" * 20, b"\x02" * 32
    (legacy / f"{old.hex()}.torrent").write_bytes(b"old metainfo")
    (legacy / f"{old.hex()}.resume").write_bytes(b"its resume data")  # (resume data stays a file)
    (legacy / "notes.torrent").write_bytes(b"not the manager's")  # (no info-hash: left alone)
    first = MetainfoStore(tmp_path / "torrents.sqlite3")
    first.put_many([(both, b"kept")])
    first.close()
    (legacy / f"{both.hex()}.torrent").write_bytes(b"a stale file")
    store = MetainfoStore(tmp_path / "torrents.sqlite3", legacy)
    assert store.keys() == {old, both} and store.taken_in == 2
    assert (store.get(old), store.get(both)) == (b"old metainfo", b"kept")
    assert sorted(p.name for p in legacy.iterdir()) == [f"{old.hex()}.resume", "notes.torrent"]
    store.close()
    again = MetainfoStore(tmp_path / "torrents.sqlite3", legacy)
    assert again.keys() == {old, both} and again.taken_in == 0
    again.close()


def test_a_damaged_database_is_an_os_error_naming_it(tmp_path: Path) -> None:
    db = tmp_path / "torrents.sqlite3"
    db.write_bytes(b"this is no database" * 100)
    store = MetainfoStore(db)
    with pytest.raises(MetainfoStoreError, match=f"metainfo store {db}") as raised:
        store.put_many([(b"a" * 20, b"x")])
    assert isinstance(raised.value, OSError) and raised.value.errno is None
    assert isinstance(raised.value.__cause__, sqlite3.DatabaseError)


def test_a_full_disk_is_enospc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Full:
        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def execute(self, sql: str, *args: object) -> object:
            return self.db.execute(sql, *args)

        def executemany(self, sql: str, *args: object) -> object:
            exc = sqlite3.OperationalError("database or disk is full")  # (a write: no room)
            exc.sqlite_errorcode = sqlite3.SQLITE_FULL  # type: ignore[attr-defined]
            raise exc

        def close(self) -> None:
            self.db.close()

    real = database.open_database
    monkeypatch.setattr(database, "open_database", lambda *args: Full(real(*args)))
    store = MetainfoStore(tmp_path / "torrents.sqlite3")
    with pytest.raises(MetainfoStoreError, match="disk is full") as raised:
        store.put_many([(b"b" * 20, b"y")])
    assert raised.value.errno == errno.ENOSPC


def test_a_read_does_not_wait_for_a_write_under_way(tmp_path: Path) -> None:
    """(A dormant seed's metainfo read on the event loop's thread is not held behind a batch's
    fsync.) A write holds the writes' connection for its transaction; a read meanwhile answers
    from the last commit."""
    store = MetainfoStore(tmp_path / "torrents.sqlite3")
    store.put_many([(b"a" * 20, b"kept")])
    got: list[bytes | None] = []
    with store._db._lock:  # (a write under way, its commit waiting on the disk)
        reader = threading.Thread(target=lambda: got.append(store.get(b"a" * 20)))
        reader.start()
        reader.join(5)
        assert got == [b"kept"]
    store.close()
