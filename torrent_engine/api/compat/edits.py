"""What Transmission's RPC and qBittorrent's WebAPI ask to rename a torrent's files and folders,
to edit its trackers and to remove torrents, turned into the job service's ``rename_path``,
``set_trackers``, ``cancel`` and ``forget`` (the tier edits themselves are
``jobs/trackers.py``'s), with each client's names and answers.
Translators only: every request is checked whole before anything changes.
"""

from __future__ import annotations

from collections.abc import Mapping

from ...jobs import InvalidJobRequest, Job, JobConflict, JobService
from ...jobs.trackers import (
    Tiers,
    add_trackers,
    check_url,
    flat,
    move_to_tier,
    parse_tier_list,
    remove_trackers,
    replace_tracker,
)
from ...jsonvalue import JSON, JSONValue
from .forms import Form
from .qbittorrent_records import QbtError

__all__ = ["TRACKER_KEYS", "qbt_add_trackers", "qbt_edit_tracker", "qbt_remove_trackers", "qbt_rename",
           "remove_jobs", "rename_torrent_path", "transmission_tiers"]

TRACKER_KEYS = ("trackerAdd", "trackerRemove", "trackerReplace", "trackerList")


def _tracker_urls(job: Job, ids: JSONValue, field: str) -> list[str]:
    """The URLs of the trackers Transmission's ids (their index in ``trackers``) name."""
    if not isinstance(ids, list):
        raise InvalidJobRequest("must be a list of tracker ids", field)
    urls = []
    for i in ids:
        if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < len(job.trackers):
            raise InvalidJobRequest(f"{i!r} is not the id of a tracker of torrent {job.number}", field)
        urls.append(job.trackers[i].url)
    return urls


def _pairs(value: JSONValue) -> list[tuple[JSONValue, JSONValue]]:
    """``trackerReplace``: pairs ``[id, url]``, or one flat list ``[id, url, id, url ...]``."""
    if not isinstance(value, list):
        raise InvalidJobRequest("must be a list of [id, url] pairs", "trackerReplace")
    pairs = [(p[0], p[1]) for p in value if isinstance(p, list) and len(p) == 2]
    if len(pairs) == len(value):
        return pairs
    if len(value) % 2:
        raise InvalidJobRequest("must be a list of [id, url] pairs", "trackerReplace")
    return list(zip(value[::2], value[1::2], strict=True))


def transmission_tiers(service: JobService, job: Job, a: Mapping[str, JSONValue]) -> Tiers | None:
    """The job's tracker tiers after ``torrent-set``'s ``trackerList`` (the whole list, 4.0),
    ``trackerRemove`` (ids), ``trackerReplace`` ([id, url] pairs) and ``trackerAdd`` (URLs, a
    tier each), in that order; None when it asks for none of them."""
    if not any(a.get(key) is not None for key in TRACKER_KEYS):
        return None
    tiers = service.tracker_tiers(job.id)
    if a.get("trackerList") is not None:
        tiers = parse_tier_list(a["trackerList"], "trackerList")
    if a.get("trackerRemove") is not None:
        tiers = remove_trackers(tiers, _tracker_urls(job, a["trackerRemove"], "trackerRemove"))
    if a.get("trackerReplace") is not None:
        for tracker_id, url in _pairs(a["trackerReplace"]):
            old = _tracker_urls(job, [tracker_id], "trackerReplace")[0]
            tiers = replace_tracker(tiers, old, url, old_field="trackerReplace", new_field="trackerReplace")
    if a.get("trackerAdd") is not None:
        urls = a["trackerAdd"]
        if not isinstance(urls, list):
            raise InvalidJobRequest("must be a list of announce URLs", "trackerAdd")
        tiers = add_trackers(tiers, urls, "trackerAdd")
    return tiers


async def rename_torrent_path(service: JobService, job: Job, path: JSONValue,
                              name: JSONValue) -> dict[str, JSON]:
    """``torrent-rename-path``: the file or folder at ``path`` (relative to the download folder,
    the torrent's name first) gets the name ``name`` (one name, no "/"). ``path`` the torrent's
    name renames its root (its top folder, or its one file) and the name shown."""
    if not isinstance(path, str) or not path:
        raise InvalidJobRequest("must be the path of a file or folder of the torrent", "path")
    if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
        raise InvalidJobRequest("must be a new name (one name: no \"/\", not \".\" or \"..\")", "name")
    path = path.strip("/")
    parent, _, _ = path.rpartition("/")
    new_path = f"{parent}/{name}" if parent else name
    roots = {f.path.split("/", 1)[0] for f in job.files}
    await service.rename_path(job.id, path, new_path, fields=("path", "name"))
    if "/" not in path and roots == {path}:  # (the torrent's root: its name follows, as Transmission's)
        await service.set_features([job.id], rename=name)
    return {"id": job.number, "name": name, "path": path}


# -- qBittorrent's WebAPI ---------------------------------------------------------------------------
def _required(form: Form, name: str) -> str:
    value = form.get(name)
    if value is None:
        raise QbtError(400, f"Missing parameter: {name}")
    return value


async def qbt_rename(service: JobService, job: Job, form: Form, *, folder: bool) -> None:
    """``torrents/renameFile`` / ``renameFolder`` ``hash``, ``oldPath``, ``newPath``: 409 with
    the reason for a path refused, as qBittorrent answers any rename it cannot make."""
    old, new = _required(form, "oldPath"), _required(form, "newPath")
    try:
        await service.rename_path(job.id, old, new, folder=folder, fields=("oldPath", "newPath"))
    except (InvalidJobRequest, JobConflict) as exc:
        raise QbtError(409, str(exc)) from exc


async def qbt_add_trackers(service: JobService, job: Job, form: Form) -> None:
    """``torrents/addTrackers`` ``hash``, ``urls`` (one per line): each in a tier of its own; a
    URL we cannot announce to is a 400 naming ``urls``, and nothing is added."""
    urls = [u.strip() for u in _required(form, "urls").replace("\r", "\n").split("\n") if u.strip()]
    tiers = add_trackers(service.tracker_tiers(job.id), urls, "urls")
    await service.set_trackers(job.id, tiers, "urls")


async def qbt_edit_tracker(service: JobService, job: Job, form: Form) -> None:
    """``torrents/editTracker`` ``hash``, ``url`` (2.13; before, ``origUrl``, still read), and
    ``newUrl`` or ``tier`` (2.13: 0 to 255) or both: 400 for a new URL that is not one or a bad
    tier, 409 when ``url`` is not the torrent's or ``newUrl`` is already (as qBittorrent)."""
    orig = form.get("url") or _required(form, "origUrl")
    new, tier_text = form.get("newUrl"), form.get("tier")
    if new is None and tier_text is None:
        raise QbtError(400, "Must specify at least one of [newUrl, tier]")
    tier = None
    if tier_text is not None:
        try:
            tier = int(tier_text.strip())
        except ValueError as exc:
            raise QbtError(400, "tier must be an integer") from exc
        if not 0 <= tier <= 255:
            raise QbtError(400, "tier must be between 0 and 255")
    tiers = edited = service.tracker_tiers(job.id)
    if new is not None:
        try:
            check_url(new, "newUrl")
        except InvalidJobRequest as exc:
            raise QbtError(400, "New tracker URL is invalid") from exc
        if new.strip() != orig and new.strip() in flat(tiers):
            raise QbtError(409, "New tracker URL already exists")
    if orig not in flat(tiers):
        raise QbtError(409, "Tracker not found")
    if new is not None:
        edited = replace_tracker(tiers, orig, new, old_field="url", new_field="newUrl")
    if tier is not None:
        edited = move_to_tier(edited, orig if new is None else new.strip(), tier)
    if edited != tiers:
        await service.set_trackers(job.id, edited, "newUrl")


async def qbt_remove_trackers(service: JobService, jobs: list[Job], form: Form) -> None:
    """``torrents/removeTrackers`` ``hash`` (one, several joined by "|", or ``all``), ``urls``
    (joined by "|"): those a torrent has are removed, the others passed over."""
    urls = [u.strip() for u in _required(form, "urls").split("|") if u.strip()]
    edits = [(job, remove_trackers(service.tracker_tiers(job.id), urls)) for job in jobs]
    for job, tiers in edits:
        if tiers != service.tracker_tiers(job.id):
            await service.set_trackers(job.id, tiers, "urls")


async def remove_jobs(service: JobService, jobs: list[Job], *, delete_files: bool) -> None:
    """Both clients' removal of torrents: an unfinished job cancelled, a finished one (a failed
    job, still listed) forgotten, many at a time (``JobService.every``: the first refusal is
    raised once the others are removed)."""
    finished = {job.id for job in jobs if job.finished}

    async def remove(job_id: str) -> None:
        if job_id in finished:
            await service.forget(job_id, delete_files=delete_files)
        else:
            await service.cancel(job_id, delete_files=delete_files)

    await service.every((job.id for job in jobs), remove)
