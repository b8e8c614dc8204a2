"""What download clients organise jobs by: categories (each with its save path), tags, the job
numbers, and each job's features (share limits, force-start, first/last-piece priority, a
name); the catalogue of categories and tags is ``categories.json``, the rest the job records.
"""

from __future__ import annotations

import builtins
import dataclasses
import logging
from collections.abc import Callable, Iterable
from pathlib import Path

import anyio

from ..disk.paths import confine
from ..model import InvalidJobRequest, Job, JobConflict, JobFeatures, JobNotFound
from ..queueing.rounds import QueueRounds
from ..store import JobRecord, not_saved
from ..validate import check_category, check_tags
from .categories import Catalogue, Category
from .features import features_from
from .host import OrganisingHost

log = logging.getLogger("torrent_engine.jobs.organise")


class Organiser:
    """Categories, tags, numbers and features of the jobs of ``run`` (see the module's docstring);
    a feature changed is judged by a round of ``rounds`` (force-start, share limits)."""

    def __init__(self, run: OrganisingHost, rounds: QueueRounds, state_dir: Path | None) -> None:
        self.run = run
        self.rounds = rounds
        self.catalogue = Catalogue(state_dir)
        self._last_number = 0  # the highest job number handed out (the catalogue's may be older)

    async def load(self) -> None:
        """Read the catalogue, and number the records that have no number (older ones)."""
        await anyio.to_thread.run_sync(self.catalogue.load)
        jobs = self.run.jobs
        numbered = max(self.catalogue.last_number, max((r.number for r in jobs), default=0))
        for rec in sorted(jobs, key=lambda r: r.created_at):
            if rec.number <= 0:
                numbered += 1
                rec.number = numbered
        self.catalogue.last_number = self._last_number = numbered

    def by_number(self, number: int) -> Job:
        """The job whose ``number`` this is; ``JobNotFound`` if none."""
        for rec in self.run.jobs:
            if rec.number == number:
                return self.run.snapshot(rec)
        raise JobNotFound(f"no job number {number}", "id")

    def take_number(self) -> int:
        """A job number never handed out before (not even to a job since pruned from the
        history): one past the highest given. It is kept in the job's record; the catalogue
        keeps the highest given only once a record leaves the store (``_keep_numbers``), so an
        add writes no catalogue."""
        self._last_number += 1
        return self._last_number

    async def keep_numbers(self) -> None:
        """Before a record leaves the store: the catalogue keeps the highest number handed out
        (a start numbers on from it and from the records' numbers)."""
        if self._last_number > self.catalogue.last_number:
            before = self.catalogue.snapshot()
            self.catalogue.last_number = self._last_number
            await self._save_catalogue(before)

    def categories(self) -> builtins.list[Category]:
        """Every category, by name."""
        return sorted(self.catalogue.categories.values(), key=lambda c: c.name)

    async def _save_catalogue(self, before: tuple[dict[str, Category], set[str], int]) -> None:
        """Write the catalogue; when it cannot be, it is put back as it was (``before``, its
        ``snapshot``) and the change refused (``StateNotSaved``)."""
        data = self.catalogue.encode()
        try:
            await anyio.to_thread.run_sync(self.catalogue.write, data)
        except OSError as exc:
            self.catalogue.restore(before)
            raise not_saved(exc, self.run.state_dir) from exc

    async def create_category(self, name: str, save_path: str = "") -> Category:
        """A new category saving into ``save_path`` (inside the download root; "" = the root)."""
        await self.run.started()
        name = check_category(name)
        path = await self._category_save_path(save_path)
        before = self.catalogue.snapshot()
        cat = self.catalogue.create(name, path)
        await self._save_catalogue(before)
        return cat

    async def edit_category(self, name: str, save_path: str) -> Category:
        """Change a category's save path (jobs already added stay where they are)."""
        await self.run.started()
        path = await self._category_save_path(save_path)
        before = self.catalogue.snapshot()
        cat = self.catalogue.edit(check_category(name), path)
        await self._save_catalogue(before)
        return cat

    async def _category_save_path(self, save_path: str) -> str:
        if not isinstance(save_path, str):
            raise InvalidJobRequest("must be a string", "save_path")
        if save_path == "":
            return ""
        return str(await anyio.to_thread.run_sync(confine, self.run.download_root, save_path))

    async def remove_categories(self, names: Iterable[str]) -> builtins.list[str]:
        """Forget categories (and their subcategories); their jobs are left without one."""
        await self.run.started()
        before = self.catalogue.snapshot()
        gone = self.catalogue.remove([check_category(n) for n in names])
        await self._save_catalogue(before)
        await self._each([rec for rec in self.run.jobs if rec.features.category in gone],
                         lambda features: dataclasses.replace(features, category=""))
        return gone

    def tags(self) -> builtins.list[str]:
        """Every known tag, sorted."""
        return sorted(self.catalogue.tags)

    async def create_tags(self, tags: Iterable[str]) -> builtins.list[str]:
        """Make tags known (without giving them to a job)."""
        await self.run.started()
        new = check_tags(tags)
        before = self.catalogue.snapshot()
        self.catalogue.tags.update(new)
        await self._save_catalogue(before)
        return list(new)

    async def delete_tags(self, tags: Iterable[str]) -> None:
        """Forget tags, and take them off every job."""
        await self.run.started()
        gone = set(check_tags(tags))
        before = self.catalogue.snapshot()
        self.catalogue.tags.difference_update(gone)
        await self._save_catalogue(before)
        await self._each([rec for rec in self.run.jobs if gone & set(rec.features.tags)],
                         lambda features: dataclasses.replace(
                             features, tags=tuple(t for t in features.tags if t not in gone)))

    async def _each(self, recs: builtins.list[JobRecord],
                    edit: Callable[[JobFeatures], JobFeatures]) -> None:
        """The features of ``recs`` (finished ones too: a category or tag forgotten) edited and
        written, many at a time (``QueueRounds.each``: their records in shared transactions)."""
        by_id = {rec.id: rec for rec in recs}

        async def one(job_id: str) -> None:
            rec = by_id[job_id]
            rec.features = edit(rec.features)
            self.run.finished_jobs.pop(rec.id, None)  # (a finished job's view is built once)
            await self.run.save(rec)
            self.run.publish_updated(rec)

        await self.rounds.every(by_id, one)

    async def known(self, features: JobFeatures) -> None:
        """A job's category and tags become known (as clients expect when adding with new ones)."""
        changed = False
        before = self.catalogue.snapshot()
        if features.category and features.category not in self.catalogue.categories:
            self.catalogue.create(features.category, "")
            changed = True
        if not set(features.tags) <= self.catalogue.tags:
            self.catalogue.tags.update(features.tags)
            changed = True
        if changed:
            await self._save_catalogue(before)

    async def set_features(self, job_ids: Iterable[str], **changes: object) -> builtins.list[Job]:
        """Change the features of unfinished jobs: ``category`` (must exist), ``tags`` (replaces
        them), ``ratio_limit``, ``seeding_time_limit``, ``idle_seeding_limit`` (None = default, -1 = none),
        ``force_start``, ``first_last_piece``, ``rename``. Every job is checked first."""
        await self.run.check_running()
        ids = list(dict.fromkeys(job_ids))
        recs = [self.run.unfinished(i) for i in ids]
        if "category" in changes:
            name = check_category(changes["category"])
            if name and name not in self.catalogue.categories:
                raise JobConflict(f"no category {name!r} (create it first)", "category")
        new = [features_from(changes, rec.features) for rec in recs]
        if any(n.content_layout != rec.features.content_layout for n, rec in zip(new, recs, strict=True)):
            raise JobConflict("the content layout is chosen when the job is added (move it with "
                              "set_location)", "content_layout")
        changed = {rec.id: (rec, features) for rec, features in zip(recs, new, strict=True)}
        await self._set_features_of(changed, wake=True)
        return [self.run.snapshot(r) for r in recs]

    async def add_tags(self, job_ids: Iterable[str], tags: Iterable[str]) -> builtins.list[Job]:
        """Give tags to jobs (unknown tags become known)."""
        await self.run.check_running()
        extra = check_tags(tags)
        recs = [self.run.unfinished(i) for i in dict.fromkeys(job_ids)]
        await self._set_features_of({rec.id: (rec, dataclasses.replace(
            rec.features, tags=tuple(sorted({*rec.features.tags, *extra})))) for rec in recs})
        return [self.run.snapshot(r) for r in recs]

    async def remove_tags(self, job_ids: Iterable[str],
                          tags: Iterable[str] | None = None) -> builtins.list[Job]:
        """Take tags (all of them when ``tags`` is None) off jobs."""
        await self.run.check_running()
        gone = set(check_tags(tags)) if tags is not None else None
        recs = [self.run.unfinished(i) for i in dict.fromkeys(job_ids)]
        await self._set_features_of({rec.id: (rec, dataclasses.replace(
            rec.features, tags=() if gone is None else tuple(t for t in rec.features.tags if t not in gone)))
            for rec in recs})
        return [self.run.snapshot(r) for r in recs]

    async def _set_features_of(self, changes: dict[str, tuple[JobRecord, JobFeatures]], *,
                               wake: bool = False) -> None:
        """Each job's new features (by its id: its record and them) made, many at a time
        (``QueueRounds.each``: their records in shared transactions, one round of the queue
        after all); the new categories and tags known first, once. ``wake``: each job's share
        limits and force-start judged again. The first error of a job is raised once the
        others are changed (a ``StateNotSaved`` stops the rest)."""
        if not changes:
            return
        tags = {t for _, features in changes.values() for t in features.tags}
        categories = {features.category for _, features in changes.values() if features.category}
        for category in categories or {""}:  # (the catalogue written once, not by each job's change)
            await self.known(JobFeatures(category=category, tags=tuple(sorted(tags))))

        async def one(job_id: str) -> None:
            rec, features = changes[job_id]
            await self._set_job_features(rec, features)
            if wake:
                self.run.sleepers.wake(rec)  # (its share limits and force-start: judged again)

        await self.rounds.every(changes, one)

    async def _set_job_features(self, rec: JobRecord, features: JobFeatures) -> None:
        async with self.run.lock(rec.id):
            # durable before it is made (``StateNotSaved``, nothing changed, when it cannot be)
            now = self.run.clock()
            await self.run.save(rec, dataclasses.replace(rec, features=features, updated_at=now), strict=True)
            await self.known(features)
            old = rec.features
            rec.features = features
            rec.updated_at = self.run.clock()
            session = self.run.session_of(rec)
            if session is not None and old.first_last_piece != features.first_last_piece \
                    and rec.id not in self.run.busy:
                if not features.first_last_piece and session.has_metadata:
                    session.set_file_priorities(rec.file_priorities or session.file_priorities)
                self.run.apply_options(rec, session)
            await self.run.save(rec)
            if features.force_start and rec.id in self.run.queue.held and self.run.dormant(rec):
                # (held back since the start, force-started: it runs now, past the queue, whose
                # round reads only as far into the waiting jobs as its slots go)
                self.run.queue.held.discard(rec.id)
                try:
                    await self.run.start_dormant(rec)
                except JobConflict:
                    pass  # (it failed, saying why)
        self.run.publish_updated(rec)

    def managed_path(self, category: str) -> Path:
        """Where a job managed automatically (``managed.py``) of ``category`` is saved: the
        category's save path, else a folder of its name in the download root ("": the root)."""
        cat = self.catalogue.categories.get(category)
        path = cat.save_path if cat is not None and cat.save_path else category
        return confine(self.run.download_root, path)

    def add_save_path(self, features: JobFeatures | None, save_path: str | None) -> str | None:
        """The save path of a new job: its own, else its category's (when that has one); one
        managed automatically, ``managed_path``'s (``InvalidJobRequest`` if it has its own)."""
        if features is None:
            return save_path
        if features.auto_managed:
            if save_path is not None:
                raise InvalidJobRequest("a job managed automatically is saved where its category says: "
                                        "give it no save path", "save_path")
            return str(self.managed_path(features.category))
        if save_path is None and features.category:
            cat = self.catalogue.categories.get(features.category)
            if cat is not None and cat.save_path:
                return cat.save_path
        return save_path
