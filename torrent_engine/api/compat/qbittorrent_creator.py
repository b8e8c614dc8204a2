"""qBittorrent's torrent creator (``torrentcreator/addTask``, ``status``, ``torrentFile``,
``deleteTask``; WebAPI 2.10.4-2.16), as torrentcreatorcontroller.cpp and torrentcreationmanager.cpp
answer them, over the service's creation tasks (``jobs.intake.creations``, which our
``/api/creations`` shows too). Paths are confined to the download root, as
``app/getDirectoryContent`` is (qBittorrent reads and writes anywhere on the host).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

from ...jobs import JobConflict, JobError
from ...jobs.intake.creations import CreationRequest, CreationTask, creation_request
from ...jsonvalue import JSON
from .forms import Form
from .qbittorrent_records import QbtError, parse_bool, parse_int

_FORMATS = {"": "hybrid", "v1": "v1", "v2": "v2", "hybrid": "hybrid"}
# the creation's names of an input as qBittorrent's form names it
_FIELDS = {"source_path": "sourcePath", "torrent_file_path": "torrentFilePath", "version": "format",
           "piece_length": "pieceSize", "trackers": "trackers", "web_seeds": "urlSeeds"}
_STATUS = {"queued": "Queued", "running": "Running", "finished": "Finished", "failed": "Failed"}


def _urls(text: str | None) -> tuple[str, ...]:
    """qBittorrent's ``parseUrls``: ``|``-separated, each percent-decoded."""
    return tuple(unquote(u) for u in text.split("|")) if text else ()


def _tiers(urls: tuple[str, ...]) -> list[list[str]]:
    """The trackers as BEP 12 tiers (qBittorrent's: an empty line is a tier break)."""
    tiers: list[list[str]] = [[]]
    for url in urls:
        if url.strip():
            tiers[-1].append(url.strip())
        elif tiers[-1]:
            tiers.append([])
    return tiers


def read_request(root: Path, form: Form) -> CreationRequest:
    """The request ``form`` makes, or a ``400`` naming what is wrong (in qBittorrent's names): a
    path outside the download root, an unknown ``format`` (qBittorrent takes it as hybrid), a
    ``pieceSize`` that is not a power of two from 16 KiB to 256 MiB, a tracker or web seed that is
    not a URL (qBittorrent makes a torrent with it); a ``409`` for a ``torrentFilePath`` where
    something is (qBittorrent writes over it)."""
    text = form.get("sourcePath")
    if not text:
        raise QbtError(400, "Missing required parameters: sourcePath")
    version = _FORMATS.get((form.get("format") or "").lower())
    if version is None:
        raise QbtError(400, "format must be v1, v2 or hybrid")
    try:
        return creation_request(
            root, text, torrent_file_path=form.get("torrentFilePath") or "", version=version,
            piece_length=parse_int(form.get("pieceSize")) or 0, private=bool(parse_bool(form.get("private"))),
            skip_hidden=parse_bool(form.get("ignoreDotfiles")) is not False,
            start_seeding=parse_bool(form.get("startSeeding")), comment=form.get("comment") or "",
            source=form.get("source") or "", tiers=_tiers(_urls(form.get("trackers"))),
            web_seeds=_urls(form.get("urlSeeds")))
    except JobError as exc:  # (bad input, or a .torrent file to be written over something: 409)
        raise QbtError(409 if isinstance(exc, JobConflict) else 400,
                       f"{_FIELDS.get(exc.field or '', exc.field)}: {exc.reason}") from exc


def record(task: CreationTask) -> dict[str, JSON]:
    """The task as ``torrentcreator/status`` shows it."""
    r = task.request
    out: dict[str, JSON] = {
        "taskID": task.id, "sourcePath": str(r.source_path), "pieceSize": r.piece_length,
        "ignoreDotfiles": r.skip_hidden, "private": r.private, "timeAdded": int(task.time_added),
        "format": r.version, "status": _STATUS[task.status]}
    if r.comment:
        out["comment"] = r.comment
    if r.torrent_file_path is not None:
        out["torrentFilePath"] = str(r.torrent_file_path)
    if r.source:
        out["source"] = r.source
    if r.tiers:  # (a tier break an empty line, as sent)
        out["trackers"] = [u for i, tier in enumerate(r.tiers) for u in ([""] if i else []) + list(tier)]
    if r.web_seeds:
        out["urlSeeds"] = list(r.web_seeds)
    if task.time_started is not None:
        out["timeStarted"] = int(task.time_started)
    if task.time_finished is not None:
        out["timeFinished"] = int(task.time_finished)
        if task.error:
            out["errorMessage"] = task.error
        elif task.torrent is not None:
            out["pieceSize"] = task.torrent.piece_length
    elif task.time_started is not None:
        out["progress"] = task.progress
    return out
