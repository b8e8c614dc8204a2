"""The job service's vocabulary: job states, errors, immutable snapshots and events.

Everything here is plain data: the service (``service.py``) builds the snapshots and publishes
the events; the HTTP API and the CLI read them.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import urlsplit

from ..errors import TorrentEngineError
from ..events import Event
from ..jsonvalue import JSON, JSONValue

if TYPE_CHECKING:
    from ..formats.metainfo import Torrent

__all__ = [
    "FINISHED_STATES", "TorrentFacts", "InvalidJobRequest", "Job", "JobAdded", "JobConflict",
    "JobError", "JobFeatures", "JobFile", "JobNotFound", "JobOptions", "JobPeer", "JobProgress",
    "JobRemoved", "JobResult", "JobStall", "JobState", "JobStateChanged", "JobTracker",
    "JobUpdated", "Lease", "LeaseNotFound", "ProgramEvent", "ProgramRun", "SavePathError",
    "ServiceStats", "ServiceStopped", "StateNotSaved", "ServiceStatsEvent",
]


# a list shows a seed's seeding time (and a job's time active) to the minute
# (``JobLifecycle.listed``); one job's answer to the second
LISTED_SEEDING_TIME_STEP = 60.0


def same_listed_step(shown: float, now: float, step: float = LISTED_SEEDING_TIME_STEP) -> bool:
    """Whether a time shown as ``shown`` seconds may still be shown for ``now``: the same
    (``step`` 0), or in the same ``step`` (a list shows a download's time active to the minute:
    the rounds mark the job when it moves on to the next)."""
    return shown == now or (step > 0 and shown // step == now // step)


def to_next_listed_step(now: float, step: float = LISTED_SEEDING_TIME_STEP) -> float:
    """The seconds from a time of ``now`` seconds until its listed value moves on."""
    return step - now % step


class JobState(enum.StrEnum):
    """A job's state, as the API shows it."""

    QUEUED = "queued"
    CHECKING = "checking"
    FETCHING_METADATA = "fetching_metadata"
    DOWNLOADING = "downloading"
    SEEDING = "seeding"
    PAUSED = "paused"
    # stopped because its data could not be written or read (a full disk, a permission, files
    # gone): kept with what was verified, it goes on when resumed or rechecked (not finished)
    ERROR = "error"
    COMPLETED = "completed"  # every wanted piece verified, and no longer seeding
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED_STATES: frozenset[JobState] = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED})
# the states in which a job's trackers are announced to (paused, queued or checking: none is due)
ANNOUNCING_STATES = frozenset({JobState.DOWNLOADING, JobState.SEEDING, JobState.FETCHING_METADATA})

# When a new job stops (is paused) by itself, as qBittorrent's stop conditions: "none" never;
# "metadata_received" once its metainfo is known (added paused when it is at its add: a .torrent);
# "files_checked" once its data was checked (its first check: downloading or seeding after it)
STOP_CONDITIONS = ("none", "metadata_received", "files_checked")


def check_stop_condition(value: object, name: str) -> str:
    """``value`` as a stop condition (one of ``STOP_CONDITIONS``), else ``InvalidJobRequest``."""
    if not isinstance(value, str) or value not in STOP_CONDITIONS:
        raise InvalidJobRequest(f"must be one of {', '.join(STOP_CONDITIONS)}", name)
    return value


# -- errors -------------------------------------------------------------------------------------
class JobError(TorrentEngineError):
    """Base of the job service's errors; ``field`` names the offending input, when there is one."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.reason = message
        self.field = field


class JobNotFound(JobError):
    """No job with that id (neither active nor in the history)."""


class JobConflict(JobError):
    """The operation does not fit the job's state (e.g. resuming a cancelled job)."""


class ServiceStopped(JobConflict):
    """The service stopped while an operation was restarting the job: the job is not failed for
    it, and starts again (where the operation left it) when the service starts."""

    def __init__(self, message: str = "the service stopped before the job could start: it starts when "
                                      "the service starts", field: str | None = None) -> None:
        super().__init__(message, field)


class DuplicateJob(JobConflict):
    """An add of a torrent that has an unfinished job (``job_id``) asks for another save path or
    file selection than that job has: refused, the job left as it is (Transmission's dialect
    answers it as Transmission does any add of a torrent it has: ``torrent-duplicate``)."""

    def __init__(self, message: str, field: str, job_id: str) -> None:
        super().__init__(message, field)
        self.job_id = job_id


class ServiceStarting(JobConflict):
    """The service is loading its torrents (its jobs are listed from their records meanwhile): a
    change is refused until it has started; ask again in a moment (the HTTP API answers 503 with
    ``Retry-After``)."""

    retry_after = 2  # seconds a caller is told to wait


class InvalidJobRequest(JobError):
    """Bad input to ``add``/``update``; ``field`` names it ("source", "save_path", "files", ...)."""


class SavePathError(InvalidJobRequest):
    """A save path outside the download root (``../``, an absolute path elsewhere, a symlink out)."""

    def __init__(self, message: str, field: str | None = "save_path") -> None:
        super().__init__(message, field)


class StateNotSaved(JobError):
    """A change could not be made durable in the state folder (``folder``): refused, not made.
    ``full``: its file system is out of space (the HTTP API answers 507 Insufficient Storage)."""

    def __init__(self, message: str, folder: str, *, full: bool) -> None:
        super().__init__(message)
        self.folder = folder
        self.full = full


@contextmanager
def one_not_saved() -> Iterator[None]:
    """Around changes made at once (a task group of them): when all they raised is
    ``StateNotSaved``, the first is raised as itself, as a single change raises it (the API
    answers 507); anything else leaves as the group (a bug shows as itself)."""
    try:
        yield
    except BaseExceptionGroup as group:
        found = [exc for exc in group.exceptions if isinstance(exc, StateNotSaved)]
        if found and len(found) == len(group.exceptions):
            raise found[0] from group
        raise


class LeaseNotFound(JobError):
    """No open client lease with that id (never opened, ended, lapsed or replaced)."""


# -- snapshots ----------------------------------------------------------------------------------
NO_LIMIT = -1.0  # a share limit that never stops the job (None: the service's default applies)


@dataclass(frozen=True, slots=True)
class JobFeatures:
    """A job's labels and policies (everything defaults to "none"/"the service's default")."""

    category: str = ""  # "" = no category
    tags: tuple[str, ...] = ()  # sorted, unique
    ratio_limit: float | None = None  # None = the service's default; -1 = none
    seeding_time_limit: float | None = None  # seconds of seeding; None = default; -1 = none
    # seconds seeding without sending or receiving a byte (Transmission's idle seeding limit,
    # qBittorrent's inactive seeding time limit); None = default; -1 = none
    idle_seeding_limit: float | None = None
    force_start: bool = False  # runs whatever the queue says
    first_last_piece: bool = False  # each wanted file's first and last piece before the others
    content_layout: str = "original"
    rename: str = ""  # the name shown instead of the torrent's ("" = the torrent's own)
    comment: str | None = None  # the comment shown instead of the metainfo's (None = the torrent's own)
    # what its reached share limit does ("stop", "remove", "remove_with_files", "super_seed":
    # ShareLimitAction's values); None = the service's share_limit_action
    share_limit_action: str | None = None
    # saved where its category says, moved when that changes (qBittorrent's automatic torrent
    # management: ``organising/managed.py``)
    auto_managed: bool = False

    def labelled(self, category: str | None, tag: str | None) -> bool:
        """Whether it is in ``category`` and has ``tag`` (None: any; "": none), as a download
        client's list chooses."""
        return (category is None or self.category == category) and (
            tag is None or (tag in self.tags if tag else not self.tags))

    def to_json(self) -> dict[str, JSON]:
        """The features as JSON (the record's and the API's)."""
        return {"category": self.category, "tags": list(self.tags), "ratio_limit": self.ratio_limit,
                "seeding_time_limit": self.seeding_time_limit, "idle_seeding_limit": self.idle_seeding_limit,
                "force_start": self.force_start, "first_last_piece": self.first_last_piece,
                "content_layout": self.content_layout,
                "rename": self.rename, "comment": self.comment,
                "share_limit_action": self.share_limit_action, "auto_managed": self.auto_managed}

    @classmethod
    def from_json(cls, d: JSONValue) -> JobFeatures:
        """The features of a record (``ValueError`` on malformed data; ``None`` = the defaults)."""
        if d is None:
            return cls()
        if not isinstance(d, dict):
            raise ValueError("features: not a JSON object")
        tags = d.get("tags", [])
        if not isinstance(tags, list):
            raise ValueError("features: tags is not a list")
        try:
            return cls(category=str(d.get("category", "")), tags=tuple(str(t) for t in tags),
                       ratio_limit=_opt_float(d.get("ratio_limit")),
                       seeding_time_limit=_opt_float(d.get("seeding_time_limit")),
                       idle_seeding_limit=_opt_float(d.get("idle_seeding_limit")),
                       force_start=bool(d.get("force_start", False)),
                       first_last_piece=bool(d.get("first_last_piece", False)),
                       content_layout=str(d.get("content_layout", "original")),
                       rename=str(d.get("rename", "")),
                       comment=None if d.get("comment") is None else str(d.get("comment")),
                       share_limit_action=None if d.get("share_limit_action") is None
                       else str(d.get("share_limit_action")),
                       auto_managed=bool(d.get("auto_managed", False)))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"features: {exc}") from exc


def _opt_float(value: object) -> float | None:
    if value is None:
        return None
    if not isinstance(value, (int, float, str)):
        raise ValueError(f"expected a number, got {type(value).__name__}")
    return float(value)


@dataclass(frozen=True, slots=True)
class TorrentFacts:
    """What a list shows of a job's torrent beyond the job itself, read from the job's record
    (no metainfo read: a seedbox lists thousands of dormant seeds): the size of its piece space
    (pad files and alignment too), its BEP 27 private flag, its own trackers by tier, its piece
    length, the metainfo's creator, creation date (-1: none) and comment ("": none), and its
    whole v2 info-hash in hex ("": a v1 torrent, or a record written before it was kept)."""

    total_length: int
    private: bool
    trackers: tuple[tuple[str, ...], ...]
    piece_length: int = 0  # (0: not known, a record written before it was kept)
    created_by: str = ""
    creation_date: int = -1
    comment: str = ""
    info_hash_v2: str = ""

    @classmethod
    def of(cls, torrent: Torrent) -> TorrentFacts:
        """The facts of a metainfo at hand (a running session's)."""
        return cls(torrent.total_length, torrent.private, tuple(tuple(tier) for tier in torrent.trackers),
                   torrent.piece_length, torrent.created_by or "",
                   torrent.creation_date if torrent.creation_date is not None else -1, torrent.comment or "",
                   torrent.info_hash_v2.hex() if torrent.info_hash_v2 is not None else "")


@dataclass(frozen=True, slots=True)
class JobFile:
    """One file of a job and how much of it is done."""

    index: int
    path: str  # relative to the save path, "/"-separated
    size: int
    progress: float
    priority: int  # 0 = skipped, 1..7 = downloaded (higher first)
    selected: bool


@dataclass(frozen=True, slots=True)
class JobPeer:
    """One connected peer of a job."""

    address: str
    client: str
    download_rate: float
    upload_rate: float
    progress: float
    transport: str = "tcp"  # "tcp" or "utp"
    sources: tuple[str, ...] = ()  # where it was heard of: tracker, dht, pex, lsd, magnet, user, incoming
    downloaded: int = 0  # payload bytes received from it over this connection
    uploaded: int = 0  # payload bytes sent to it over this connection
    relevance: float = 0.0  # the share of the pieces we lack that it has (0: we lack none)
    files: tuple[str, ...] = ()  # the files of the piece being downloaded from it (JobFile paths)
    peer_id: str = ""  # the 20 bytes of its handshake's peer id in hex ("": not known)
    wire: frozenset[str] = frozenset(("peer_choking", "am_choking"))  # now (session.peer.WIRE_STATES)


@dataclass(frozen=True, slots=True)
class JobTracker:
    """One tracker of a job and its last answer."""

    url: str
    status: str  # "working", "failed" or "unknown"
    message: str
    peers: int
    tier: int = 0  # its BEP 12 tier (0 first)
    seeds: int | None = None  # the swarm's seeders and leechers as its last answer said (None: not said)
    leechers: int | None = None
    downloaded: int | None = None  # times downloaded whole, as its last scrape said (None: not scraped)
    scrape_error: str | None = None  # why its last scrape failed (None: it did not)
    # when its last announce ended, when the next is due as scheduled (after a failure: its retry;
    # None: not known, or never again), and before when its "min interval" asks for none (epoch s)
    announced_at: float | None = None
    next_announce_at: float | None = None
    min_announce_at: float | None = None
    # how its last announce failed (None: it did not): "refused" (the tracker's failure reason),
    # "skipped" (not asked: the settings forbid it), "error" (no usable answer)
    failure: str | None = None
    # the "warning message" the tracker gave with its last answer, when it worked ("" none), and
    # the failure reason of its last answer, when it refused the announce ("" none): both kept
    # through announces it gave no answer to, until it answers again (as Transmission keeps a
    # tracker's warning or error for the torrent)
    warning: str = ""
    refusal: str = ""


_HOSTS: dict[str, str] = {}  # announce URL -> its host (thousands of jobs share a handful of trackers)
_HOSTS_KEPT = 4096


def tracker_host(url: str) -> str:
    """The host an announce URL names, lower case ("" when it names none): what a list groups
    its jobs by."""
    host = _HOSTS.get(url)
    if host is None:
        try:
            host = (urlsplit(url).hostname or "").lower()
        except ValueError:
            host = ""
        if len(_HOSTS) >= _HOSTS_KEPT:
            _HOSTS.clear()
        _HOSTS[url] = host
    return host


def tracker_hosts(trackers: tuple[JobTracker, ...]) -> list[str]:
    """The hosts of ``trackers``, once each, in their order (every job's summary carries them: a
    plain dict's lookup per tracker, as a list of 10 000 jobs is made of them)."""
    out: list[str] = []
    known = _HOSTS.get
    for t in trackers:
        host = known(t.url)
        if host is None:
            host = tracker_host(t.url)
        if host and host not in out:
            out.append(host)
    return out


# what can go wrong with a job's announces, in the order of qBittorrent 5.1's tracker status filter
TRACKER_ISSUES = ("warning", "tracker_error", "other_error")


def tracker_issues(trackers: tuple[JobTracker, ...]) -> list[str]:
    """What went wrong with the last announces to ``trackers``, of ``TRACKER_ISSUES``:
    ``warning`` (one that works answered with a warning message), ``tracker_error`` (one refused
    the announce: its failure reason), ``other_error`` (one gave no usable answer, or was not
    asked: the settings forbid it); empty when nothing went wrong."""
    warning = refused = other = False
    for t in trackers:
        if t.status == "working":
            warning = warning or bool(t.warning)
        elif t.status == "failed":
            if t.failure == "refused":
                refused = True
            else:
                other = True
    return [name for name, on in zip(TRACKER_ISSUES, (warning, refused, other), strict=True) if on]


@dataclass(frozen=True, slots=True)
class JobStall:
    """Why a running job has made no progress for a while, and since when; or why its data,
    complete, stays in its incomplete folder (reason "not_moved")."""

    reason: str  # a stall reason ("no_peer_sources", "none_reachable", ..., "not_moved")
    message: str  # the reason in words a user can act on
    since: float  # wall-clock time the progress stopped

    def to_json(self) -> dict[str, object]:
        """The stall as the API's JSON."""
        return {"reason": self.reason, "message": self.message, "since": self.since}


@dataclass(frozen=True, slots=True)
class JobResult:
    """What a finished job leaves in the history."""

    downloaded: int  # bytes received from peers
    uploaded: int
    duration: float  # seconds from creation to the end
    average_rate: float  # downloaded / duration (bytes per second)
    error: str | None

    def to_json(self) -> dict[str, JSON]:
        """The result as the API's JSON."""
        return {"downloaded": self.downloaded, "uploaded": self.uploaded, "duration": self.duration,
                "average_rate": self.average_rate, "error": self.error}


@dataclass(frozen=True, slots=True)
class JobOptions:
    """What the job was asked to do: where, which files, order, peers and limits."""

    save_path: str  # absolute, inside the download root
    files: tuple[int, ...] | None  # indices to download; None = all
    sequential: bool
    paused: bool
    peers: tuple[tuple[str, int], ...]
    client: str | None  # the lease the job is bound to
    download_limit: int  # bytes per second, 0 = unlimited
    upload_limit: int
    # added as complete on disk (qBittorrent's skip_checking): seeds at once, each piece verified
    # the first time it is served; False once a piece failed and the whole torrent was checked
    seed_mode: bool = False
    # where the data is while the job downloads (absolute, inside the download root; its
    # incomplete folder): moved to ``save_path`` once every wanted piece is verified. None:
    # the data is at ``save_path`` (no incomplete folder, or moved there already)
    download_path: str | None = None
    max_peers: int = 0  # the job's connections at most; 0: the setting for every torrent
    super_seeding: bool = False  # BEP 16 while it seeds (a downloading job ignores it)
    group: str = ""  # the bandwidth group it names ("": none; its category's or tags' may take it)
    owner: str = ""  # the user who added it ("": the admin's, as every job from before users)
    # the value each limit had when it was last turned off (0: none kept), kept while it is off
    # for a client that shows a limit's value beside its switch (Transmission's torrents keep it)
    kept_download_limit: int = 0
    kept_upload_limit: int = 0

    def to_json(self) -> dict[str, object]:
        """The options as the API's JSON."""
        return {"save_path": self.save_path, "files": list(self.files) if self.files is not None else None,
                "sequential": self.sequential, "paused": self.paused,
                "peers": [f"[{h}]:{port}" if ":" in h else f"{h}:{port}" for h, port in self.peers],
                "client": self.client, "download_limit": self.download_limit,
                "upload_limit": self.upload_limit, "seed_mode": self.seed_mode,
                "download_path": self.download_path, "max_peers": self.max_peers,
                "super_seeding": self.super_seeding, "group": self.group, "owner": self.owner}

    @property
    def data_path(self) -> str:
        """The folder that holds the job's data now: its incomplete folder while it downloads
        into one, else its save path."""
        return self.download_path if self.download_path is not None else self.save_path


@dataclass(frozen=True, slots=True)
class Job:
    """An immutable snapshot of one job at the moment it was taken."""

    id: str
    info_hash: str
    name: str
    source: str  # the magnet URI, or "torrent" for a .torrent
    options: JobOptions
    state: JobState
    created_at: float
    updated_at: float
    completed_at: float | None
    progress: float  # 0..1 of the wanted bytes
    total_size: int  # wanted bytes
    done_size: int  # wanted bytes verified
    downloaded: int
    uploaded: int
    download_rate: float
    upload_rate: float
    peers: int
    seeds: int
    eta: float | None  # seconds; None when unknown or the rate is too low to mean anything
    files: tuple[JobFile, ...]
    peer_list: tuple[JobPeer, ...]
    trackers: tuple[JobTracker, ...]
    error: str | None
    result: JobResult | None
    # why it has not progressed for a while (None while it moves), or why its data stays in its
    # incomplete folder once complete
    stall: JobStall | None = None
    features: JobFeatures = JobFeatures()
    queue_position: int = 0  # 1 = next to run among unfinished, incomplete jobs; 0 = not in the queue
    seeding_time: float = 0.0  # seconds spent seeding
    idle_seeding_time: float = 0.0  # seconds of it since the job last sent or received a byte
    active_at: float | None = None  # when it last sent or received a byte (None: never yet)
    seen_complete_at: float | None = None  # when a connected peer last had every piece (None: never)
    downloading_time: float = 0.0  # seconds spent downloading (its metadata too; not paused or queued)
    # distributed copies among the connected peers and us (libtorrent's ``distributed_copies``); None
    # while it does not run (paused, queued, checking) or has no metadata
    availability: float | None = None
    ratio: float = 0.0  # uploaded over downloaded (see queue.share_ratio)
    number: int = 0  # a small whole number naming the job for good (1, 2, ...; Transmission's id)
    missing_files: tuple[str, ...] = ()  # (state error) files that held verified data, found gone
    # seed mode: every piece counts as had (progress 1.0) and ``verified_pieces`` of the
    # ``num_pieces`` were hashed so far; else every piece had is verified. None: not known (the
    # job has no session running, or no metadata yet)
    seed_mode: bool = False
    verified_pieces: int | None = None
    num_pieces: int | None = None
    # the last program run for it (ProgramRun; a single job's answer only, None: none
    # since the service started)
    last_program: ProgramRun | None = None
    # bytes of its files taken at the add from files held whole with the same BEP 52 pieces root
    # (another job's, an indexed folder's: docs/dedup.md), then verified by its check, not downloaded
    dedup_bytes: int = 0
    # its files are being moved to another folder (``set_location``, the completed-folder move):
    # its session is stopped meanwhile (qBittorrent's "moving")
    moving: bool = False
    # every file of the torrent together, pad files left out (qBittorrent's ``total_size``, where
    # ``total_size`` here is the wanted files'); None before the metadata
    torrent_size: int | None = None
    # bytes among ``downloaded`` not needed (endgame duplicates, pieces given back), and in pieces
    # that failed their hash check (qBittorrent's ``total_wasted`` is both; Transmission's ``corruptEver``)
    wasted: int = 0
    corrupt: int = 0
    # of ``downloaded`` and ``uploaded``, the bytes moved in this run of the service (since its
    # start, or the job's add): qBittorrent's ``downloaded_session`` and ``uploaded_session``
    run_downloaded: int = 0
    run_uploaded: int = 0
    # when it last began to run (to announce: downloading, seeding or fetching its metadata) in this
    # run of the service — resumed, out of the queue, after a check, or at the service's start;
    # 0 if it has not since (Transmission's ``startDate``)
    started_at: float = 0.0

    @property
    def finished(self) -> bool:
        """Whether the job ended (completed, failed or cancelled)."""
        return self.state in FINISHED_STATES

    @property
    def time_active(self) -> float:
        """Seconds the job ran, downloading or seeding (qBittorrent's ``time_active``)."""
        return self.downloading_time + self.seeding_time

    @property
    def announcing(self) -> bool:
        """Whether the job announces to its trackers now (not paused, queued, checking or ended)."""
        return self.state in ANNOUNCING_STATES

    def announce_times(self, t: JobTracker) -> tuple[float | None, float | None]:
        """Its tracker ``t``'s next announce and the end of its min interval (epoch seconds) as
        every view shows them: none while the job announces nothing (paused, queued, checking:
        what its last announce scheduled is not due)."""
        if self.announcing:
            return t.next_announce_at, t.min_announce_at
        return None, None

    def _tracker_json(self, t: JobTracker) -> dict[str, JSON]:
        due, least = self.announce_times(t)
        return {"url": t.url, "status": t.status, "message": t.message, "peers": t.peers, "tier": t.tier,
                "seeds": t.seeds, "leechers": t.leechers, "downloaded": t.downloaded,
                "scrape_error": t.scrape_error, "announced_at": t.announced_at, "next_announce_at": due,
                "min_announce_at": least, "failure": t.failure, "warning": t.warning, "refusal": t.refusal}

    def to_json(self, *, detail: bool = False) -> dict[str, object]:
        """The job as the API's JSON (files, peers and trackers too when ``detail``)."""
        out: dict[str, object] = {
            "id": self.id, "info_hash": self.info_hash, "name": self.name, "source": self.source,
            "options": self.options.to_json(), "state": self.state.value, "created_at": self.created_at,
            "updated_at": self.updated_at, "completed_at": self.completed_at, "progress": self.progress,
            "total_size": self.total_size, "torrent_size": self.torrent_size, "done_size": self.done_size,
            "downloaded": self.downloaded, "uploaded": self.uploaded, "wasted": self.wasted,
            "corrupt": self.corrupt, "run_downloaded": self.run_downloaded, "run_uploaded": self.run_uploaded,
            "started_at": self.started_at, "download_rate": self.download_rate,
            "upload_rate": self.upload_rate, "peers": self.peers, "seeds": self.seeds, "eta": self.eta,
            "error": self.error, "result": self.result.to_json() if self.result is not None else None,
            "stall": self.stall.to_json() if self.stall is not None else None,
            "features": self.features.to_json(), "queue_position": self.queue_position,
            "seeding_time": self.seeding_time, "idle_seeding_time": self.idle_seeding_time,
            "active_at": self.active_at, "seen_complete_at": self.seen_complete_at,
            "downloading_time": self.downloading_time, "time_active": self.time_active,
            "availability": self.availability, "ratio": self.ratio,
            "number": self.number, "missing_files": list(self.missing_files),
            "seed_mode": self.seed_mode, "verified_pieces": self.verified_pieces,
            "num_pieces": self.num_pieces, "dedup_bytes": self.dedup_bytes,
            "tracker_hosts": tracker_hosts(self.trackers), "tracker_issues": tracker_issues(self.trackers),
            "moving": self.moving,
        }
        if detail:
            out["files"] = [{"index": f.index, "path": f.path, "size": f.size, "progress": f.progress,
                             "priority": f.priority, "selected": f.selected} for f in self.files]
            out["peer_list"] = [{"address": p.address, "client": p.client, "download_rate": p.download_rate,
                                 "upload_rate": p.upload_rate, "progress": p.progress,
                                 "transport": p.transport, "sources": list(p.sources),
                                 "downloaded": p.downloaded, "uploaded": p.uploaded,
                                 "relevance": p.relevance, "files": list(p.files), "peer_id": p.peer_id,
                                 "wire": sorted(p.wire)}
                                for p in self.peer_list]
            out["trackers"] = [self._tracker_json(t) for t in self.trackers]
            out["last_program"] = None if self.last_program is None else self.last_program.to_json()
        return out


@dataclass(frozen=True, slots=True)
class JobChanges:
    """The jobs changed after a cursor (``JobService.changes``): each as a list shows it now,
    newest first, and the ids of those removed; ``cursor`` names this answer (the next one asks
    for what changed after it). ``full``: the cursor was unknown (too old, of another run): the
    answer has every job, and the asker drops whatever it holds that is not among them."""

    cursor: int
    full: bool
    jobs: list[Job]
    removed: list[str]


@dataclass(frozen=True, slots=True)
class Holdings:
    """What one owner (a user's name; "" the admin's) holds (``JobService.holdings_of``): their
    jobs that count against a user's quotas (in any state but cancelled and failed: a finished
    download's files are still theirs) and those jobs' wanted bytes, as their records say; the
    categories and tags their jobs (the history's too) carry."""

    jobs: int
    bytes: int
    categories: frozenset[str]
    tags: frozenset[str]


@dataclass(frozen=True, slots=True)
class ClientChanges:
    """What a download client lists of each torrent changed after a cursor or within a time
    (``JobService.client_changes``): by info-hash, the jobs it lists of it now (none: it is
    gone for such a client), and the numbers of jobs it may have listed that it lists no more.
    ``full``: the cursor was unknown, nothing else is said: the caller answers with every job.
    ``moved`` (asked for with ``positions``): the torrents whose listed job only moved in the
    queue since the cursor, each as (its queue position now, its job's id), not in ``torrents``
    (a completion moves every job after it: no view of each made again)."""

    cursor: int
    full: bool
    torrents: dict[str, list[Job]]
    removed_numbers: list[int]
    moved: dict[str, tuple[int, str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Lease:
    """A client's session with the service: its jobs live only while the lease does."""

    id: str
    ttl: float
    expires_at: float

    def to_json(self) -> dict[str, object]:
        """The lease as the API's JSON."""
        return {"id": self.id, "ttl": self.ttl, "expires_at": self.expires_at}


@dataclass(frozen=True, slots=True)
class TransferCounts:
    """Bytes downloaded and uploaded, torrents added, seconds running and starts, bytes wasted
    (received and not needed, or in pieces that failed their hash check: among those downloaded),
    of one run (``session_count`` 1) or of every run."""

    downloaded: int = 0
    uploaded: int = 0
    added: int = 0
    seconds_active: int = 0
    session_count: int = 0
    wasted: int = 0

    def plus(self, other: TransferCounts) -> TransferCounts:
        """Both together."""
        return TransferCounts(*(a + b for a, b in zip(dataclasses.astuple(self), dataclasses.astuple(other),
                                                      strict=True)))

    def to_json(self) -> dict[str, int]:
        """As the API's JSON (and the file's)."""
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class TransferStats:
    """This run's counts, and every run's (this one's with them)."""

    session: TransferCounts
    all_time: TransferCounts

    def to_json(self) -> dict[str, object]:
        """As the API's JSON."""
        return {"session": self.session.to_json(), "all_time": self.all_time.to_json()}


@dataclass(frozen=True, slots=True)
class ServiceStats:
    """The service's totals: rates, bytes, listen port, DHT nodes, peers, port mapping and jobs per
    state."""

    download_rate: float
    upload_rate: float
    downloaded: int
    uploaded: int
    listen_port: int
    dht_nodes: int
    jobs: dict[str, int]  # count per state (every state present, 0 included)
    peers: int = 0  # connected peers, all jobs together
    port_mapping: PortMappingStatus | None = None  # None: port mapping is off (or not started)
    # what moved this run and in every run (bytes, adds, seconds, starts: jobs/totals.py)
    transfer: TransferStats = TransferStats(TransferCounts(), TransferCounts())
    queued_announces: int = 0  # tracker announces and scrapes waiting for a slot
    request_latency: int = 0  # µs a piece a peer asked for takes to be read, blended (libtorrent's)
    incoming_connections: bool = False  # a peer from outside the local network connected (reachable)

    def to_json(self) -> dict[str, object]:
        """The totals as the API's JSON."""
        return {"download_rate": self.download_rate, "upload_rate": self.upload_rate,
                "downloaded": self.downloaded, "uploaded": self.uploaded, "listen_port": self.listen_port,
                "dht_nodes": self.dht_nodes, "jobs": dict(self.jobs), "peers": self.peers,
                "port_mapping": None if self.port_mapping is None else self.port_mapping.to_json(),
                "transfer": self.transfer.to_json(), "queued_announces": self.queued_announces,
                "request_latency": self.request_latency, "incoming_connections": self.incoming_connections}


@dataclass(frozen=True, slots=True)
class PortMappingStatus:
    """What the gateway was asked and granted: the method that worked ("natpmp", "upnp", or ""
    before one did), the external address it reports, the ports it forwards, the last failure."""

    method: str
    external_ip: str | None
    mappings: tuple[tuple[str, int, int, int], ...]  # (protocol, internal, external port, lifetime s)
    error: str | None

    def to_json(self) -> dict[str, object]:
        """As the API's JSON."""
        return {"method": self.method, "external_ip": self.external_ip, "error": self.error,
                "mappings": [{"protocol": p, "internal_port": i, "external_port": e, "lifetime": life}
                             for p, i, e, life in self.mappings]}


# -- events -------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True, slots=True)
class JobAdded(Event):
    """A job was added."""

    name: ClassVar[str] = "job.added"
    job: Job


@dataclass(frozen=True, kw_only=True, slots=True)
class JobStateChanged(Event):
    """A job moved from state ``old`` to ``new``."""

    name: ClassVar[str] = "job.state"
    job: Job
    old: JobState
    new: JobState


@dataclass(frozen=True, kw_only=True, slots=True)
class JobProgress(Event):
    """Throttled: at most ``PROGRESS_PER_SECOND`` per job and second."""

    name: ClassVar[str] = "job.progress"
    job: Job


@dataclass(frozen=True, kw_only=True, slots=True)
class JobUpdated(Event):
    """A job's features, queue position or save path changed (its state did not)."""

    name: ClassVar[str] = "job.updated"
    job: Job


@dataclass(frozen=True, kw_only=True, slots=True)
class JobRemoved(Event):
    """A finished job pruned from the history or cleared from it."""

    name: ClassVar[str] = "job.removed"
    job_id: str


@dataclass(frozen=True, kw_only=True, slots=True)
class ServiceStatsEvent(Event):
    """Once a second while the service runs."""

    name: ClassVar[str] = "service.stats"
    stats: ServiceStats


def share_ratio(uploaded: int, downloaded: int, done: int) -> float:
    """Uploaded over downloaded; a job that downloaded (almost) nothing itself (it was seeded
    from data already on disk) counts its verified bytes instead, as qBittorrent does."""
    base = downloaded if downloaded >= done // 100 and downloaded > 0 else done
    return uploaded / base if base > 0 else 0.0


class ProgramEvent(enum.StrEnum):
    """When a program runs (the setting that names it: ``run_on_<event>``)."""

    ADDED = "added"  # a job was added (not when a restart brings it back)
    COMPLETED = "completed"  # its wanted files are all downloaded and verified
    SEEDING_DONE = "seeding_done"  # its share limit was reached


@dataclass(frozen=True, slots=True)
class ProgramRun:
    """What one run of a program did."""

    event: ProgramEvent
    argv: tuple[str, ...]
    started_at: float
    duration: float
    exit_code: int | None  # None: it could not be started, or it was killed at the time limit
    timed_out: bool = False  # killed (its whole process group) at the time limit
    error: str | None = None  # why it could not be started (e.g. no such program)
    output: str = ""  # the tail of its stdout and stderr

    @property
    def ok(self) -> bool:
        """Whether it exited 0."""
        return self.exit_code == 0

    def to_json(self) -> dict[str, object]:
        """The run as the API's JSON (a job's ``last_program``)."""
        return {"event": self.event.value, "argv": list(self.argv), "started_at": self.started_at,
                "duration": self.duration, "exit_code": self.exit_code, "timed_out": self.timed_out,
                "error": self.error, "output": self.output}
