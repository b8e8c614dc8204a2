"""Adding jobs: one torrent or a batch, from a .torrent, a magnet link or a URL; checked, the
job's record durable before anyone hears of it, one add in flight per info-hash (single flight).
"""

from __future__ import annotations

import builtins
import dataclasses
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.abc

from ...engine.addtorrent import (
    AddTorrent,
    AddTorrentError,
    MagnetLink,
    Parsed,
    TorrentUrl,
    over_the_limit,
    read_add_torrent,
    recorded_source,
    torrent_size,
)
from ...engine.grouped import Grouped
from ...engine.mutable import resolve_with
from ...engine.resolve import FETCH_TIMEOUT, resolve
from ...engine.together import at_once
from ...errors import NO_ROOM, MagnetError, SessionError, TorrentEngineError
from ...formats.magnet import Magnet, is_mutable_magnet, parse_mutable_magnet
from ...formats.metainfo import Torrent
from ...net.dht.bep46 import MutableTorrentError, TorrentVersion
from ...policy.picker import DEFAULT_PRIORITY
from ..disk.claims import claimed_paths
from ..disk.dedup import Deduplicator
from ..disk.incomplete import download_path_for
from ..disk.partial import partial_at_add
from ..disk.paths import Ground, GroundsSeen, existing_files, ground, missing_dirs
from ..exclusions import excluded_priorities
from ..model import (
    FINISHED_STATES,
    DuplicateJob,
    InvalidJobRequest,
    Job,
    JobAdded,
    JobConflict,
    JobError,
    JobFeatures,
    JobNotFound,
    JobOptions,
    JobState,
    LeaseNotFound,
    StateNotSaved,
    one_not_saved,
)
from ..organising.organise import Organiser
from ..queueing.dormant import wanted_files_there, wanted_there
from ..queueing.rounds import QueueRounds
from ..snapshot import learn_layout, session_setup, start_held
from ..store import JobRecord, not_saved
from ..trackers import Tiers, flat, with_more
from ..tuning.autorun import ProgramEvent
from ..validate import check_files, check_priorities
from .addoptions import AddOptions
from .cookies import UrlCookies
from .host import IntakeHost
from .metadata import MetadataFetches

log = logging.getLogger("torrent_engine.jobs.adding")

def _each(calls: list[Callable[[GroundsSeen], Any]]) -> list[Any]:
    """(In a worker thread.) Each call's result, or the exception it raised; the calls share
    what they found of the save paths (``GroundsSeen``)."""
    seen = GroundsSeen()
    out: list[Any] = []
    for call in calls:
        try:
            out.append(call(seen))
        except Exception as exc:
            out.append(exc)
    return out


# How many distinct options an adder keeps to share (see ``JobAdder._shared``).
SHARED_OPTIONS = 256

ID_BYTES = 8  # a job id: this many random bytes, in hex
IDS_DRAWN = 512  # job ids drawn from the system's random source at once (``RandomIds``)


class RandomIds:
    """New job ids (``ID_BYTES`` random bytes in hex, as ``secrets.token_hex`` makes them), drawn
    from ``os.urandom`` ``IDS_DRAWN`` at a time. Each ``os.urandom`` lets the GIL go for its
    system call, and a worker thread waiting for it (an add's writes) then holds the loop until
    it lets it go in turn: one draw an add was 1.5 % of the loop's samples in 30 000 seed-mode
    adds (bench/RESULTS.md, "Job ids drawn together")."""

    def __init__(self) -> None:
        self._drawn = b""
        self._at = 0

    def __call__(self) -> str:
        """A new id."""
        if self._at >= len(self._drawn):
            self._drawn, self._at = os.urandom(ID_BYTES * IDS_DRAWN), 0
        at = self._at
        self._at = at + ID_BYTES
        return self._drawn[at:at + ID_BYTES].hex()


class JobAdder:
    """Adds the jobs of ``run``: the organiser makes a new category or tag known and numbers
    the job; the queue may hold it back at once (a round of ``rounds``)."""

    def __init__(self, run: IntakeHost, rounds: QueueRounds, organiser: Organiser,
                 dedup: Deduplicator | None = None, cookies: UrlCookies | None = None,
                 metadata: MetadataFetches | None = None,
                 merge: Callable[[str, Tiers, Sequence[str]], Awaitable[int]] | None = None) -> None:
        self._reads: Grouped[Callable[[GroundsSeen], Any]] = Grouped(_each)
        self._saves: Grouped[tuple[JobRecord, Torrent]] = Grouped(self._save_starting)
        self.run = run
        self.dedup = dedup  # (v2 files already held, placed before the first check)
        self.rounds = rounds
        self.organiser = organiser
        self.cookies = cookies  # sent with the .torrent URLs fetched
        self.metadata = metadata  # (a look at a torrent's files, ended by its add)
        self.merge = merge  # (a torrent added again: its trackers, web seeds to the job's: merge_trackers)
        # the options of recent adds, each its own key: an add with the same options shares the
        # object (a batch's adds are alike: one object for the collector's sweeps to walk)
        self._options: dict[JobOptions, JobOptions] = {}
        self._ids = RandomIds()

    async def add(self, source: AddTorrent, options: AddOptions) -> tuple[Job, bool]:
        """Start a job (see ``JobService.add``); ``(job, True)``, or ``(existing job, False)``
        when one for the same info-hash is already active (concurrent adds of one torrent share
        one job and one start)."""
        rec, created = await self._add(source, self._resolved(options))
        return self.run.snapshot(rec), created

    def _resolved(self, o: AddOptions) -> AddOptions:
        """``o`` with what it leaves to the settings decided: paused or not (``add_paused``), first
        in the queue or last (``add_to_top_of_queue``)."""
        if o.paused is not None and o.queue_top is not None:
            return o
        s = self.run.settings
        return dataclasses.replace(o, paused=s.add_paused if o.paused is None else o.paused,
                                   queue_top=s.add_to_top_of_queue if o.queue_top is None else o.queue_top)

    async def add_version(self, link: str, version: TorrentVersion, options: AddOptions) -> tuple[Job, bool]:
        """Add the version ``version`` of the BEP 46 link ``link``, already resolved (a job that
        follows the link moves to a newer version: mutable.py)."""
        rec, created = await self._add(MagnetLink(link), self._resolved(options), version=version)
        return self.run.snapshot(rec), created

    async def _read(self, source: AddTorrent, version: TorrentVersion | None
                    ) -> tuple[AddTorrent, str | None, TorrentVersion | None]:
        """``source``, a URL fetched (the service's proxy and bound address), a BEP 46 link
        resolved over the DHT (unless ``version`` says already what it names): what the add
        reads, and for a BEP 46 link the link as recorded and the version."""
        if isinstance(source, TorrentUrl):
            return Parsed(await self.fetch_metainfo(source.url)), None, None
        if isinstance(source, MagnetLink) and is_mutable_magnet(source.uri):
            try:
                link = parse_mutable_magnet(source.uri)
                if version is None:
                    version = await resolve_with(self.run.manager.shared, link)
            except (MagnetError, MutableTorrentError) as exc:
                raise InvalidJobRequest(str(exc), "source") from exc
            return Parsed(link.magnet_for(version.info_hash)), link.to_uri(), version
        return source, None, None

    async def _add(self, source: AddTorrent, o: AddOptions, turn: _Turn | None = None, *,
                   version: TorrentVersion | None = None) -> tuple[JobRecord, bool]:
        """``add``'s work: the job's record (its snapshot is the caller's to take). ``turn``: its
        place in a batch, whose adds are numbered in the batch's order; ``version``: what a BEP 46
        ``source`` names, when known already."""
        try:
            return await self._add_in_turn(source, o, turn, version)
        finally:
            if turn is not None:
                turn.done()  # (refused, or shared with the add in flight: the next may go on)

    async def _add_in_turn(self, source: AddTorrent, o: AddOptions, turn: _Turn | None,
                           version: TorrentVersion | None = None) -> tuple[JobRecord, bool]:
        await self.run.require_running()
        features, download_path, seed_mode = o.features, o.download_path, o.seed_mode
        save_path = self.organiser.add_save_path(features, o.save_path)
        layout = features.content_layout if features is not None else "original"
        root = self.run.download_root
        request, link, version = await self._read(source, version)

        limit = self.run.settings.torrent_file_size_limit

        def read(seen: GroundsSeen) -> tuple[Torrent | Magnet, Ground]:  # (one worker-thread hop)
            try:
                refusal = over_the_limit(torrent_size(request), limit)
                if refusal is not None:
                    raise InvalidJobRequest(refusal, "source")
                parsed = read_add_torrent(request)
            except AddTorrentError as exc:
                raise InvalidJobRequest(str(exc), "source") from exc
            return parsed, ground(root, save_path, parsed, layout, seen)

        torrent, found = await self._reads.run(read)
        source_text = link if link is not None else recorded_source(request, torrent)
        save = found.save
        selected = check_files(o.files, torrent)
        priorities = _add_priorities(o, torrent)
        settings = self.run.settings
        if settings.excluded_file_names_enabled and selected is None and priorities is None \
                and isinstance(torrent, Torrent):  # (the files it names it does not download)
            excluded = excluded_priorities(torrent, settings.excluded_file_names)
            priorities = None if excluded is None else list(excluded)
        data: Path | None = None
        held: Ground | None = None  # (what its incomplete folder holds, when it downloads into one)
        if download_path or (download_path is None and self.run.settings.incomplete_dir_enabled):
            data, held = await anyio.to_thread.run_sync(lambda: _incomplete_ground(
                root, download_path_for(root, self.run.settings, download_path, save, torrent, selected,
                                        seed_mode=seed_mode), save, torrent))
        client = o.client
        if client is not None and client not in self.run.leases:
            raise LeaseNotFound(f"no open client lease {client!r}", "client")
        if turn is not None:  # (the reads of a batch end in any order; its numbers follow the batch)
            await turn.wait()
        info_hash = torrent.info_hash.hex()
        while True:
            pending = self.run.adding.get(info_hash)
            if pending is not None:
                await pending.wait()
                continue
            existing = self.run.jobs.get(self.run.jobs.active_id(info_hash))
            if existing is not None:
                _same_request(existing, save if save_path is not None else None, selected)
                if self.merge is not None and self.run.settings.merge_trackers:
                    tiers = torrent.trackers if isinstance(torrent, Torrent) else tuple(
                        (url,) for url in torrent.trackers)
                    try:
                        await self.merge(existing.id, tiers, torrent.web_seeds)
                    except (JobNotFound, JobConflict):  # (it ended meanwhile: nothing to merge into)
                        pass
                return existing, False
            break
        paths: _Paths | None = None
        if isinstance(torrent, Torrent):  # (refused before anything is written; taken in _create)
            paths = _Paths(_torrent_paths(data or save, torrent), self.run.claims.version)
            clash = self.run.overlap(f"torrent {torrent.name!r}", None, paths.paths)
            if clash is not None:
                raise clash
        if features is not None:
            await self.organiser.known(features)  # (its new category and tags become known)
        done = anyio.Event()
        self.run.adding[info_hash] = done  # (no look at its metadata starts from now on)
        try:
            if self.metadata is not None:  # (one under way ends: its session holds the info-hash,
                await self.metadata.end(info_hash)  # which the job's takes)
            rec = await self._create(torrent, source_text, found, selected, o, priorities, download_path=data,
                                     held=held, turn=turn, version=version, paths=paths)
        finally:
            del self.run.adding[info_hash]
            done.set()
        if client is not None and client not in self.run.leases and rec.state not in FINISHED_STATES:
            await self.run.client_gone(rec)  # it ended meanwhile
        self.run.run_program(ProgramEvent.ADDED, rec)
        if isinstance(torrent, Torrent):  # (a magnet's once its metadata comes: news.py)
            self.run.exported(ProgramEvent.ADDED, rec, torrent)
        if self.run.settings.queueing:
            await self.rounds.enforce()  # (the queue may hold it back at once)
        return rec, True

    async def add_many(self, sources: Sequence[AddTorrent],
                       options: AddOptions | None = None) -> builtins.list[tuple[Job, bool] | JobError]:
        """Add several torrents with the same options (a batch of a download client's add), at
        once rather than one after the other: each add's writes and checks overlap the others'
        waits. One entry per source, in order: what ``add`` returns, or the ``JobError`` that
        refused it (a ``StateNotSaved`` is raised: nothing more can be added then)."""
        added: list[tuple[JobRecord, bool] | JobError] = [JobConflict("not added")] * len(sources)
        o = self._resolved(options if options is not None else AddOptions())
        order = _BatchOrder(len(sources))

        async def one(i: int, source: AddTorrent) -> None:
            try:
                added[i] = await self._add(source, o, _Turn(order, i))
            except StateNotSaved:
                raise
            except JobError as exc:
                added[i] = exc

        with one_not_saved():  # (the batch's adds raise it together: said as one)
            await at_once([one(i, source) for i, source in enumerate(sources)])
        # the places the new jobs took as each joined the table, given in the batch's order
        new = [self.run.jobs.get(r[0].id) for r in added if isinstance(r, tuple) and r[1]]
        recs = [rec for rec in new if rec is not None and rec.state not in FINISHED_STATES]
        places = sorted(rec.queue_position for rec in recs)
        moved = [rec for rec, place in zip(recs, places, strict=True) if rec.queue_position != place]
        for rec, place in zip(recs, places, strict=True):
            rec.queue_position = place
        if moved:
            self.run.jobs.reordered()
            for rec in moved:
                await self.run.save(rec)
        # (as they are now: their places; one snapshot each)
        return [(self.run.snapshot(self.run.jobs.get(r[0].id) or r[0]), r[1]) if isinstance(r, tuple) else r
                for r in added]

    def _shared(self, options: JobOptions) -> JobOptions:
        """``options``, or the equal object an earlier add made (the table is let go once it
        holds ``SHARED_OPTIONS``: adds alike are what it is for)."""
        kept = self._options.get(options)
        if kept is None:
            if len(self._options) >= SHARED_OPTIONS:
                self._options.clear()
            kept = self._options[options] = options
        return kept

    async def _create(self, torrent: Torrent | Magnet, source_text: str, found: Ground,
                      selected: tuple[int, ...] | None, o: AddOptions, priorities: list[int] | None, *,
                      download_path: Path | None = None, held: Ground | None = None,
                      turn: _Turn | None = None, version: TorrentVersion | None = None,
                      paths: _Paths | None = None) -> JobRecord:
        """The job's record made, its files claimed, written and announced. ``found``: its save
        path and what is there; ``held``: its incomplete folder's (``download_path``), when it
        downloads into one. No wait between its turn's end and its claims: a batch's adds take
        them in the batch's order (of two that write one file, the first is added)."""
        now = self.run.clock()
        save = found.save
        paused, peers, features, seed_mode = bool(o.paused), o.peers, o.features, o.seed_mode  # (resolved)
        settings = self.run.settings
        stop = o.stop_condition if o.stop_condition is not None else settings.stop_condition
        if stop != "none" and isinstance(torrent, Torrent) and (stop == "metadata_received" or seed_mode):
            paused = True  # (met at its add: its metainfo is here; in seed mode nothing is checked)
        options = JobOptions(save_path=str(save), files=selected, sequential=o.sequential, paused=paused,
                             peers=peers, client=o.client, download_limit=o.download_limit,
                             upload_limit=o.upload_limit, seed_mode=seed_mode, max_peers=o.max_peers,
                             owner=o.owner,
                             download_path=None if download_path is None else str(download_path))
        options = self._shared(options)
        where = held if held is not None else found  # (where its files are written while it downloads)
        data = where.save  # (``options.data_path``)
        if isinstance(torrent, Torrent):
            name = torrent.name
        else:
            name = torrent.display_name or torrent.info_hash.hex()
        trackers = None if isinstance(torrent, Torrent) else tuple(dict.fromkeys(torrent.trackers))
        rec = JobRecord(id=self.run.jobs.new_id(self._ids),
                        info_hash=torrent.info_hash.hex(), name=name, source=source_text,
                        options=options, state=JobState.PAUSED if paused else JobState.QUEUED,
                        created_at=now, updated_at=now, features=features or JobFeatures(),
                        number=0, trackers=trackers,
                        file_priorities=None if priorities is None else tuple(priorities),
                        mutable_seq=None if version is None else version.seq)
        rec.number = self.organiser.take_number()  # (never handed out again)
        rec.stop_condition = "" if paused or stop == "none" else stop  # (met: JobLifecycle.stop_met)
        if turn is not None:
            turn.done()
        rec.created_dirs = tuple(where.created_dirs)
        if isinstance(torrent, Torrent):
            if not seed_mode:  # (its files not there are written under the suffix: disk/partial.py)
                rec.partial = partial_at_add(torrent, where.sizes, settings.partial_file_suffix)
                rec.partial_suffix = settings.partial_file_suffix if rec.partial else ""
            learn_layout(rec, torrent)
            rec.preexisting = tuple(where.preexisting)
        if settings.default_trackers_enabled and settings.default_trackers:
            _add_default_trackers(rec, torrent, settings.default_trackers)
        if isinstance(torrent, Torrent):  # (its files, taken as it joins the table: an add of
            # another torrent meanwhile may have taken some of them since ``add`` checked)
            if paths is None:
                paths = _Paths(_torrent_paths(data, torrent), -1)
            if paths.seen != self.run.claims.version:
                clash = self.run.overlap(f"torrent {torrent.name!r}", None, paths.paths)
                if clash is not None:
                    raise clash
            self.run.claims.claim(rec.id, paths.paths)
            if self.dedup is not None and not seed_mode:  # (its files taken: none written by another)
                try:
                    rec.dedup_bytes = await self.dedup.place(rec, torrent)
                except BaseException:
                    self.run.claims.release(rec.id)
                    raise
        # (last in the queue, taken as it joins the table: an add overlapping this one took the
        # same place when it was taken before the waits above)
        order_before = self.run.jobs.order_version
        if o.queue_top:  # (first: before every unfinished job's place, taken as it joins the table)
            first = min((r.queue_position for r in self.run.jobs.in_queue_order()), default=1)
            rec.queue_position = first - 1 if first != 1 else -1  # (0 is "no place yet")
            self.run.jobs.add(rec)
            self.run.jobs.reordered()
        else:
            rec.queue_position = self.run.queue.next_position()
            self.run.jobs.add(rec)
            self.run.queue.ranked_last(rec, order_before)
        self.run.marks.mark(rec)  # (listed from now on, before its job.added)
        self.run.busy.add(rec.id)  # its session's first events wait for job.added (then _sync catches up)
        self.run.starting[rec.id] = None  # (all but a magnet's metadata: see _on_engine_event)
        dormant = False  # (a seed added in seed mode: no session until a peer asks for it)
        pending = False  # (its data on disk: checked without a session first, checks.py)
        saved = False  # (its torrent and first resume data kept with its group's: _save_starting)
        try:
            try:
                if isinstance(torrent, Torrent):
                    may_sleep = self._may_sleep_at_add(rec)
                    may_check = not may_sleep and self._may_check_at_add(rec, o)
                    # (whether its files are all there, as the add's look found them; looked at
                    # again where the deduplication placed some since)
                    there = (may_sleep or may_check) and (
                        wanted_there(rec, where.sizes) if not rec.dedup_bytes
                        else await anyio.to_thread.run_sync(wanted_files_there, rec))
                    dormant, pending = there and may_sleep, there and may_check
                    if not there:
                        await self._saves.run((rec, torrent))
                        saved = True
                if not dormant and not pending:
                    manager = self.run.manager
                    session = await start_held(rec, self.run.starts_paused(rec), lambda paused: manager.add(
                        torrent, data, peers=peers, paused=paused, setup=session_setup(rec),
                        seed_mode=seed_mode, saved=saved))
                    self.run.stop_once_checked(rec, session)
            except BaseException as exc:
                self.run.queue.held.discard(rec.id)
                self.run.claims.release(rec.id)
                self.run.jobs.discard(rec)
                self.run.marks.removed(rec)  # (a list may have shown it meanwhile)
                if isinstance(exc, OSError) and exc.errno in NO_ROOM:  # (its metainfo: the state folder)
                    raise not_saved(exc, self.run.state_dir) from exc
                if isinstance(exc, (TorrentEngineError, OSError)):
                    raise InvalidJobRequest(f"cannot start: {exc}", "source") from exc
                raise
            if dormant:  # complete, as seed mode takes it: written and announced seeding
                rec.done_size = rec.total_size
                self.run.set_state(rec, JobState.SEEDING, told=False)
            elif pending:  # its data is hashed in its turn, with no session until then
                self.run.set_state(rec, JobState.CHECKING, told=False)
            # durable before anyone hears of it: when it cannot be, the add is undone (a dormant
            # or pending add is written once, in the state it is announced in, its torrent kept
            # in the same hop: the torrent alone, as its record says where its data is and that
            # it seeds in seed mode; a checked torrent's resume data is written by its check)
            kept = torrent if (dormant or pending) and isinstance(torrent, Torrent) else None
            await self.run.save(rec, strict=True, metainfo=kept)
        except StateNotSaved:
            if rec.id not in self.run.jobs:
                raise
            with anyio.CancelScope(shield=True):
                self.run.queue.held.discard(rec.id)
                try:  # (on the same full disk this may fail too: the undo goes on, the 507 stays)
                    if dormant or pending:
                        await anyio.to_thread.run_sync(self.run.manager.forget_saved, rec.info_hash)
                    else:
                        await self.run.manager.remove(rec.info_hash)
                except (TorrentEngineError, OSError) as exc:
                    log.warning("job %s (%s) not saved; its torrent not forgotten: %s", rec.id, rec.name, exc)
                await anyio.to_thread.run_sync(self.run.remove_files, rec)
                self.run.claims.release(rec.id)
                self.run.jobs.discard(rec)
                self.run.marks.removed(rec)
                self.run.writer.forget(rec.id)
            raise
        finally:
            self.run.busy.discard(rec.id)
            refusal = self.run.starting.pop(rec.id, None)
        self.run.events.publish(JobAdded(info_hash=rec.info_hash, job=self.run.snapshot(rec)))
        if dormant:  # it seeds from its record
            if self.dedup is not None and isinstance(torrent, Torrent):
                self.dedup.learn_added(rec, torrent)
            self.run.run_program(ProgramEvent.COMPLETED, rec)  # (complete from its add on)
            try:
                await self.run.seeds.add(rec)
            except SessionError:  # (the shared resources gone: the service stopped meanwhile)
                if self.run.running:
                    raise
                return rec  # (added, written: it seeds from its record at the next start)
            self.run.sleepers.wake(rec)  # (its first round judges its share limits, then it sleeps)
            return rec  # (written as it is: above)
        if pending:
            self.run.checks.add(rec)
            return rec
        if refusal is not None and self.run.tg is not None:  # its metadata came during the add and
            self.run.busy.add(rec.id)  # its selection names a file the torrent does not have
            self.run.tg.start_soon(self.run.end, rec, JobState.FAILED, refusal)
        self.run.sync(rec)
        # (saved above once the manager had the torrent, metainfo on disk: a crash before that
        # leaves a torrent without a job, which the next start stops; the add had not returned.
        # Not awaiting this save, and leaving what the session says to sync's own, cost the
        # 1 000 downloads more CPU and slower polls: bench/RESULTS.md, "An add's writes in its
        # group")
        await self.run.save(rec)
        return rec

    def _may_sleep_at_add(self, rec: JobRecord) -> bool:
        """Whether ``rec``, being added, may be a dormant seed from the start: added in seed mode
        (its data is there, its owner says: libtorrent's ``seed_mode``), not paused, given no peer
        to dial, saving where its files are (no incomplete folder), in a service whose state
        folder keeps its torrent, and as ``may_sleep`` would judge it once seeding (whether its
        files are there the add's look found: ``wanted_there``)."""
        o, manager = rec.options, self.run.manager
        return (o.seed_mode and not o.paused and not o.peers and o.download_path is None
                and rec.total_size > 0 and rec.file_paths is not None and manager.config.seed
                and manager.keeps_saved and not self.run.queue.judges(rec))

    def _may_check_at_add(self, rec: JobRecord, o: AddOptions) -> bool:
        """Whether ``rec``, being added, may have its data checked without a session first
        (checks.py): as ``_may_sleep_at_add`` but not in seed mode, every file wanted."""
        return (o.files is None and not o.file_priorities and not o.sequential
                and self.run.may_check_alone(rec))

    def _save_starting(self, adds: list[tuple[JobRecord, Torrent]]) -> list[Any]:
        """(In a worker thread: a group of adds of torrents whose sessions start now.) Each
        torrent and the first resume data its session's start would write (``TorrentManager.add``
        with ``saved``: it says what is missing, or downloads), kept together: one sync of the
        state folder for the group, where each add's session start wrote twice in turn before; a
        write that fails is every one's exception."""
        try:
            self.run.manager.save_torrents([], starting=[
                (torrent, Path(rec.options.data_path), rec.options.seed_mode) for rec, torrent in adds])
        except OSError as exc:
            return [exc] * len(adds)
        return [None] * len(adds)

    async def fetch_metainfo(self, url: str) -> Torrent:
        """The .torrent at an http(s) ``url`` (``InvalidJobRequest`` saying why it could not be
        had), fetched by the one resolver with the service's proxy, bound address and the cookies
        given for its domain and path."""
        proxy = self.run.manager.config.proxy  # (straight under "torrents only", unless proxy only)
        if proxy is not None and self.run.settings.proxy_torrents_only and not proxy.only:
            proxy = None
        try:
            torrent = await resolve(TorrentUrl(url), proxy=proxy, bind=self.run.manager.config.netbind(),
                                    max_size=self.run.settings.torrent_file_size_limit, timeout=FETCH_TIMEOUT,
                                    cookies=self.cookies.header_for if self.cookies is not None else None)
        except AddTorrentError as exc:
            raise InvalidJobRequest(str(exc), "source") from exc
        assert isinstance(torrent, Torrent)  # (a URL is a .torrent's)
        return torrent


def _add_priorities(o: AddOptions, torrent: Torrent | Magnet) -> list[int] | None:
    """The file priorities a job of ``torrent`` starts with when the add gives some (None: its
    selection's, made as its layout is learnt); ``InvalidJobRequest`` for a file out of range."""
    if not o.file_priorities:
        return None
    if not isinstance(torrent, Torrent):
        raise InvalidJobRequest("need the metainfo (not a magnet link)", "file_priorities")
    files, sel = torrent.files, o.files
    current = [0 if f.pad else (DEFAULT_PRIORITY if sel is None or i in sel else 0)
               for i, f in enumerate(files)]
    return check_priorities(dict(o.file_priorities), current, {i for i, f in enumerate(files) if f.pad})


class _BatchOrder:
    """The turns of a batch's adds at taking their job numbers: the add at place ``i`` takes its
    number once every add before it has taken its own or ended (refused, or shared with an add
    in flight), so the numbers follow the batch whichever reads end first."""

    def __init__(self, size: int) -> None:
        self._done = [False] * size
        self._next = 0  # the first place whose add has not taken its number
        # the turns waited for (made by a wait: a batch's reads end in one group, mostly in order)
        self._turns: dict[int, anyio.Event] = {}

    async def wait(self, place: int) -> None:
        if place > self._next:
            turn = self._turns.get(place)
            if turn is None:
                turn = self._turns[place] = anyio.Event()
            await turn.wait()

    def done(self, place: int) -> None:
        if self._done[place]:
            return
        self._done[place] = True
        while self._next < len(self._done) and self._done[self._next]:
            self._next += 1
        turn = self._turns.get(self._next)
        if turn is not None:
            turn.set()


class _Turn:
    """One add's place in a batch (see ``_BatchOrder``)."""

    def __init__(self, order: _BatchOrder, place: int) -> None:
        self._order = order
        self._place = place

    async def wait(self) -> None:
        await self._order.wait(self._place)

    def done(self) -> None:
        self._order.done(self._place)


def _add_default_trackers(rec: JobRecord, torrent: Torrent | Magnet, more: Tiers) -> None:
    """The job of a new torrent announces to the default trackers ``more`` after its own (kept
    as its trackers, as qBittorrent adds them); a private torrent's never (BEP 27: its own
    trackers alone). A magnet's are added too: whether it is private is not known at its add."""
    if isinstance(torrent, Torrent) and torrent.private:
        return
    own = (torrent.trackers if isinstance(torrent, Torrent)
           else tuple((u,) for u in dict.fromkeys(torrent.trackers)))
    tiers = with_more(own, more)
    if tiers is not own:
        rec.tracker_tiers = tiers
        rec.trackers = tuple(flat(tiers))


def _same_request(existing: JobRecord, save: Path | None, selected: tuple[int, ...] | None) -> None:
    """``DuplicateJob`` when an add of a torrent that already has an active job asks for another
    save path or another file selection than that job has (given, they must not be dropped
    silently); nothing when it asks for the same or leaves them out."""
    options = existing.options
    if save is not None and str(save) != options.save_path:
        raise DuplicateJob(f"job {existing.id} of this torrent is already active, saving in "
                           f"{options.save_path}: cancel it first to save elsewhere", "save_path",
                           existing.id)
    if selected is not None and selected != options.files:
        raise DuplicateJob(f"job {existing.id} of this torrent is already active with other files "
                           "selected: change them with PATCH file_priorities", "files", existing.id)


def _incomplete_ground(root: Path, data: Path | None, save: Path, torrent: Torrent | Magnet
                       ) -> tuple[Path | None, Ground | None]:
    """(Blocking.) ``data``, the folder a job saving into ``save`` downloads into (None: none),
    and when it is another what is there: the folders it makes, its files there already."""
    if data is None or data == save:
        return data, None
    stored = ([f.path for f in torrent.files if not f.pad and "l" not in f.attr]
              if isinstance(torrent, Torrent) else [])
    return data, Ground(data, missing_dirs(root, data), list(existing_files(data, stored)))


@dataclass(frozen=True, slots=True)
class _Paths:
    """The paths an added torrent's job writes, and the claims' ``version`` when they were found
    free (-1: not looked at)."""

    paths: builtins.list[str]
    seen: int


def _torrent_paths(save: Path, torrent: Torrent) -> builtins.list[str]:
    """The absolute paths a job of ``torrent`` saving into ``save`` writes."""
    files = torrent.files
    return claimed_paths(save, [f.path for f in files], [i for i, f in enumerate(files) if f.pad])
