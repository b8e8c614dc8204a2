"""The job records (active jobs and history) and the open leases, in one SQLite database,
``state_dir/jobs.sqlite3`` (see ``JobStore``).

Each record is its JSON (``JobRecord.to_json``) in one row; every change is one transaction.
Loading tolerates damage: a record that cannot be read is reported in ``lost`` with its reason
and skipped; the others load. A state folder of the earlier format (one JSON file per job) is
migrated on first open.
"""

from __future__ import annotations

import gc
import json
import logging
import re
import sqlite3
from collections.abc import Callable, Container, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import anyio

from ..engine.turns import Turns
from ..errors import NO_ROOM
from ..formats.metainfo import Torrent
from ..jsonvalue import JSON, JSONValue
from ..storage.database import Database, transaction
from .model import (
    ANNOUNCING_STATES,
    STOP_CONDITIONS,
    JobFeatures,
    JobOptions,
    JobResult,
    JobStall,
    JobState,
    StateNotSaved,
)

log = logging.getLogger(__name__)

RECORD_VERSION = 1
DB_FILE = "jobs.sqlite3"
SCHEMA_VERSION = 1
TABLES = ("CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, record TEXT NOT NULL)",
          "CREATE TABLE IF NOT EXISTS leases "
          "(id TEXT PRIMARY KEY, ttl REAL NOT NULL, expires_at REAL NOT NULL)")
LEGACY_FOLDER = "jobs"  # one JSON file per job (before the database)
LEGACY_LEASES = "leases.json"
# what the migrated JSON folder and lease file are renamed to
MIGRATED = {LEGACY_FOLDER: "jobs.json-migrated", LEGACY_LEASES: "leases.json-migrated"}


class JobStoreError(OSError):
    """The job database could not be read or written (what SQLite said, and the file); its
    ``errno`` is ``ENOSPC`` when SQLite found the disk full."""


def not_saved(exc: OSError, folder: Path | None) -> StateNotSaved:
    """The refusal of a change that could not be saved in the state folder ``folder``."""
    full = exc.errno in NO_ROOM
    reason = "its file system is full" if full else (exc.strerror or str(exc))
    where = str(folder) if folder is not None else "(none)"
    return StateNotSaved(f"cannot save the change in the state folder {where}: {reason}; it was "
                         "not made (reads are still served)", where, full=full)
_ID = re.compile(r"^[0-9a-f]{16}$")


@dataclass(frozen=True, slots=True)
class PendingMove:
    """A move under way, as the job's record keeps it: from ``old`` to ``new``, the files
    (relative, "/"-joined) being moved, the folders the move created (outermost first), and the
    job's files at ``old`` whose same bytes it takes at ``new`` (removed once it commits)."""

    old: str
    new: str
    files: tuple[str, ...]
    created: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()

    def to_json(self) -> dict[str, JSON]:
        """The move as JSON."""
        out: dict[str, JSON] = {"old": self.old, "new": self.new, "files": list(self.files),
                                "created": list(self.created)}
        if self.dropped:
            out["dropped"] = list(self.dropped)
        return out

    @classmethod
    def from_json(cls, d: JSONValue) -> PendingMove:
        """Raises ``ValueError`` on anything else."""
        if not isinstance(d, dict):
            raise ValueError("a pending move is not a JSON object")
        old, new, files = d.get("old"), d.get("new"), d.get("files")
        created, dropped = d.get("created") or [], d.get("dropped") or []
        if not isinstance(old, str) or not isinstance(new, str) or not isinstance(files, list) \
                or not isinstance(created, list) or not isinstance(dropped, list):
            raise ValueError("a pending move lacks old, new or files")
        paths = tuple(f for f in files if isinstance(f, str))
        made = tuple(c for c in created if isinstance(c, str))
        drop = tuple(f for f in dropped if isinstance(f, str))
        if len(paths) != len(files) or len(made) != len(created) or len(drop) != len(dropped):
            raise ValueError("a pending move's files and folders are not all strings")
        return cls(old, new, paths, made, drop)


@dataclass(slots=True)
class JobRecord:
    """The persistent (and mutable) part of a job; the service owns it, snapshots copy from it."""

    id: str
    info_hash: str
    name: str
    source: str  # magnet URI, or "torrent"
    options: JobOptions
    state: JobState
    created_at: float
    updated_at: float
    completed_at: float | None = None
    error: str | None = None
    result: JobResult | None = None
    total_size: int = 0
    done_size: int = 0
    downloaded: int = 0
    uploaded: int = 0
    wasted: int = 0  # bytes received not needed (``Session.wasted``)
    corrupt: int = 0  # bytes received in pieces that failed their hash check (``Session.corrupt``)
    # (downloaded, uploaded) when this run of the service began (not written, nor compared: the
    # file's counts as read; 0 for a job added in this run): what moved this run is the difference
    before_run: tuple[int, int] = field(default=(0, 0), compare=False)
    # when it last began to run in this run of the service (``Job.started_at``; not written)
    started_at: float = field(default=0.0, compare=False)
    file_priorities: tuple[int, ...] | None = None  # None until the metainfo is known
    created_dirs: tuple[str, ...] = ()  # folders the job made (outermost first)
    preexisting: tuple[str, ...] | None = None  # the torrent's files that were on disk before the job
    file_paths: tuple[tuple[str, ...], ...] | None = None  # every file's relative path (for the clean-up)
    file_sizes: tuple[int, ...] | None = None
    pad_files: tuple[int, ...] = ()  # indices of BEP 47 pad files (never shown)
    delete_pending: bool = False  # cancelled with delete_files, the clean-up not yet done
    features: JobFeatures = field(default_factory=JobFeatures)
    queue_position: int = 0  # order in the queue (smaller first); unique among the records
    seeding_time: float = 0.0  # seconds spent seeding, all sessions together
    idle_seeding_time: float = 0.0  # seconds of it since the job last sent or received a byte
    active_at: float | None = None  # when the job last sent or received a byte (None: never yet)
    # when its swarm last showed a whole copy: a connected peer with every piece (None: never)
    seen_complete_at: float | None = None
    downloading_time: float = 0.0  # seconds spent downloading (its metadata too), all sessions together
    number: int = 0  # a small whole number naming the job for good (Transmission's torrent id)
    # each file's verified bytes when last saved with ``keeps_file_done`` (shown without a session)
    file_done: tuple[int, ...] | None = None
    trackers: tuple[str, ...] | None = None  # the metainfo's tracker URLs (shown while it has no session)
    moving: PendingMove | None = None  # a move of its files under way (finished or undone at a start)
    missing_files: tuple[str, ...] = ()  # (state error) files found gone or shorter
    # (state error) stopped for room: its disk was full, or below the reserve (disk/space.py
    # resumes it once there is room again)
    waits_for_space: bool = False
    # files kept under another path than the torrent's (index -> path components below the save
    # path): the owner of that fact; ``file_paths`` shows it applied
    renamed: dict[int, tuple[str, ...]] = field(default_factory=dict)
    # the files kept on disk under ``partial_suffix`` until complete (disk/partial.py: the owner of
    # that fact; ``file_paths`` shows it applied)
    partial: tuple[int, ...] = ()
    partial_suffix: str = ""
    # the trackers as edited (None: the torrent's own)
    tracker_tiers: tuple[tuple[str, ...], ...] | None = None
    web_seeds: tuple[str, ...] | None = None  # the BEP 19 web seeds as edited (None: the torrent's url-list)
    # what lists show of its torrent (``TorrentFacts``), learnt with its files (None: not yet, or a
    # record written before they were kept)
    torrent_length: int | None = None
    private: bool | None = None
    piece_length: int | None = None  # (and the three below: learnt with it; None: not yet)
    created_by: str | None = None  # ("" none)
    creation_date: int | None = None  # (-1 none)
    torrent_comment: str | None = None  # the metainfo's ("" none; the job's own is a feature)
    # the whole BEP 52 info-hash, hex ("" for a v1 torrent; None: a record written before it was kept)
    info_hash_v2: str | None = None
    dedup_bytes: int = 0  # bytes of its files placed at the add from files held whole (disk/dedup.py)
    # the bandwidth group it is in now (tuning/groups.py places it; not written: its own group is
    # ``options.group``, the rest follows from the groups' rules)
    bandwidth_group: str = ""
    # BEP 46: the ``seq`` of the version its btpk link (``source``) named when it was added
    # (None: not a mutable torrent); a newer one replaces the job (jobs/intake/mutable.py)
    mutable_seq: int | None = None
    # its completion's program waits for its data's move out of its incomplete folder (written
    # with the completion: stopped or killed before the program ran, it runs at the next start
    # once the data is at its save path; disk/relocate.py)
    program_due: bool = False
    # when it stops by itself (``model.STOP_CONDITIONS``), until it has: "" none (met, or never)
    stop_condition: str = ""
    # why its data stays in its incomplete folder, complete (disk/relocate.py sets it when the
    # move to its save path fails; not written: the move is tried again at the next start)
    unmoved: JobStall | None = None

    @property
    def skips_files(self) -> bool:
        """Whether the job leaves a file of its torrent undownloaded (priority 0), its pad files
        aside (they are never downloaded: their priority is 0 whatever the selection)."""
        pads = self.pad_files
        return any(p <= 0 for i, p in enumerate(self.file_priorities or ()) if i not in pads)

    @property
    def keeps_file_done(self) -> bool:
        """Whether each file's verified bytes are noted (``file_done``) as the record is written:
        a paused job's (its views without a session), and a complete one's with unwanted files
        (one not complete among them shown so, and named under the suffix, without a session)."""
        return self.options.paused or (self.done_size >= self.total_size and self.skips_files)

    def enter(self, state: JobState, now: float) -> None:
        """The job is in ``state`` from ``now`` on (``JobLifecycle.set_state`` decides it): it
        began to run then if it announces now and did not before."""
        if state in ANNOUNCING_STATES and self.state not in ANNOUNCING_STATES:
            self.started_at = now
        self.state, self.updated_at = state, now

    def seeded(self, seconds: float) -> None:
        """``seconds`` more of seeding, none of them spent sending or receiving as far as is
        known (a byte that moved meanwhile starts the idle time again: ``count``)."""
        self.seeding_time += seconds
        self.idle_seeding_time += seconds

    def count(self, downloaded: int, uploaded: int, now: float, wasted: int = 0, corrupt: int = 0,
              seen_complete: float = 0.0) -> None:
        """The job's totals as its session counts them at ``now``: a byte sent or received since
        they were last counted ends its idle time, and makes ``now`` its last activity. (``wasted``
        and ``corrupt`` are bytes among those received: they move with ``downloaded``;
        ``seen_complete``: when its swarm last showed a whole copy, 0.0 for not in this run.)"""
        self.wasted, self.corrupt = max(self.wasted, wasted), max(self.corrupt, corrupt)
        self.seen_complete_at = later(self.seen_complete_at, seen_complete)
        if downloaded != self.downloaded or uploaded != self.uploaded:
            self.downloaded, self.uploaded, self.idle_seeding_time = downloaded, uploaded, 0.0
            self.active_at = now

    def to_json(self) -> dict[str, JSON]:
        """The record as the JSON written to disk."""
        o = self.options
        return {
            "version": RECORD_VERSION, "id": self.id, "info_hash": self.info_hash, "name": self.name,
            "source": self.source,
            "options": {"save_path": o.save_path, "files": list(o.files) if o.files is not None else None,
                        "sequential": o.sequential, "paused": o.paused, "peers": [list(p) for p in o.peers],
                        "client": o.client, "download_limit": o.download_limit,
                        "upload_limit": o.upload_limit, "seed_mode": o.seed_mode,
                        "download_path": o.download_path, "max_peers": o.max_peers,
                        "super_seeding": o.super_seeding, "group": o.group, "owner": o.owner,
                        "kept_download_limit": o.kept_download_limit,
                        "kept_upload_limit": o.kept_upload_limit},
            "state": self.state.value, "created_at": self.created_at, "updated_at": self.updated_at,
            "completed_at": self.completed_at, "error": self.error,
            "result": self.result.to_json() if self.result is not None else None,
            "total_size": self.total_size, "done_size": self.done_size, "downloaded": self.downloaded,
            "uploaded": self.uploaded, "wasted": self.wasted, "corrupt": self.corrupt,
            "file_priorities": self.file_priorities,
            "created_dirs": self.created_dirs, "preexisting": self.preexisting,
            "file_paths": self.file_paths, "file_sizes": self.file_sizes, "pad_files": self.pad_files,
            "delete_pending": self.delete_pending,
            "features": self.features.to_json(), "queue_position": self.queue_position,
            "seeding_time": self.seeding_time, "idle_seeding_time": self.idle_seeding_time,
            "active_at": self.active_at, "seen_complete_at": self.seen_complete_at,
            "downloading_time": self.downloading_time, "number": self.number,
            "file_done": self.file_done, "trackers": self.trackers, "missing_files": self.missing_files,
            "waits_for_space": self.waits_for_space,
            "moving": self.moving.to_json() if self.moving is not None else None,
            "renamed": {str(i): p for i, p in self.renamed.items()}, "tracker_tiers": self.tracker_tiers,
            "partial": self.partial, "partial_suffix": self.partial_suffix,
            "web_seeds": self.web_seeds,
            "torrent_length": self.torrent_length, "private": self.private,
            "piece_length": self.piece_length, "created_by": self.created_by,
            "creation_date": self.creation_date, "torrent_comment": self.torrent_comment,
            "info_hash_v2": self.info_hash_v2,
            "dedup_bytes": self.dedup_bytes, "mutable_seq": self.mutable_seq,
            "program_due": self.program_due, "stop_condition": self.stop_condition,
        }

    @classmethod
    def from_json(cls, d: object) -> JobRecord:
        """Raises ``ValueError`` (with what was wrong) on a record that is not one of ours. Each
        field is converted by ``int``, ``float`` or ``_str`` as it is read (a wrong type is a
        ``TypeError`` or ``ValueError``, said as a ``ValueError``): builtins, as a start reads
        every record."""
        if not isinstance(d, dict):
            raise ValueError("not a JSON object")
        if d.get("version") != RECORD_VERSION:
            raise ValueError(f"unknown record version {d.get('version')!r}")
        try:
            o = d["options"]
            files = o["files"]
            options = JobOptions(
                save_path=_str(o["save_path"]),
                files=tuple(int(i) for i in files) if files is not None else None,
                sequential=bool(o["sequential"]), paused=bool(o["paused"]),
                peers=tuple((str(h), int(p)) for h, p in o["peers"]),
                client=None if o["client"] is None else _str(o["client"]),
                download_limit=int(o["download_limit"]), upload_limit=int(o["upload_limit"]),
                seed_mode=bool(o.get("seed_mode", False)),
                super_seeding=bool(o.get("super_seeding", False)), group=_str(o.get("group", "")),
                download_path=None if o.get("download_path") is None else _str(o["download_path"]),
                max_peers=int(o.get("max_peers", 0)), owner=_str(o.get("owner", "")),
                kept_download_limit=int(o.get("kept_download_limit", 0)),
                kept_upload_limit=int(o.get("kept_upload_limit", 0)))
            r = d["result"]
            result = None if r is None else JobResult(
                downloaded=int(r["downloaded"]), uploaded=int(r["uploaded"]), duration=float(r["duration"]),
                average_rate=float(r["average_rate"]), error=None if r["error"] is None else str(r["error"]))
            job_id = _str(d["id"])
            if not _ID.match(job_id):
                raise ValueError(f"bad id {job_id!r}")
            info_hash = _str(d["info_hash"])
            bytes.fromhex(info_hash)
            fp = d.get("file_priorities")
            paths = d.get("file_paths")
            sizes = d.get("file_sizes")
            pre = d.get("preexisting")
            file_done = d.get("file_done")
            trackers = d.get("trackers")
            tiers = d.get("tracker_tiers")
            web_seeds = d.get("web_seeds")
            length, private = d.get("torrent_length"), d.get("private")
            piece_length, creation_date = d.get("piece_length"), d.get("creation_date")
            created_by, comment = d.get("created_by"), d.get("torrent_comment")
            return cls(
                id=job_id, info_hash=info_hash, name=_str(d["name"]), source=_str(d["source"]),
                options=options, state=JobState(d["state"]), created_at=float(d["created_at"]),
                updated_at=float(d["updated_at"]),
                completed_at=None if d["completed_at"] is None else float(d["completed_at"]),
                error=None if d["error"] is None else str(d["error"]), result=result,
                total_size=int(d["total_size"]), done_size=int(d["done_size"]),
                downloaded=int(d["downloaded"]), uploaded=int(d["uploaded"]),
                wasted=int(d.get("wasted", 0)), corrupt=int(d.get("corrupt", 0)),
                before_run=(int(d["downloaded"]), int(d["uploaded"])),
                file_priorities=None if fp is None else tuple(int(p) for p in fp),
                created_dirs=tuple(_str(x) for x in d.get("created_dirs") or ()),
                preexisting=None if pre is None else tuple(_str(x) for x in pre),
                file_paths=None if paths is None else tuple(tuple(_str(c) for c in p) for p in paths),
                file_sizes=None if sizes is None else tuple(int(s) for s in sizes),
                pad_files=tuple(int(i) for i in d.get("pad_files") or ()),
                delete_pending=bool(d.get("delete_pending", False)),
                features=JobFeatures.from_json(d.get("features")),
                queue_position=int(d.get("queue_position", 0)),
                seeding_time=float(d.get("seeding_time", 0.0)),
                idle_seeding_time=float(d.get("idle_seeding_time", 0.0)),
                active_at=None if d.get("active_at") is None else float(d["active_at"]),
                seen_complete_at=None if d.get("seen_complete_at") is None else float(d["seen_complete_at"]),
                downloading_time=float(d.get("downloading_time", 0.0)),
                number=int(d.get("number", 0)),
                file_done=None if file_done is None else tuple(int(b) for b in file_done),
                missing_files=tuple(_str(p) for p in d.get("missing_files") or ()),
                waits_for_space=bool(d.get("waits_for_space", False)),
                trackers=None if trackers is None else tuple(_str(u) for u in trackers),
                moving=None if d.get("moving") is None else PendingMove.from_json(d["moving"]),
                renamed={int(i): tuple(_str(c) for c in p) for i, p in (d.get("renamed") or {}).items()},
                partial=tuple(int(i) for i in d.get("partial") or ()),
                partial_suffix=_str(d.get("partial_suffix") or ""),
                tracker_tiers=None if tiers is None else tuple(tuple(_str(u) for u in t) for t in tiers),
                web_seeds=None if web_seeds is None else tuple(_str(u) for u in web_seeds),
                torrent_length=None if length is None else int(length),
                private=None if private is None else bool(private),
                piece_length=None if piece_length is None else int(piece_length),
                created_by=None if created_by is None else _str(created_by),
                creation_date=None if creation_date is None else int(creation_date),
                torrent_comment=None if comment is None else _str(comment),
                info_hash_v2=None if d.get("info_hash_v2") is None else _str(d["info_hash_v2"]),
                dedup_bytes=int(d.get("dedup_bytes", 0)),
                mutable_seq=None if d.get("mutable_seq") is None else int(d["mutable_seq"]),
                program_due=bool(d.get("program_due", False)),
                stop_condition=_stop_condition(d.get("stop_condition", "")))
        except (KeyError, TypeError, OverflowError, AttributeError) as exc:
            raise ValueError(f"missing or malformed field: {exc}") from exc


def _stop_condition(value: object) -> str:
    if value != "" and value not in STOP_CONDITIONS[1:]:  # ("none" is written "")
        raise ValueError(f"unknown stop condition {value!r}")
    return str(value)


def later(at: float | None, seen: float) -> float | None:
    """The later of a time kept (None: none) and one seen now (0.0: none)."""
    return at if not seen or at is not None and at >= seen else seen


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return value


class JobStore:
    """The job records and the open leases in ``state_dir/jobs.sqlite3`` (``None`` folder:
    nothing is persisted).

    SQLite in WAL mode, ``synchronous=FULL``: every change is one transaction, committed (the WAL
    written and fsynced) before the call returns, so a change that was acknowledged survives a
    SIGKILL or a power loss. The calls block (an fsync: ~1-10 ms) and are made on worker threads;
    one connection, used by one thread at a time (``_lock``). A state folder from the JSON format
    (``jobs/<id>.json``, ``leases.json``) is migrated once, when the store is first opened:
    everything is inserted in one transaction, and only once it is committed are the old files
    renamed (``jobs.json-migrated/``, ``leases.json-migrated``); the database then says it was
    migrated, so a crash between the two steps only renames at the next start.
    """

    def __init__(self, state_dir: Path | None) -> None:
        self.state_dir = state_dir
        self.path = state_dir / DB_FILE if state_dir is not None else None
        self.migrated: int | None = None  # records taken from the JSON files at this open, if any
        self._lost: list[tuple[str, str]] = []  # JSON records that could not be migrated
        self._db = (Database(self.path, TABLES, SCHEMA_VERSION, what=f"job store {self.path}",
                             error=JobStoreError, setup=self._migrate) if self.path is not None else None)
        self.loaded: dict[str, int] = {}  # job id -> a hash of its record as ``load_all`` read it

    # -- the connection --------------------------------------------------------------------
    def _using(self) -> AbstractContextManager[sqlite3.Connection]:
        """The connection, held by this thread for the block (opened, and a JSON state folder
        migrated, the first time); SQLite's errors as ``JobStoreError``."""
        assert self._db is not None
        return self._db.using()

    def close(self) -> None:
        """Close the database (it opens again on the next call)."""
        if self._db is not None:
            self._db.close()

    # -- the one-way migration from one JSON file per job ----------------------------------
    def _migrate(self, db: sqlite3.Connection) -> None:
        assert self.state_dir is not None
        folder = self.state_dir / LEGACY_FOLDER
        leases = self.state_dir / LEGACY_LEASES
        if not folder.is_dir() and not leases.is_file():
            return
        done = db.execute("SELECT value FROM meta WHERE key = 'migrated_from_json'").fetchone()
        if done is None:
            records, self._lost = _read_json_records(folder)
            old_leases = _read_json_leases(leases)
            with transaction(db):
                db.executemany("INSERT OR REPLACE INTO jobs VALUES (?, ?)",
                               [(r.id, self.encode(r).decode()) for r in records])
                db.executemany("INSERT OR REPLACE INTO leases VALUES (?, ?, ?)",
                               [(k, ttl, exp) for k, (ttl, exp) in old_leases.items()])
                db.execute("INSERT INTO meta VALUES ('migrated_from_json', ?)", (str(len(records)),))
            self.migrated = len(records)
            log.info("job store: %d job records and %d leases migrated from %s to %s", len(records),
                     len(old_leases), folder, self.path)
        # (committed: the JSON files can go; after a crash before this, the next start renames only)
        for old in (folder, leases):
            if old.exists():
                old.rename(_free_name(old.with_name(MIGRATED[old.name])))

    # -- records ---------------------------------------------------------------------------
    def save(self, record: JobRecord) -> None:
        """Write ``record`` (one transaction)."""
        self.write(record.id, self.encode(record))

    @staticmethod
    def encode(record: JobRecord) -> bytes:
        """``record`` as the JSON bytes stored."""
        return json.dumps(record.to_json(), separators=(",", ":")).encode()

    def write(self, job_id: str, data: bytes) -> None:
        """Store a job's record (one transaction, committed on return; nothing without a folder)."""
        if self.path is None:
            return
        with self._using() as db:
            db.execute("INSERT INTO jobs VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET "
                       "record = excluded.record", (job_id, data.decode()))

    def write_many(self, rows: list[tuple[str, bytes]]) -> None:
        """Store many jobs' records, (id, encoded record) each, in one transaction."""
        if self.path is None or not rows:
            return
        with self._using() as db, transaction(db):
            db.executemany("INSERT INTO jobs VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET "
                           "record = excluded.record", [(job_id, data.decode()) for job_id, data in rows])

    def save_many(self, records: list[JobRecord]) -> None:
        """Write many records in one transaction (a bulk import)."""
        self.write_many([(r.id, self.encode(r)) for r in records])

    def read(self, job_id: str) -> bytes | None:
        """A job's stored record as it is (None if there is none)."""
        if self.path is None:
            return None
        with self._using() as db:
            row = db.execute("SELECT record FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else str(row[0]).encode()

    def delete(self, job_id: str) -> None:
        """Remove a job's record."""
        self.delete_many([job_id])

    def delete_many(self, job_ids: list[str]) -> None:
        """Remove the records of ``job_ids`` (one transaction)."""
        if self.path is None or not job_ids:
            return
        with self._using() as db, transaction(db):
            db.executemany("DELETE FROM jobs WHERE id = ?", [(i,) for i in job_ids])

    def load_all(self) -> tuple[list[JobRecord], list[tuple[str, str]]]:
        """Every readable record, and (where, reason) for each one that was not (a damaged row, or
        a JSON file that could not be migrated)."""
        if self.path is None:
            return [], []
        with self._using() as db:
            rows = db.execute("SELECT id, record FROM jobs").fetchall()
            lost = list(self._lost)
        records: list[JobRecord] = []
        loads, from_json = json.loads, JobRecord.from_json
        # records with the same options share one object: one for the collector's sweeps to
        # walk, not one a record (10 000 seeds added alike: 10 000 objects)
        shared: dict[JobOptions, JobOptions] = {}
        self.loaded = {}
        with _gc_paused():
            for job_id, text in rows:
                try:
                    record = from_json(loads(text))
                    if record.id != job_id:
                        raise ValueError(f"record id {record.id!r} does not match its key")
                except (ValueError, TypeError, RecursionError) as exc:
                    reason = str(exc) or type(exc).__name__
                    log.warning("job record %s in %s is unreadable and is skipped (job lost): %s",
                                job_id, self.path, reason)
                    lost.append((f"{self.path}:{job_id}", reason))
                    continue
                record.options = shared.setdefault(record.options, record.options)
                records.append(record)
                self.loaded[job_id] = hash(text.encode())
        return records, lost

    # -- leases ----------------------------------------------------------------------------
    def save_leases(self, leases: dict[str, tuple[float, float]]) -> None:
        """Replace the open leases (id: ttl, expiry) in one transaction."""
        if self.path is None:
            return
        with self._using() as db, transaction(db):
            db.execute("DELETE FROM leases")
            db.executemany("INSERT INTO leases VALUES (?, ?, ?)",
                           [(k, ttl, exp) for k, (ttl, exp) in leases.items()])

    def load_leases(self) -> dict[str, tuple[float, float]]:
        """The saved leases (id: ttl, expiry); empty when none were saved."""
        if self.path is None:
            return {}
        with self._using() as db:
            rows = db.execute("SELECT id, ttl, expires_at FROM leases").fetchall()
        return {str(k): (float(ttl), float(exp)) for k, ttl, exp in rows}


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection for the block. Parsing 100 000 records makes millions of
    objects and no cycles: each collection the allocations set off walks all of them, which
    took 2/3 of the time (3.8 s against 1.2 s without). Only at start-up, before anything runs."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _free_name(path: Path) -> Path:
    """``path``, or ``path.N`` for the first N that does not exist."""
    n = 1
    candidate = path
    while candidate.exists():
        candidate = path.with_name(f"{path.name}.{n}")
        n += 1
    return candidate


def _read_json_records(folder: Path) -> tuple[list[JobRecord], list[tuple[str, str]]]:
    """The records of a JSON state folder (one file per job), and (file, reason) of each one that
    could not be read."""
    if not folder.is_dir():
        return [], []
    for tmp in folder.glob("*.tmp"):  # an interrupted write_atomic
        tmp.unlink(missing_ok=True)
    records: list[JobRecord] = []
    lost: list[tuple[str, str]] = []
    for path in sorted(folder.glob("*.json")):
        try:
            record = JobRecord.from_json(json.loads(path.read_bytes()))
            if record.id != path.stem:
                raise ValueError(f"record id {record.id!r} does not match its file name")
        except (OSError, ValueError, RecursionError) as exc:  # (UnicodeDecodeError is a ValueError)
            reason = str(exc) or type(exc).__name__
            log.warning("job record %s is unreadable and is not migrated (job lost): %s", path, reason)
            lost.append((str(path), reason))
            continue
        records.append(record)
    return records, lost


def _read_json_leases(path: Path) -> dict[str, tuple[float, float]]:
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_bytes())
        return {str(k): (float(v["ttl"]), float(v["expires_at"])) for k, v in raw.items()}
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        log.warning("lease file %s is unreadable; leases dropped: %s", path, exc)
        return {}


def counters(rec: JobRecord) -> tuple[object, ...]:
    """What a periodic save of an active job would change on disk (strings and numbers: a
    tuple the collector does not walk, kept for each job)."""
    return (rec.state.value, rec.downloaded, rec.uploaded, rec.done_size, rec.total_size, rec.name,
            int(rec.seeding_time // 60), int(rec.downloading_time // 60))


class _Batch:
    """Records waiting to be written together: the saves asked while the last write ran."""

    __slots__ = ("records", "metainfo", "done", "error", "unkept")

    def __init__(self) -> None:
        self.records: dict[str, tuple[JobRecord, JobRecord | None]] = {}  # id -> (record, content)
        self.metainfo: dict[str, Torrent] = {}  # id -> the torrent kept before its record is written
        self.done = anyio.Event()
        self.error: OSError | None = None  # (the records could not be written)
        self.unkept: OSError | None = None  # (the torrents could not be kept: their records not written)


class JobWriter:
    """Writes job records through a ``JobStore`` on worker threads, and knows what each stored
    record says. Saves are committed in groups: the saves asked while a write runs wait for it
    and are then one transaction (one worker-thread hop, one sync of the disk), each record taken
    as it is when its group is written, so the store always ends with the newest state. A batch
    of adds is so one transaction, not one per job and state change."""

    def __init__(self, store: JobStore, clock: Callable[[], float], known: Callable[[str], bool],
                 keep: Callable[[list[Torrent]], None] | None = None) -> None:
        self._store = store
        self._keep = keep  # (blocking) torrents' metainfo kept (``TorrentManager.save_torrents``)
        self._clock = clock
        self._known = known  # whether a job still exists (a forgotten job is not written again)
        self._lock = anyio.Lock()  # one write at a time
        self._open: _Batch | None = None  # the group the next save joins (not begun)
        self._last_saved: dict[str, float] = {}
        self._saved: dict[str, tuple[object, ...]] = {}  # the counters of the record on disk
        # a hash of the record as last written, or as read at the start (save_all skips it)
        self._written: dict[str, int] = {}

    async def save(self, rec: JobRecord, content: JobRecord | None = None, *, strict: bool = False,
                   metainfo: Torrent | None = None) -> None:
        """Write the record (or ``content`` in its place) as it is when its group is written; a
        failed write is logged (the next save tries again), or with ``strict`` (a change a
        caller is about to hear is made) raised as ``StateNotSaved``. ``metainfo``: its torrent,
        kept first in the same worker-thread hop (a new seed's: one hop an add, not two); the
        record is not written when it cannot be."""
        batch = self._open
        lead = batch is None
        if batch is None:
            batch = self._open = _Batch()
        batch.records[rec.id] = (rec, content)
        if metainfo is not None:
            batch.metainfo[rec.id] = metainfo
        with anyio.CancelScope(shield=True):
            if lead:
                await self._write(batch)
            else:
                await batch.done.wait()
        error = batch.error or (batch.unkept if rec.id in batch.metainfo else None)
        if error is not None and strict:
            raise not_saved(error, self._store.state_dir) from error

    async def _write(self, batch: _Batch) -> None:
        try:
            async with self._lock:  # (meanwhile the group takes the saves asked)
                if self._open is batch:
                    self._open = None  # begun: a change from now on is the next group's
                now = self._clock()
                rows: list[tuple[str, bytes]] = []
                for rec, content in batch.records.values():
                    if self._known(rec.id):
                        self._last_saved[rec.id] = now
                        self._saved[rec.id] = counters(content or rec)
                        self._written.pop(rec.id, None)
                        # on the loop: the record does not change under it
                        rows.append((rec.id, self._store.encode(content or rec)))
                torrents = [t for job_id, t in batch.metainfo.items() if self._known(job_id)]
                try:
                    batch.unkept, rows = await anyio.to_thread.run_sync(self._commit, torrents, rows,
                                                                         batch.metainfo)
                except OSError as exc:
                    batch.error = exc
                    for job_id, _ in rows:
                        self._saved.pop(job_id, None)  # (what is on disk is not known: saved again)
                    log.warning("cannot save %s: %s", f"job {rows[0][0]}" if len(rows) == 1
                                else f"{len(rows)} jobs", exc)
                else:
                    for job_id, data in rows:
                        self._written[job_id] = hash(data)
                    if batch.unkept is not None:
                        for job_id in batch.metainfo:
                            self._saved.pop(job_id, None)
                        log.warning("cannot keep the torrents of %d jobs: %s", len(torrents), batch.unkept)
        finally:
            batch.done.set()

    def _commit(self, torrents: list[Torrent], rows: list[tuple[str, bytes]], needing: Container[str]
                ) -> tuple[OSError | None, list[tuple[str, bytes]]]:
        """(A worker thread.) ``torrents`` kept, then ``rows`` written: the error that kept the
        torrents from being kept, if any (then the rows of ``needing`` are not written), and the
        rows written. ``OSError`` when the rows cannot be written."""
        unkept: OSError | None = None
        if torrents and self._keep is not None:
            try:
                self._keep(torrents)
            except OSError as exc:
                unkept = exc
                rows = [row for row in rows if row[0] not in needing]
        self._store.write_many(rows)
        return unkept, rows

    async def save_all(self, recs: list[JobRecord]) -> None:
        """Write the records that differ from what was last written, in one transaction (a stop
        with 10 000 idle jobs: one write of the few that changed, not 10 000); a failure is
        logged. For when no other save of these jobs runs (the service's stop)."""
        changed = []
        turns = Turns()  # (10 000 records encoded in one go held the loop 220-360 ms)
        for rec in recs:
            await turns.take()
            if self._known(rec.id):
                data = self._store.encode(rec)
                if self._written.get(rec.id) != hash(data):
                    changed.append((rec, data))
        if not changed:
            return
        try:
            async with self._lock:
                await anyio.to_thread.run_sync(self._store.write_many, [(r.id, d) for r, d in changed])
        except OSError as exc:
            log.warning("cannot save %d jobs: %s", len(changed), exc)
            return
        now = self._clock()
        for rec, data in changed:
            await turns.take()
            self._written[rec.id] = hash(data)
            self._saved[rec.id] = counters(rec)
            self._last_saved[rec.id] = now

    def loaded(self, hashes: dict[str, int]) -> None:
        """The records as ``JobStore.load_all`` read them (what is on disk at the start)."""
        self._written.update(hashes)

    def as_read(self, rec: JobRecord) -> None:
        """``rec`` is as its record was read at the start: its counters are those on disk (a
        round that finds them unchanged saves nothing)."""
        self._saved.setdefault(rec.id, counters(rec))

    def due(self, job_id: str, now: float, interval: float) -> bool:
        """Whether ``interval`` seconds have passed since the job's record was last saved."""
        return now - self._last_saved.get(job_id, 0.0) >= interval

    def changed(self, rec: JobRecord, now: float) -> bool:
        """Whether a save would change the job's counters on disk; if not, it counts as saved at ``now``."""
        if counters(rec) == self._saved.get(rec.id):
            self._last_saved[rec.id] = now
            return False
        return True

    def forget(self, job_id: str) -> None:
        """Drop what is known of a job that is gone."""
        self._last_saved.pop(job_id, None)
        self._saved.pop(job_id, None)
        self._written.pop(job_id, None)
