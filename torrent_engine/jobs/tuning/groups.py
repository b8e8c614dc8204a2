"""Bandwidth groups: named groups of jobs with their own rate limits and a weight in the global
limit's shares (``engine/bandwidth.py`` enforces them, ``policy/bandwidth.py`` computes the shares).

A job is in the group its own option ``group`` names; else in the first group (by name) that
lists its category; else in the first group (by name) that lists one of its tags; else in none
(the torrents of no group share the global limit as one group of weight 1). One JSON file,
``state_dir/groups.json``, written atomically; every value is checked on the way in.
"""

from __future__ import annotations

import builtins
import dataclasses
import json
import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from ...config import MAX_RATE_LIMIT
from ...engine.bandwidth import BandwidthGroup
from ...jsonvalue import JSON
from ...storage.resume import write_atomic
from ..model import (
    FINISHED_STATES,
    InvalidJobRequest,
    Job,
    JobAdded,
    JobConflict,
    JobNotFound,
    JobStateChanged,
    JobUpdated,
)
from ..store import JobRecord, not_saved
from ..validate import check_category, check_limit, check_tags
from .host import TuningHost

log = logging.getLogger("torrent_engine.jobs.groups")

GROUPS_FILE = "groups.json"
MAX_GROUP_NAME = 128
MAX_WEIGHT = 1000
GROUP_FIELDS = ("weight", "download_limit", "upload_limit", "honors_global", "categories", "tags")


@dataclass(frozen=True, slots=True)
class GroupSettings:
    """A bandwidth group: its limits (bytes/s, 0: none), its weight (1 … ``MAX_WEIGHT``), whether
    its traffic passes the global limit, and the categories and tags whose jobs it takes."""

    name: str
    weight: int = 1
    download_limit: int = 0
    upload_limit: int = 0
    honors_global: bool = True
    categories: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    def to_json(self) -> dict[str, JSON]:
        """The group as JSON (the API's and the file's)."""
        return {"name": self.name, "weight": self.weight, "download_limit": self.download_limit,
                "upload_limit": self.upload_limit, "honors_global": self.honors_global,
                "categories": list(self.categories), "tags": list(self.tags)}

    def engine(self) -> BandwidthGroup:
        """What the engine enforces of it."""
        return BandwidthGroup(self.name, self.weight, self.download_limit, self.upload_limit,
                              self.honors_global)


def check_group_name(value: object, field: str = "name") -> str:
    """A group's name: 1 … ``MAX_GROUP_NAME`` characters, no control character, no blank at
    either end."""
    if not isinstance(value, str):
        raise InvalidJobRequest("must be a group's name (a string)", field)
    if not value or len(value) > MAX_GROUP_NAME or value.strip() != value \
            or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InvalidJobRequest(f"{value[:60]!r} is not a group name (1 to {MAX_GROUP_NAME} characters, "
                                "no control characters, no blanks at the ends)", field)
    return value


def check_weight(value: object, field: str = "weight") -> int:
    """A weight: a whole number from 1 to ``MAX_WEIGHT``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_WEIGHT:
        raise InvalidJobRequest(f"must be a whole number from 1 to {MAX_WEIGHT}", field)
    return value


def group_with(current: GroupSettings, changes: Mapping[str, object]) -> GroupSettings:
    """``current`` with ``changes`` (by ``GROUP_FIELDS`` name) applied, each checked first
    (``InvalidJobRequest`` naming the field: nothing changes then)."""
    values: dict[str, Any] = {}  # Any: the checked values of the fields' several types
    for name, value in changes.items():
        if name == "weight":
            values[name] = check_weight(value, name)
        elif name in ("download_limit", "upload_limit"):
            values[name] = check_limit(value, name)
        elif name == "honors_global":
            if not isinstance(value, bool):
                raise InvalidJobRequest("must be true or false", name)
            values[name] = value
        elif name == "categories":
            if not isinstance(value, (list, tuple)):
                raise InvalidJobRequest("must be a list of categories", name)
            names = {check_category(v, name) for v in value}
            if "" in names:
                raise InvalidJobRequest("a category name must not be empty", name)
            values[name] = tuple(sorted(names))
        elif name == "tags":
            values[name] = check_tags(value, name)
        else:
            raise InvalidJobRequest(f"unknown field (known: {', '.join(GROUP_FIELDS)})", name)
    return dataclasses.replace(current, **values)


def group_of(groups: Sequence[GroupSettings], explicit: str, category: str, tags: Iterable[str]) -> str:
    """The group a job is in (``groups`` sorted by name): the one it names (``explicit``, when
    that group exists), else the first that lists its category, else the first that lists one
    of its tags; "" for none."""
    if explicit and any(g.name == explicit for g in groups):
        return explicit
    if category:
        for g in groups:
            if category in g.categories:
                return g.name
    tagged = set(tags)
    if tagged:
        for g in groups:
            if tagged.intersection(g.tags):
                return g.name
    return ""


def load_groups(state_dir: Path | None) -> list[GroupSettings]:
    """The saved groups (none when there is no file; a damaged file, or a group in it that no
    longer passes its checks, is logged and left out)."""
    if state_dir is None or not (state_dir / GROUPS_FILE).is_file():
        return []
    path = state_dir / GROUPS_FILE
    try:
        raw = json.loads(path.read_bytes())
        entries = raw["groups"]
        if not isinstance(entries, list):
            raise ValueError("groups is not a list")
    except (OSError, ValueError, TypeError, KeyError) as exc:
        log.warning("%s is unreadable; no bandwidth groups: %s", path, exc)
        return []
    out: dict[str, GroupSettings] = {}
    for entry in entries:
        try:
            if not isinstance(entry, dict):
                raise InvalidJobRequest("not a JSON object", "groups")
            name = check_group_name(entry.get("name"))
            out[name] = group_with(GroupSettings(name), {k: v for k, v in entry.items() if k != "name"})
        except InvalidJobRequest as exc:
            log.warning("%s: a bandwidth group dropped: %s: %s", path, exc.field, exc.reason)
    return sorted(out.values(), key=lambda g: g.name)


def save_groups(state_dir: Path | None, groups: Sequence[GroupSettings]) -> None:
    """Write the groups atomically (nothing without a state folder)."""
    if state_dir is not None:
        write_atomic(state_dir / GROUPS_FILE, json.dumps({"groups": [g.to_json() for g in groups]}).encode())


class BandwidthGroups:
    """The one owner of the service's bandwidth groups: kept, saved, put in force in the engine,
    and each job placed in its group (its session told) as groups, jobs' options and features
    change."""

    def __init__(self, run: TuningHost, state_dir: Path | None) -> None:
        self.run = run
        self.state_dir = state_dir
        self._groups: list[GroupSettings] = []  # sorted by name
        self._placed: dict[str, str] = {}  # job id -> the group it is in (in none: absent)
        self._members: Counter[str] = Counter()  # group -> how many jobs are in it (``_placed``'s)

    def listen(self) -> None:
        """Place a job again when it is added, its features change (its category, its tags) or
        its state does (a new session, or the end); a session made is told by
        ``JobLifecycle.apply_options`` too."""
        self.run.bandwidth_group = self._place  # (and ``session_setup`` reads the record's)
        for kind in (JobAdded, JobUpdated, JobStateChanged):
            self.run.events.subscribe(kind, lambda e: self._place_id(e.job.id))

    async def load(self) -> None:
        """Read the saved groups and put them in force."""
        self._groups = await anyio.to_thread.run_sync(load_groups, self.state_dir)
        self._in_force()

    # -- queries -----------------------------------------------------------------------------
    def list(self) -> builtins.list[GroupSettings]:
        """Every group, by name."""
        return list(self._groups)

    def get(self, name: str, field: str = "name") -> GroupSettings:
        """The group ``name``; ``JobNotFound`` naming ``field`` when there is none."""
        for g in self._groups:
            if g.name == name:
                return g
        raise JobNotFound(f"no bandwidth group {name[:60]!r}", field)

    def group_of(self, job_id: str) -> str:
        """The group the job is in now ("" for none)."""
        return self._placed.get(job_id, "")

    def members(self, name: str) -> int:
        """How many unfinished jobs are in the group ``name``."""
        return self._members[name]

    # -- changes -----------------------------------------------------------------------------
    async def create(self, name: str, **fields: object) -> GroupSettings:
        """A new group (``JobConflict`` if one has that name)."""
        name = check_group_name(name)
        if any(g.name == name for g in self._groups):
            raise JobConflict(f"a bandwidth group {name!r} exists", "name")
        group = group_with(GroupSettings(name), fields)
        await self._save(sorted([*self._groups, group], key=lambda g: g.name))
        return group

    async def update(self, name: str, **fields: object) -> GroupSettings:
        """Change a group's fields (``JobNotFound`` for an unknown group)."""
        group = group_with(self.get(name), fields)
        await self._save([group if g.name == name else g for g in self._groups])
        return group

    async def set(self, name: str, **fields: object) -> GroupSettings:
        """Change the group ``name``, made first when there is none (Transmission's group-set)."""
        name = check_group_name(name)
        if any(g.name == name for g in self._groups):
            return await self.update(name, **fields)
        return await self.create(name, **fields)

    async def delete(self, name: str) -> None:
        """Forget a group; the jobs that named it are in none of their own from then on (their
        category's or tags' group, if any, takes them)."""
        self.get(name)
        await self._save([g for g in self._groups if g.name != name])
        for rec in self.run.jobs:
            if rec.options.group == name:
                rec.options = dataclasses.replace(rec.options, group="")
                await self.run.save(rec)
                self.run.publish_updated(rec)

    async def set_job_group(self, job_id: str, name: str, field: str = "group") -> Job:
        """Put the job in the group ``name`` ("": none of its own: its category's or tags' group
        decides); ``JobConflict`` naming ``field`` for a group that does not exist (as for a category)."""
        await self.run.require_running()
        if not isinstance(name, str):
            raise InvalidJobRequest("must be a group's name, or \"\" for none", field)
        if name and not any(g.name == name for g in self._groups):
            raise JobConflict(f"no bandwidth group {name[:60]!r} (create it first)", field)
        async with self.run.lock(job_id):
            rec = self.run.jobs.get(job_id)
            if rec is None:
                raise JobNotFound(f"no job {job_id!r}", "id")
            if rec.state in FINISHED_STATES:
                raise JobConflict(f"cannot change the group of a job that is {rec.state.value}", field)
            before = rec.options
            rec.options = dataclasses.replace(rec.options, group=name)
            try:
                await self.run.save(rec, strict=True)
            except BaseException:
                rec.options = before
                raise
            self._place(rec)
            self.run.publish_updated(rec)
            return self.run.snapshot(rec)

    async def _save(self, groups: builtins.list[GroupSettings]) -> None:
        try:
            await anyio.to_thread.run_sync(save_groups, self.state_dir, groups)
        except OSError as exc:  # (nothing changed: refused, saying where)
            raise not_saved(exc, self.state_dir) from exc
        self._groups = groups
        self._in_force()

    def _in_force(self) -> None:
        """The groups to the engine, and every unfinished job placed again."""
        self.run.manager.shared.bandwidth.set_groups(g.engine() for g in self._groups)
        for rec in self.run.jobs:
            self._place(rec)

    def _place_id(self, job_id: str) -> None:
        rec = self.run.jobs.get(job_id)
        if rec is not None:
            self._place(rec)

    def _place(self, rec: JobRecord) -> str:
        """Put the job in its group now (its session told), or in none once it has finished; the
        group's name ("": none)."""
        name = "" if rec.state in FINISHED_STATES else \
            group_of(self._groups, rec.options.group, rec.features.category, rec.features.tags)
        before = self._placed.pop(rec.id, "")
        if before:
            self._members[before] -= 1
        if name:
            self._placed[rec.id] = name
            self._members[name] += 1
        rec.bandwidth_group = name  # (what a session made from the record is told: session_setup)
        session = self.run.session_of(rec)
        if session is not None and session.bandwidth_group != name:
            session.set_bandwidth_group(name)
        return name


__all__ = ["GROUP_FIELDS", "MAX_GROUP_NAME", "MAX_RATE_LIMIT", "MAX_WEIGHT", "BandwidthGroups",
           "GroupSettings", "check_group_name", "check_weight", "group_of", "group_with", "load_groups",
           "save_groups"]
