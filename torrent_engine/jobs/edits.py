"""What download clients read and edit of one job besides its options: its metainfo and pieces,
its files' names (``rename_path``), its trackers, its web seeds, a re-announce, peers to dial.
"""

from __future__ import annotations

import builtins
import dataclasses
import logging
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path

import anyio

from ..errors import TorrentEngineError
from ..formats.magnet import parse_magnet
from ..formats.metainfo import Torrent
from ..net.webseed import WebSeedState
from ..session.webseeds import usable_urls
from ..storage.paths import real_path
from ..storage.rename import move_files
from .disk.claims import claimed_paths
from .disk.renames import check_path, plan_rename
from .lifecycle import JobLifecycle
from .model import FINISHED_STATES, InvalidJobRequest, Job, JobConflict, JobNotFound, TorrentFacts
from .snapshot import actual_paths, knows_pieces, learn_facts, shown_paths
from .store import JobRecord
from .trackers import Tiers, check_tiers, flat, usable, usable_tiers, with_more
from .validate import check_peers
from .webseeds import check_web_seed, check_web_seeds

log = logging.getLogger(__name__)


class JobEdits:
    """Reads and edits of the jobs of ``run`` (see the module's docstring)."""

    def __init__(self, run: JobLifecycle) -> None:
        self.run = run

    def metainfo(self, job_id: str) -> Torrent | None:
        """The job's metainfo, once known (None before a magnet's metadata, or after the job ended)."""
        rec = self.run.jobs.get(job_id)
        if rec is None:
            raise JobNotFound(f"no job {job_id!r}", "id")
        session = self.run.session_of(rec)
        if session is None and self.run.dormant(rec):
            return self.run.saved_metainfo(rec)
        return session.torrent if session is not None and session.has_metadata else None

    def file_on_disk(self, job_id: str, index: int) -> Path | None:
        """Where file ``index`` of the job is on disk, as its record keeps it (``file_paths``: a
        file not complete under the suffix it carries, disk/partial.py, which its views leave
        out); None when it has no such file (or no metadata yet). ``JobNotFound``."""
        rec = self.run.jobs.get(job_id)
        if rec is None:
            raise JobNotFound(f"no job {job_id!r}", "id")
        paths = rec.file_paths
        if paths is None or not 0 <= index < len(paths):
            return None
        return Path(rec.options.data_path).joinpath(*paths[index])

    def torrent_facts(self, job_id: str) -> TorrentFacts | None:
        """What a list shows of the job's torrent (``TorrentFacts``), from its running session
        or its record, never read from disk for a list (None before a magnet's metadata). A
        record written before it kept them reads the saved metainfo once (not kept: a dormant
        seed's metainfo stays on disk), and keeps what it says."""
        rec = self.run.jobs.get(job_id)
        if rec is None:
            raise JobNotFound(f"no job {job_id!r}", "id")
        session = self.run.session_of(rec)
        if session is not None and session.has_metadata:
            facts = TorrentFacts.of(session.torrent)
            if rec.tracker_tiers is None:
                return facts
            return dataclasses.replace(facts, trackers=tuple(tuple(tier) for tier in rec.tracker_tiers))
        if rec.file_sizes is None:
            return None
        if rec.torrent_length is None or rec.private is None or rec.piece_length is None:
            try:
                torrent = self.run.manager.saved_metainfo(rec.info_hash)
            except (TorrentEngineError, OSError):
                torrent = None
            if torrent is None:
                return None
            learn_facts(rec, torrent)
        tiers = rec.tracker_tiers if rec.tracker_tiers is not None else [[url] for url in rec.trackers or ()]
        length, private = rec.torrent_length, rec.private
        if length is None or private is None:  # (learnt just above)
            return None
        return TorrentFacts(length, private, tuple(tuple(tier) for tier in tiers),
                            rec.piece_length or 0, rec.created_by or "",
                            rec.creation_date if rec.creation_date is not None else -1,
                            rec.torrent_comment or "", rec.info_hash_v2 or "")

    def web_seed_states(self, job_id: str) -> builtins.list[WebSeedState]:
        """The job's BEP 19 web seeds as its live session sees them ([] without a session)."""
        rec = self.run.jobs.get(job_id)
        if rec is None:
            raise JobNotFound(f"no job {job_id!r}", "id")
        session = self.run.session_of(rec)
        return [] if session is None else session.web_seeds

    def piece_states(self, job_id: str) -> builtins.list[int] | None:
        """Per piece: 0 = missing, 1 = being downloaded, 2 = verified (None without the metainfo)."""
        rec = self.run.jobs.get(job_id)
        if rec is None:
            raise JobNotFound(f"no job {job_id!r}", "id")
        session = self.run.session_of(rec)
        reading = session is not None and session.has_metadata and not knows_pieces(session)
        if (session is None and self.run.dormant(rec)) or reading:
            # (a dormant seed, or a session still reading its resume data: what that data says)
            have = self.run.saved_pieces(rec, session.torrent if session is not None else None)
            if have is not None or not reading:
                return None if have is None else [2 if i in have else 0 for i in range(have.num_pieces)]
        if session is None or not session.has_metadata:
            return None
        picker = session.picker
        states = [2 if i in picker.have else 0 for i in range(session.torrent.num_pieces)]
        for i in picker.downloading():
            if states[i] == 0:
                states[i] = 1
        return states

    def piece_availability(self, job_id: str, states: builtins.list[int] | None = None) -> builtins.list[int]:
        """Per piece, how many connected peers have it, from the running session's picker; as
        libtorrent answers (``torrent::piece_availability``): empty without the metainfo or once
        every piece is had (a seed keeps no picker), 0 each for a job not running (no peers).
        ``states``: its ``piece_states``, when made already."""
        if states is None:
            states = self.piece_states(job_id)  # (JobNotFound for an unknown job)
        if states is None or all(s == 2 for s in states):
            return []
        rec = self.run.jobs.get(job_id)
        session = self.run.session_of(rec) if rec is not None else None
        if session is None or not session.has_metadata:
            return [0] * len(states)
        picker = session.picker
        return [picker.availability(i) for i in range(session.torrent.num_pieces)]

    async def reannounce(self, job_id: str, urls: Collection[str] | None = None) -> None:
        """Announce the job to its trackers now (a job without trackers: nothing happens);
        ``urls``: to these of its trackers alone (any other URL is passed over)."""
        await self.run.check_running()
        rec = self.run.unfinished(job_id)
        session = self.run.session_of(rec)
        tracker = session.announcer.tracker if session is not None else None
        if tracker is not None:
            tracker.reannounce(urls)
        elif session is None:
            self.run.seeds.reannounce(rec, urls)  # (a dormant seed: its round comes now)

    def announcing(self, job_id: str) -> frozenset[str]:
        """The job's trackers an announce waits for now (its session's, or as a dormant seed its
        round's); ``JobNotFound`` for an unknown job."""
        rec = self.run.jobs.get(job_id)
        if rec is None:
            raise JobNotFound(f"no job {job_id!r}", "id")
        session = self.run.session_of(rec)
        if session is None:
            return self.run.seeds.announcing(rec)
        tracker = session.announcer.tracker
        return tracker.announcing() if tracker is not None else frozenset()

    async def rename_path(self, job_id: str, old_path: str, new_path: str, *, folder: bool | None = None,
                          fields: tuple[str, str] = ("old_path", "new_path")) -> Job:
        """``JobService.rename_path``: the file or folder ``old_path`` names moved to ``new_path``
        on disk and in the record, or nothing changed and an error names the input."""
        await self.run.check_running()
        old = check_path(old_path, fields[0])
        new = check_path(new_path, fields[1])
        async with self.run.lock(job_id):
            rec = self.run.unfinished(job_id)
            if rec.file_paths is None:
                raise JobConflict("the job's files are not known yet (its metadata has not come)", fields[0])
            shown = shown_paths(rec) or rec.file_paths  # (named as its views name them: disk/partial.py)
            moves = plan_rename(shown, rec.pad_files, old, new, folder=folder, fields=fields)
            if not moves:
                return self.run.snapshot(rec)
            root = rec.options.data_path  # (where its data is: its incomplete folder while it downloads)
            overlap = self.run.claims.overlap(rec.id, claimed_paths(root, list(moves.values())))
            if overlap is not None:
                raise JobConflict(f"{overlap.path} is written by job {overlap.other}", fields[1])
            session = self.run.session_of(rec)
            if (session is None and not self.run.dormant(rec)) or rec.id in self.run.busy:
                raise JobConflict("cannot rename now: the job is being restarted or ended")
            renamed = {**rec.renamed, **{i: tuple(p) for i, p in moves.items()}}
            # (where each goes on disk: an incomplete file keeps its suffix)
            moved = actual_paths([moves.get(i, p) for i, p in enumerate(shown)], rec.partial,
                                 rec.partial_suffix)
            actual = {i: moved[i] for i in moves}
            paths = tuple(actual.get(i, p) for i, p in enumerate(rec.file_paths))
            # (a file that was on disk before the job stays the user's under its new name: a
            # cancel that deletes the job's files keeps it)
            now_at = {"/".join(shown[i]): "/".join(p) for i, p in moves.items()}
            pre = None if rec.preexisting is None else tuple(now_at.get(p, p) for p in rec.preexisting)
            now = self.run.clock()
            # durable before a file moves (``StateNotSaved``, nothing moved, when it cannot be)
            content = dataclasses.replace(rec, renamed=renamed, file_paths=paths, preexisting=pre,
                                          updated_at=now)
            await self.run.save(rec, content, strict=True)
            try:
                if session is not None:
                    await session.rename_files(actual)
                else:  # (dormant: no session, its files closed)
                    real = await anyio.to_thread.run_sync(real_path, root)
                    await anyio.to_thread.run_sync(move_files, real, [
                        (real.joinpath(*rec.file_paths[i]), real.joinpath(*p)) for i, p in actual.items()])
            except (TorrentEngineError, OSError) as exc:
                await self.run.save(rec)  # (as it was)
                raise JobConflict(f"cannot rename: {exc}", fields[1]) from exc
            rec.renamed, rec.file_paths, rec.preexisting, rec.updated_at = renamed, paths, pre, now
            self.run.claim(rec)
            self.run.sleepers.unview(rec)
            await self.run.save(rec)
        self.run.publish_updated(rec)
        return self.run.snapshot(rec)

    def tracker_tiers(self, job_id: str) -> Tiers:
        """The job's trackers, BEP 12 tiers of announce URLs: as edited, else the torrent's (or
        its magnet's)."""
        rec = self.run.jobs.get(job_id)
        if rec is None:
            raise JobNotFound(f"no job {job_id!r}", "id")
        if rec.tracker_tiers is not None:
            return tuple(tuple(tier) for tier in rec.tracker_tiers)
        session = self.run.session_of(rec)
        if session is not None:
            return session.announcer.tiers()
        torrent = self.run.saved_metainfo(rec) if self.run.dormant(rec) else None
        if torrent is not None:
            return torrent.trackers
        return tuple((url,) for url in rec.trackers or ())

    async def set_trackers(self, job_id: str, tiers: Iterable[Iterable[str]], field: str = "trackers") -> Job:
        """Announce the job to these tracker tiers from now on (``tracker_tiers``, edited): a
        tracker added is announced to at once, one removed no more; kept across restarts. Every
        URL is checked first (``InvalidJobRequest`` naming ``field``: nothing changes then)."""
        await self.run.check_running()
        checked = check_tiers(tiers, field)
        async with self.run.lock(job_id):
            rec = self.run.unfinished(job_id)
            lists = tuple(tuple(tier) for tier in checked)
            urls = tuple(flat(checked))
            now = self.run.clock()
            content = dataclasses.replace(rec, tracker_tiers=lists, trackers=urls, updated_at=now)
            await self.run.save(rec, content, strict=True)
            rec.tracker_tiers, rec.trackers, rec.updated_at = lists, urls, now
            heard = self.run.tracker_news.get(rec.id)
            if heard is not None:  # (a removed tracker is no longer shown with what it said last)
                for url in [u for u in heard if u not in urls]:
                    del heard[url]
            session = self.run.session_of(rec)
            if session is not None:
                session.set_trackers(checked)
            else:
                self.run.seeds.reannounce(rec)  # (a dormant seed: a tracker added hears of it at once)
            self.run.sleepers.unview(rec)
            await self.run.save(rec)
        self.run.publish_updated(rec)
        return self.run.snapshot(rec)

    async def merge_trackers(self, job_id: str, tiers: Tiers, web_seeds: Sequence[str] = ()) -> int:
        """A torrent the job runs was added again (qBittorrent's "merge trackers to existing
        torrent"): the trackers of ``tiers`` it does not announce to become tiers of its own after
        its own, in their order, and the ``web_seeds`` it does not fetch from join its own; none
        for a private torrent (BEP 27: its trackers are its own), a finished job or a URL no
        tracker (web seed) has. How many were added."""
        rec = self.run.jobs.get(job_id)
        if rec is None or rec.state in FINISHED_STATES or self._private(rec):
            return 0
        seeds = self.web_seeds(job_id)
        new_seeds = [url for url in dict.fromkeys(usable(web_seeds, check_web_seed)) if url not in seeds]
        now = self.tracker_tiers(job_id)
        merged = with_more(now, usable_tiers(tiers))  # (as the default trackers join a torrent's own)
        try:
            if new_seeds:
                await self.set_web_seeds(job_id, [*seeds, *new_seeds])
            if merged is not now:
                await self.set_trackers(job_id, merged)
        except InvalidJobRequest as exc:  # (past the most a job may have: not merged, not a failed add)
            log.info("job %s: what a torrent added again brought is not merged: %s", job_id, exc)
            return 0
        return len(flat(merged)) - len(flat(now)) + len(new_seeds)

    def _private(self, rec: JobRecord) -> bool:
        """Whether the job's torrent is private (BEP 27), as far as its metainfo is known."""
        session = self.run.session_of(rec)
        if session is not None and session.has_metadata:
            return session.torrent.private
        torrent = self.run.saved_metainfo(rec) if self.run.dormant(rec) else None
        return torrent is not None and torrent.private

    def web_seeds(self, job_id: str) -> builtins.list[str]:
        """The job's BEP 19 web seed URLs: as edited, else the torrent's url-list (or its
        magnet's ``ws=``)."""
        rec = self.run.jobs.get(job_id)
        if rec is None:
            raise JobNotFound(f"no job {job_id!r}", "id")
        if rec.web_seeds is not None:
            return list(rec.web_seeds)
        session = self.run.session_of(rec)
        if session is not None:
            return session.web_seed_urls
        torrent = self.run.saved_metainfo(rec) if self.run.dormant(rec) else None
        if torrent is not None:
            return usable_urls(torrent.web_seeds)
        if rec.source.startswith("magnet:"):
            try:
                return usable_urls(parse_magnet(rec.source).web_seeds)
            except TorrentEngineError:
                return []
        return []

    async def set_web_seeds(self, job_id: str, urls: Iterable[str], field: str = "web_seeds") -> Job:
        """Fetch the job's pieces from these BEP 19 web seeds from now on (``web_seeds``,
        edited): one added is asked at once while the job downloads, one removed no more (its
        requests given back); kept across restarts. Every URL is checked first
        (``InvalidJobRequest`` naming ``field`` and the URL: nothing changes then)."""
        await self.run.check_running()
        checked = check_web_seeds(urls, field)
        async with self.run.lock(job_id):
            rec = self.run.unfinished(job_id)
            now = self.run.clock()
            content = dataclasses.replace(rec, web_seeds=tuple(checked), updated_at=now)
            await self.run.save(rec, content, strict=True)
            rec.web_seeds, rec.updated_at = content.web_seeds, now
            session = self.run.session_of(rec)
            if session is not None:
                session.set_web_seeds(checked)
            self.run.sleepers.unview(rec)
            await self.run.save(rec)
        self.run.publish_updated(rec)
        return self.run.snapshot(rec)

    async def add_peers(self, job_id: str, peers: Iterable[tuple[str, int]]) -> None:
        """Dial these peers for the job (``(host, port)`` pairs, checked)."""
        await self.run.check_running()
        checked = check_peers(list(peers))
        async with self.run.lock(job_id):
            rec = self.run.unfinished(job_id)
            session = self.run.session_of(rec)
            if session is None and self.run.dormant(rec):
                session = await self.run.start_dormant(rec)
            if session is None:
                raise JobConflict("cannot add peers now: the job is being restarted or ended")
            session.add_peers(checked)
