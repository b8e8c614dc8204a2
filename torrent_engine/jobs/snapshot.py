"""What a job looks like from outside: ``Job`` views built from a record and (while it runs) its session.

Pure functions: they read a ``JobRecord``, a session's public status and what trackers said, and
build frozen values; nothing here writes, waits or keeps state (the service owns the caches).
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Awaitable, Callable, Collection, Hashable, Mapping, Sequence
from typing import TYPE_CHECKING

from ..events import TrackerFailed, TrackerSuccess
from ..formats.bitfield import Bitfield
from ..formats.layout import FileMap
from ..formats.metainfo import Torrent
from ..policy.picker import DEFAULT_PRIORITY
from ..session import Session, SessionSetup
from ..session.state_table import State
from .model import (
    FINISHED_STATES,
    Job,
    JobFile,
    JobPeer,
    JobResult,
    JobStall,
    JobState,
    JobTracker,
    share_ratio,
)
from .store import JobRecord, later

if TYPE_CHECKING:
    from ..session import Session

STARTING = frozenset({State.QUEUED.value, State.CHECKING.value})  # a session's states before its check ends
SWARMING = frozenset({State.DOWNLOADING, State.SEEDING})  # a session's states with a swarm (peers counted)
MIN_ETA_RATE = 1024.0  # bytes/s: below this an ETA means nothing (None)

SESSION_TO_JOB: dict[State, JobState] = {
    State.QUEUED: JobState.QUEUED,
    State.CHECKING: JobState.CHECKING,
    State.DOWNLOADING_METADATA: JobState.FETCHING_METADATA,
    State.DOWNLOADING: JobState.DOWNLOADING,
    State.SEEDING: JobState.SEEDING,
    State.PAUSED: JobState.PAUSED,
}
"""The job state of each running session state (the others, error and stopped, end the job)."""


def shown_state(state: State, *, held: bool, paused: bool) -> JobState:
    """The job state a running session's ``state`` shows (``SESSION_TO_JOB``), for a job the
    queue holds (``held``) or the user paused (``paused``): paused by the queue alone it is
    queued; queued, as a session added or started paused is until its check has looked (its
    check waits for a slot as checking), a job the user paused is paused (an add's answer made
    then said queued)."""
    new = SESSION_TO_JOB[state]
    if new is JobState.PAUSED and held and not paused:
        return JobState.QUEUED
    if new is JobState.QUEUED and paused:
        return JobState.PAUSED
    return new


def live_job(rec: JobRecord, session: Session, heard: Mapping[str, JobTracker]) -> Job:
    """The job ``rec`` while its ``session`` runs: progress, rates, files, peers and trackers
    (``heard``: what each tracker's last announce said, by URL)."""
    st = session.status()
    has_meta = session.has_metadata
    left = max(0, st.total_wanted - st.have_bytes)
    eta: float | None
    if has_meta and left == 0:
        eta = None  # nothing left to wait for (seeding): no ETA, not 00:00
    elif st.download_rate >= MIN_ETA_RATE:
        eta = left / st.download_rate
    else:
        eta = None
    files: tuple[JobFile, ...] = ()
    num_pieces = 0
    if has_meta:
        files = file_progress(session.torrent, session.have, rec.file_priorities, shown_paths(rec))
        num_pieces = session.torrent.num_pieces
    stall = rec.unmoved
    if st.stall_reason is not None and st.stall_message is not None and st.stalled_since is not None:
        stall = JobStall(reason=st.stall_reason, message=st.stall_message, since=st.stalled_since)
    paths = {f.index: f.path for f in files} if session.peer_count else {}  # (metainfo index: path)
    optimistic = session.uploader.optimistic if has_meta and session.peer_count else frozenset()
    peers = tuple(JobPeer(address=p.address, client=p.client, download_rate=p.down_rate,
                          upload_rate=p.up_rate, progress=len(p.have) / num_pieces if num_pieces else 0.0,
                          transport=p.transport, sources=session.pool.sources(p.key, incoming=p.incoming),
                          downloaded=p.downloaded, uploaded=p.uploaded,
                          relevance=_relevance(p.have, session.have, num_pieces),
                          files=_downloading_files(session, p.key, paths) if paths else (),
                          peer_id=p.link.peer_id.hex(), wire=p.wire_state(p.key in optimistic))
                  for p in session.peers)
    progress, done_size = (st.progress, st.have_bytes) if has_meta else (0.0, 0)
    if not knows_pieces(session) and rec.total_size > 0:  # what the record last said stands
        progress, done_size = min(1.0, rec.done_size / rec.total_size), rec.done_size
    return Job(id=rec.id, info_hash=rec.info_hash, name=st.name, source=rec.source, options=rec.options,
               state=rec.state, created_at=rec.created_at, updated_at=rec.updated_at,
               completed_at=rec.completed_at, progress=progress,
               total_size=st.total_wanted if has_meta else rec.total_size,
               done_size=done_size, downloaded=st.downloaded, uploaded=st.uploaded,
               wasted=session.context.totals.wasted, corrupt=session.context.totals.corrupt,
               run_downloaded=max(0, st.downloaded - rec.before_run[0]),
               run_uploaded=max(0, st.uploaded - rec.before_run[1]), started_at=rec.started_at,
               download_rate=st.download_rate, upload_rate=st.upload_rate, peers=st.peers, seeds=st.seeds,
               eta=eta, files=files, peer_list=peers, trackers=tracker_list(session, heard),
               error=rec.error or None, result=rec.result, stall=stall, seed_mode=st.seed_mode,
               verified_pieces=st.verified_pieces if has_meta else None,
               num_pieces=num_pieces if has_meta else None, dedup_bytes=rec.dedup_bytes,
               moving=rec.moving is not None, torrent_size=torrent_size(rec),
               availability=availability(session, num_pieces),
               seen_complete_at=later(rec.seen_complete_at, st.seen_complete))


def torrent_size(rec: JobRecord) -> int | None:
    """Every file of ``rec``'s torrent together, pad files left out (None before its metadata)."""
    sizes = rec.file_sizes
    if sizes is None:
        return None
    if not rec.pad_files:
        return sum(sizes)
    pads = set(rec.pad_files)
    return sum(size for i, size in enumerate(sizes) if i not in pads)


def availability(session: Session, num_pieces: int) -> float | None:
    """The distributed copies among the session's peers and us, read from its picker now (a view is
    made when asked for, not each second); None as libtorrent says -1: no metadata, no swarm
    (paused, queued, checking), or every piece had (a seed keeps no picker there)."""
    if not session.has_metadata or session.state not in SWARMING or len(session.have) >= num_pieces:
        return None
    return session.picker.distributed_copies()


def _relevance(theirs: Bitfield, ours: Bitfield, num_pieces: int) -> float:
    """The share of the pieces we lack that the peer has, as qBittorrent's ``relevance`` (0 when
    we lack none, or without the metadata)."""
    missing = num_pieces - len(ours)
    if missing <= 0 or len(theirs) == 0 or theirs.num_pieces != num_pieces:
        return 0.0
    return theirs.count_not_in(ours) / missing


def _downloading_files(session: Session, peer_key: Hashable, paths: Mapping[int, str]) -> tuple[str, ...]:
    """The ``paths`` of the files holding the piece being downloaded from the peer (its oldest
    request), as qBittorrent's ``files`` of a peer; none while nothing is asked of it."""
    piece = session.picker.downloading_piece(peer_key) if session.state in SWARMING else None
    if piece is None:
        return ()
    torrent = session.torrent
    slices = FileMap(torrent).slices(piece, 0, torrent.piece_size(piece))
    return tuple(paths[s.file_index] for s in slices if not s.pad and s.file_index in paths)


def live_stamp(rec: JobRecord, session: Session) -> tuple[object, ...]:
    """What ``live_job(rec, session, ...)`` is made from, cheaply: equal stamps, equal views. The
    session's part moves with its state, pieces, totals, peers, stall and ticks (a session with
    peers or a download ticks each second: its rates and peers' numbers are read anew then; a
    still one — checking, queued, idle — keeps its stamp); the record's with what a change of it
    sets (its state, ``updated_at``, options, sizes, file priorities). What trackers said is not
    in it: its news drops the kept view (``EngineNews``)."""
    ctx = session.context
    stall = session.stall_watch.stall
    return (session, ctx.state, session.tick.ticks, session.has_metadata, session.rechecked,
            len(session.have), ctx.totals.downloaded, ctx.totals.uploaded, ctx.totals.corrupt, len(ctx.peers),
            session.verified_pieces, session.error, stall, session.listen_port,
            rec.state, rec.updated_at, rec.started_at, rec.completed_at, rec.error, rec.result, rec.unmoved,
            rec.total_size, rec.done_size, rec.options, rec.file_paths,
            None if rec.file_priorities is None else tuple(rec.file_priorities))


def knows_pieces(session: Session) -> bool:
    """Whether the session's pieces say what is had: not while it has not checked yet or reads its
    resume data (a restart, a move): nothing is known lost then, though it has no piece yet (a
    complete download showed 0 % until the read ended, and its record was told so)."""
    return session.state.value not in STARTING or session.rechecked


def tracker_list(session: Session, heard: Mapping[str, JobTracker]) -> tuple[JobTracker, ...]:
    """Every tracker of the torrent (or magnet), with what its last announce said; trackers heard
    from that the metainfo does not name (e.g. from a magnet) come last."""
    tier_of: dict[str, int] = {}
    for n, tier in enumerate(session.announcer.tiers()):
        for url in tier:
            tier_of.setdefault(url, n)
    out = [_in_tier(heard[url], n) if url in heard
           else JobTracker(url=url, status="unknown", message="", peers=0, tier=n)
           for url, n in tier_of.items()]
    last = len(session.announcer.tiers())
    out.extend(_in_tier(t, last) for url, t in heard.items() if url not in tier_of)
    return tuple(out)


def _in_tier(tracker: JobTracker, tier: int) -> JobTracker:
    """``tracker`` shown in ``tier`` (itself when it is: a view made each second copies none)."""
    return tracker if tracker.tier == tier else dataclasses.replace(tracker, tier=tier)


def tracker_heard(event: TrackerSuccess | TrackerFailed, now: float,
                  was: JobTracker | None = None) -> JobTracker:
    """What a ``tracker.success`` or ``tracker.failed`` event, heard at ``now`` (epoch seconds),
    says of its tracker: its answer, and when it is announced to next; an announce it gave no
    answer to keeps the warning or the refusal of its last answer (``was``: what was heard of it
    before)."""
    if isinstance(event, TrackerSuccess):
        return JobTracker(url=event.url, status="working", message="", peers=event.peers,
                          seeds=event.seeders, leechers=event.leechers, announced_at=now,
                          next_announce_at=None if event.next_in is None else now + event.next_in,
                          min_announce_at=now + event.min_interval if event.min_interval else None,
                          warning=event.warning)
    answered = event.kind == "refused"
    return JobTracker(url=event.url, status="failed", message=event.error, peers=0, announced_at=now,
                      next_announce_at=None if event.retry_in is None else now + event.retry_in,
                      failure=event.kind, warning="" if answered or was is None else was.warning,
                      refusal=event.error if answered else "" if was is None else was.refusal)


# what ``record_job`` reads of a record (``record_stamp``): a record's fields are values, each
# replaced when it changes, so these taken together say whether its view would be the same
_RECORD_INPUTS = operator.attrgetter(
    "id", "info_hash", "name", "source", "options", "state", "created_at", "updated_at",
    "completed_at", "error", "result", "total_size", "done_size", "downloaded", "uploaded", "wasted",
    "corrupt", "before_run", "started_at", "file_priorities", "file_paths", "partial", "file_sizes",
    "pad_files", "features", "seeding_time", "idle_seeding_time", "active_at", "seen_complete_at",
    "downloading_time", "number",
    "file_done", "trackers", "tracker_tiers", "moving", "missing_files", "dedup_bytes", "unmoved")


def record_stamp(rec: JobRecord, heard: Mapping[str, JobTracker] | None, state: JobState | None,
                 queue_position: int | None) -> tuple[object, ...]:
    """What ``record_job(rec, heard, state=state, queue_position=queue_position)`` is made from,
    cheaply: equal stamps, equal views."""
    return (_RECORD_INPUTS(rec), None if not heard else tuple(heard.items()), state, queue_position)


def record_job(rec: JobRecord, heard: Mapping[str, JobTracker] | None = None, *,
               state: JobState | None = None, queue_position: int | None = None) -> Job:
    """A job without a running session (paused since the last start, a dormant seed, or
    finished): what its record says (per-file progress as saved, or whole/none when the record
    has none); ``heard``: what its trackers said last (a dormant seed is announced); ``state``:
    the state shown instead of the record's; ``queue_position``: given, the view is made as the
    service shows it at once (``JobLifecycle._decorate``'s: its renamed name, features, place in
    the queue, seeding time, ratio and number), not made and then copied with them."""
    done = rec.state is JobState.COMPLETED
    files: tuple[JobFile, ...] = ()
    if rec.file_paths is not None and rec.file_sizes is not None:
        prios = rec.file_priorities or [DEFAULT_PRIORITY] * len(rec.file_paths)
        pads = set(rec.pad_files)
        saved = rec.file_done if rec.file_done is not None and len(rec.file_done) == len(rec.file_paths) \
            else None
        whole = done or (rec.total_size > 0 and rec.done_size >= rec.total_size)
        rows = enumerate(zip(shown_paths(rec) or (), rec.file_sizes, prios, strict=False))
        files = tuple(JobFile(index=i, path="/".join(p), size=s, priority=prio, selected=prio > 0,
                              progress=(1.0 if s == 0 else saved[i] / s) if saved is not None and not done
                              else float(whole and prio > 0))
                      for i, (p, s, prio) in rows if i not in pads)
    progress = 1.0 if done else (rec.done_size / rec.total_size if rec.total_size else 0.0)
    tiers = rec.tracker_tiers if rec.tracker_tiers is not None else [[url] for url in rec.trackers or ()]
    heard = heard or {}
    trackers = tuple(_in_tier(heard[url], n) if url in heard
                     else JobTracker(url=url, status="unknown", message="", peers=0, tier=n)
                     for n, tier in enumerate(tiers) for url in tier)
    if rec.state in FINISHED_STATES:
        trackers = ()
    done_size = rec.total_size if done else rec.done_size
    shown = queue_position is not None  # (made as the service shows it: see the docstring)
    name = (rec.features.rename or rec.name) if shown else rec.name
    return Job(id=rec.id, info_hash=rec.info_hash, name=name, source=rec.source, options=rec.options,
               state=rec.state if state is None else state, created_at=rec.created_at,
               updated_at=rec.updated_at, completed_at=rec.completed_at,
               progress=progress, total_size=rec.total_size, done_size=done_size, downloaded=rec.downloaded,
               uploaded=rec.uploaded, wasted=rec.wasted, corrupt=rec.corrupt, download_rate=0.0,
               run_downloaded=max(0, rec.downloaded - rec.before_run[0]),
               run_uploaded=max(0, rec.uploaded - rec.before_run[1]), started_at=rec.started_at,
               upload_rate=0.0, peers=0, seeds=0,
               eta=None, files=files, peer_list=(), trackers=trackers, error=rec.error,
               result=rec.result, missing_files=tuple(rec.missing_files), seed_mode=rec.options.seed_mode,
               features=rec.features, queue_position=queue_position or 0, seeding_time=rec.seeding_time,
               downloading_time=rec.downloading_time, idle_seeding_time=rec.idle_seeding_time,
               active_at=rec.active_at, seen_complete_at=rec.seen_complete_at,
               ratio=share_ratio(rec.uploaded, rec.downloaded, done_size), number=rec.number,
               dedup_bytes=rec.dedup_bytes, moving=rec.moving is not None, torrent_size=torrent_size(rec),
               stall=rec.unmoved)


def file_progress(torrent: Torrent, have: Bitfield, priorities: Sequence[int] | None,
                  paths: Sequence[Sequence[str]] | None = None) -> tuple[JobFile, ...]:
    """Each file's share of verified bytes (``have``: the verified pieces), pad files left out;
    ``paths``: each file's path as the job keeps it (renamed), when known."""
    out: list[JobFile] = []
    if paths is not None and len(paths) != len(torrent.files):
        paths = None
    for i, (f, done) in enumerate(zip(torrent.files, files_done(torrent, have), strict=True)):
        if f.pad:
            continue
        prio = priorities[i] if priorities is not None and i < len(priorities) else DEFAULT_PRIORITY
        progress = 1.0 if f.length == 0 else done / f.length
        path = "/".join(paths[i] if paths is not None else f.path)
        out.append(JobFile(index=i, path=path, size=f.length, progress=progress, priority=prio,
                           selected=prio > 0))
    return tuple(out)


def files_done(torrent: Torrent, have: Bitfield) -> list[int]:
    """Each file's verified bytes (``have``: the verified pieces), pad files included."""
    pl = torrent.piece_length
    out: list[int] = []
    for f in torrent.files:
        end = f.offset + f.length
        done = 0
        if f.length:
            first, last = f.offset // pl, (end - 1) // pl
            if first in have:
                done += min(end, (first + 1) * pl) - f.offset
            if last > first:
                # the pieces between lie whole inside the file (a count of bits, not a test each:
                # a 2.5 GiB file of 64 KiB pieces has 40 000, and every snapshot of it asks)
                done += have.count_in(first + 1, last) * pl
                if last in have:
                    done += end - last * pl
        out.append(done)
    return out


def selected_priorities(rec: JobRecord, torrent: Torrent) -> tuple[int, ...]:
    """The file priorities the job's selection asks for (every file when it has none; pad files 0)."""
    sel = rec.options.files
    return tuple(0 if f.pad else (DEFAULT_PRIORITY if sel is None or i in sel else 0)
                 for i, f in enumerate(torrent.files))


def _with_suffix(parts: Sequence[str], suffix: str) -> tuple[str, ...]:
    """The path ``parts`` with ``suffix`` after its file's name."""
    return (*parts[:-1], parts[-1] + suffix)


def actual_paths(shown: Sequence[Sequence[str]], partial: Collection[int],
                 suffix: str) -> tuple[tuple[str, ...], ...]:
    """Where each file of ``shown`` is on disk: those of ``partial`` under ``suffix`` (an
    incomplete file's: disk/partial.py)."""
    return tuple(_with_suffix(p, suffix) if i in partial else tuple(p) for i, p in enumerate(shown))


def shown_paths(rec: JobRecord) -> tuple[tuple[str, ...], ...] | None:
    """The job's files as its views, renames and claims name them: ``file_paths`` without the
    suffix its incomplete files carry on disk (disk/partial.py); None before its metadata."""
    paths = rec.file_paths
    if paths is None or not rec.partial:
        return paths
    cut, partial = len(rec.partial_suffix), set(rec.partial)
    return tuple((*p[:-1], p[-1][:-cut]) if i in partial and cut and p[-1].endswith(rec.partial_suffix)
                 else p for i, p in enumerate(paths))


def learn_facts(rec: JobRecord, torrent: Torrent) -> None:
    """Keep in ``rec`` what lists show of the torrent (``TorrentFacts``), so that no list reads
    its metainfo."""
    rec.torrent_length, rec.private = torrent.total_length, torrent.private
    rec.piece_length, rec.created_by = torrent.piece_length, torrent.created_by or ""
    rec.creation_date = torrent.creation_date if torrent.creation_date is not None else -1
    rec.torrent_comment = torrent.comment or ""
    rec.info_hash_v2 = torrent.info_hash_v2.hex() if torrent.info_hash_v2 is not None else ""


def learn_layout(rec: JobRecord, torrent: Torrent) -> None:
    """Record the torrent's files in ``rec`` once the metainfo is known, and the file priorities
    its selection asks for (unless it already has priorities for these files)."""
    files = torrent.files
    rec.name = torrent.name
    tiers = rec.tracker_tiers if rec.tracker_tiers is not None else torrent.trackers
    rec.trackers = tuple(dict.fromkeys(url for tier in tiers for url in tier))
    rec.file_paths = actual_paths([rec.renamed.get(i) or tuple(f.path) for i, f in enumerate(files)],
                                  set(rec.partial), rec.partial_suffix)
    rec.file_sizes = tuple(f.length for f in files)
    rec.pad_files = tuple(i for i, f in enumerate(files) if f.pad)
    learn_facts(rec, torrent)
    if rec.file_priorities is None or len(rec.file_priorities) != len(files):
        rec.file_priorities = selected_priorities(rec, torrent)
    rec.total_size = sum(f.length for f, p in zip(files, rec.file_priorities, strict=True) if p > 0)


def job_result(rec: JobRecord, end: float) -> JobResult:
    """The result of a job that ended at ``end``: totals, duration (creation to end) and average
    download rate (over the download: to its completion, or to the end if it never completed;
    the time spent seeding afterwards does not count)."""
    duration = max(0.0, end - rec.created_at)
    download_end = rec.completed_at if rec.completed_at is not None and rec.completed_at <= end else end
    downloading = max(0.0, download_end - rec.created_at)
    rate = rec.downloaded / downloading if downloading > 0 else 0.0
    return JobResult(downloaded=rec.downloaded, uploaded=rec.uploaded, duration=duration,
                     average_rate=rate, error=rec.error)


async def start_held(rec: JobRecord, paused: bool, start: Callable[[bool], Awaitable[Session]]) -> Session:
    """The session ``start(paused)`` adds for ``rec`` (an add, a restart, a recheck, a move),
    paused as ``paused`` says; a job that stops by itself (``stop_condition``) and is not paused
    has its session added paused and resumed to run until its check is over: it pauses itself
    then, none of its pieces asked for before the job stops."""
    hold = bool(rec.stop_condition) and not paused
    session = await start(paused or hold)
    if hold:
        await session.resume(pause_after_check=True)
    return session


def _kept_under(rec: JobRecord) -> tuple[tuple[int, tuple[str, ...]], ...]:
    """The files a session of ``rec`` keeps under another path than the torrent's: those renamed,
    and those under the incomplete files' suffix (``disk/partial.py``)."""
    if not rec.partial or rec.file_paths is None:
        return tuple((i, tuple(p)) for i, p in sorted(rec.renamed.items()))
    paths = rec.file_paths
    return tuple((i, paths[i]) for i in sorted({*rec.renamed, *rec.partial}) if i < len(paths))


def session_setup(rec: JobRecord) -> SessionSetup:
    """What a new session for ``rec`` is told before it starts (an add, a restart, a recheck, a move):
    the job's options, file priorities, renamed files, edited trackers and web seeds, and its totals
    (the job owns them; a session counts on from what it is given or what its resume data says, the more)."""
    o = rec.options
    return SessionSetup(
        download_limit=o.download_limit, upload_limit=o.upload_limit, max_peers=o.max_peers,
        file_priorities=None if rec.file_priorities is None else tuple(rec.file_priorities),
        sequential=o.sequential, first_last_piece=rec.features.first_last_piece,
        renamed_files=_kept_under(rec),
        trackers=None if rec.tracker_tiers is None else tuple(tuple(tier) for tier in rec.tracker_tiers),
        web_seeds=None if rec.web_seeds is None else tuple(rec.web_seeds),
        downloaded=rec.downloaded, uploaded=rec.uploaded, wasted=rec.wasted, corrupt=rec.corrupt,
        super_seeding=o.super_seeding,
        bandwidth_group=rec.bandwidth_group)
