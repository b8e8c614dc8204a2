"""Automatic management: a job so managed (``JobFeatures.auto_managed``, qBittorrent's automatic
torrent management) is saved where its category says, and moves when that changes.

Where a category says: its save path; a category without one, a folder of its name in the
download root (as qBittorrent's implicit category folder); no category, the root. A job turned to
automatic management moves there; one whose category changes, or is removed, moves to the new
place, unless ``relocate_on_category_change`` is off: then it is managed by hand from then on,
where it is; the same for a category's save path edited, by ``relocate_on_category_path_change``
(off by default, as qBittorrent's). A location given by hand (``set_location``, a download path)
ends its automatic management first. A move that fails leaves the job where it was (its
features changed still): the first failure is raised once every other job has moved.
"""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from ..model import FINISHED_STATES, Job, JobError
from .categories import Category
from .organise import Organiser

if TYPE_CHECKING:
    from ..tuning.settings import ServiceSettings

Move = Callable[[str, str], Awaitable[Job]]  # a job's id, the folder its data moves to


class AutoManagement:
    """The automatically managed jobs of ``organiser``'s service, moved by ``move`` (see the
    module's docstring); ``settings``: the service's, as they are now."""

    def __init__(self, organiser: Organiser, move: Move, settings: Callable[[], ServiceSettings]) -> None:
        self.organiser = organiser
        self._move = move
        self._settings = settings

    async def set_features(self, job_ids: Iterable[str], **changes: object) -> builtins.list[Job]:
        """``Organiser.set_features``; then each job turned to automatic management moves to its
        category's folder, and each managed one whose category changed follows it (or is managed
        by hand, by ``relocate_on_category_change``)."""
        ids = list(dict.fromkeys(job_ids))
        if "auto_managed" not in changes and "category" not in changes:  # (tags, limits ...: no move)
            return await self.organiser.set_features(ids, **changes)
        before = {i: self.organiser.run.unfinished(i).features for i in ids}
        jobs = await self.organiser.set_features(ids, **changes)
        relocate = self._settings().relocate_on_category_change
        moving = [j for j in jobs if j.features.auto_managed and (
            not before[j.id].auto_managed or relocate and before[j.id].category != j.features.category)]
        by_hand = [j.id for j in jobs if j.features.auto_managed and before[j.id].auto_managed
                   and not relocate and before[j.id].category != j.features.category]
        if by_hand:
            jobs = _merged(jobs, await self.organiser.set_features(by_hand, auto_managed=False))
        return _merged(jobs, await self._follow(moving))

    async def edit_category(self, name: str, save_path: str) -> Category:
        """``Organiser.edit_category``; then the managed jobs of the category move to its new
        save path (or are managed by hand, by ``relocate_on_category_path_change``)."""
        old = self.organiser.managed_path(name) if name in self.organiser.catalogue.categories else None
        category = await self.organiser.edit_category(name, save_path)
        if self.organiser.managed_path(name) != old:
            managed = self._managed(lambda of: of == category.name)
            if self._settings().relocate_on_category_path_change:
                await self._follow(managed)
            elif managed:
                await self.organiser.set_features([j.id for j in managed], auto_managed=False)
        return category

    async def remove_categories(self, names: Iterable[str]) -> builtins.list[str]:
        """``Organiser.remove_categories``; then their managed jobs, without a category now, move
        to the download root (or are managed by hand, by ``relocate_on_category_change``)."""
        was = {j.id: j.features.category for j in self._managed(lambda category: category != "")}
        gone = await self.organiser.remove_categories(names)
        managed = [j for j in self._managed(lambda category: category == "") if was.get(j.id) in gone]
        if self._settings().relocate_on_category_change:
            await self._follow(managed)
        elif managed:
            await self.organiser.set_features([j.id for j in managed], auto_managed=False)
        return gone

    async def by_hand(self, job_id: str) -> Job:
        """After a location given by hand: the job is managed by hand from then on; its snapshot."""
        rec = self.organiser.run.unfinished(job_id)
        if rec.features.auto_managed:
            return (await self.organiser.set_features([job_id], auto_managed=False))[0]
        return self.organiser.run.snapshot(rec)

    def _managed(self, category: Callable[[str], bool]) -> builtins.list[Job]:
        run = self.organiser.run
        return [run.snapshot(rec) for rec in run.jobs if rec.features.auto_managed
                and rec.state not in FINISHED_STATES and category(rec.features.category)]

    async def _follow(self, jobs: builtins.list[Job]) -> builtins.list[Job]:
        """Each job moved to its category's folder (those there already left); the moved ones'
        snapshots. The first failure is raised once the others have moved."""
        moved: builtins.list[Job] = []
        failure: JobError | None = None
        for job in jobs:
            target = self.organiser.managed_path(job.features.category)
            if Path(job.options.save_path) == target:
                continue
            try:
                moved.append(await self._move(job.id, str(target)))
            except JobError as exc:
                failure = failure or exc
        if failure is not None:
            raise failure
        return moved


def _merged(jobs: builtins.list[Job], newer: builtins.list[Job]) -> builtins.list[Job]:
    """``jobs`` in their order, each the newer snapshot of it when ``newer`` has one."""
    by_id = {j.id: j for j in newer}
    return [by_id.get(j.id, j) for j in jobs]
