"""Our API's ``/api/creations``: torrents made from files in the download root, in the background
(``jobs.intake.creations``, the same tasks qBittorrent's ``torrentcreator/*`` shows), each
listed with its progress until deleted, its .torrent fetched once made; seeding it at once is
one of the request's fields. Making one reads any file of the download root, so it is an
admin's; reading the tasks is anyone's (as qBittorrent's ``torrentcreator/status``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..jobs import InvalidJobRequest, JobConflict, JobService
from ..jobs.intake.creations import CreationTask, TorrentCreations, creation_request
from ..jobs.organising.features import flag
from ..jsonvalue import JSON, JSONObject
from .features import JsonRoutes, ReadJson, torrent_file_response

__all__ = ["CreationApi", "creation_json"]

FIELDS = ("source_path", "torrent_file_path", "version", "piece_length", "private", "skip_hidden",
          "start_seeding", "comment", "source", "trackers", "web_seeds")


def creation_json(task: CreationTask) -> dict[str, JSON]:
    """A task as the API shows it (times are epoch seconds; ``piece_length`` the torrent's once
    made, else the one asked, 0 for automatic)."""
    r, made = task.request, task.torrent
    return {
        "id": task.id, "status": task.status, "progress": task.progress, "error": task.error or None,
        "name": made.name if made is not None else r.source_path.name,
        "source_path": str(r.source_path),
        "torrent_file_path": None if r.torrent_file_path is None else str(r.torrent_file_path),
        "version": r.version, "piece_length": made.piece_length if made is not None else r.piece_length,
        "private": r.private, "skip_hidden": r.skip_hidden, "start_seeding": r.start_seeding,
        "comment": r.comment, "source": r.source, "trackers": [list(t) for t in r.tiers],
        "web_seeds": list(r.web_seeds), "added": task.time_added, "started": task.time_started,
        "finished": task.time_finished, "size": made.payload_size if made is not None else None,
        "info_hash": made.info_hash.hex() if made is not None else None, "job_id": task.job_id}


def _text(data: JSONObject, name: str, default: str = "") -> str:
    value = data.get(name, default)
    if not isinstance(value, str):
        raise InvalidJobRequest("must be a string", name)
    return value


def _strings(value: JSON, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidJobRequest("must be a list of strings", name)
    return [v for v in value if isinstance(v, str)]


def _tiers(value: JSON) -> list[list[str]]:
    """``trackers``: a list of tiers, each a list of URLs (BEP 12)."""
    if not isinstance(value, list):
        raise InvalidJobRequest("must be a list of tiers, each a list of URLs", "trackers")
    return [_strings(tier, "trackers") for tier in value]


class CreationApi(JsonRoutes):
    """``/api/creations``: add, list, read, fetch the .torrent of and delete creation tasks."""

    def __init__(self, service: JobService, read_json: ReadJson, max_json: int) -> None:
        super().__init__(service, read_json, max_json)
        self.creations = TorrentCreations.of(service)

    def routes(self) -> list[Route]:
        """The group's routes."""
        return [Route("/api/creations", self.listing, methods=["GET"]),
                Route("/api/creations", self.add, methods=["POST"]),
                Route("/api/creations/{task_id}", self.get, methods=["GET"]),
                Route("/api/creations/{task_id}", self.delete, methods=["DELETE"]),
                Route("/api/creations/{task_id}/torrent", self.torrent_file, methods=["GET"])]

    async def add(self, request: Request) -> Response:
        """``POST /api/creations`` ``{"source_path", "torrent_file_path"?, "version"?, "piece_length"?,
        "private"?, "skip_hidden"?, "start_seeding"?, "comment"?, "source"?, "trackers"?,
        "web_seeds"?}``: ``201`` and the task, queued (``409`` with as many unfinished as kept)."""
        data = await self._body(request)
        for name in data:
            if name not in FIELDS:
                raise InvalidJobRequest(f"unknown field (known: {', '.join(FIELDS)})", name)
        piece_length = data.get("piece_length", 0)
        if isinstance(piece_length, bool) or not isinstance(piece_length, int):
            raise InvalidJobRequest("must be a whole number of bytes (0: automatic)", "piece_length")
        creation = creation_request(
            self.service.download_root, _text(data, "source_path"),
            torrent_file_path=_text(data, "torrent_file_path"), version=_text(data, "version", "hybrid"),
            piece_length=piece_length, private=bool(flag(data, "private", False)),
            skip_hidden=bool(flag(data, "skip_hidden", True)),
            start_seeding=flag(data, "start_seeding", None), comment=_text(data, "comment"),
            source=_text(data, "source"), tiers=_tiers(data.get("trackers", [])),
            web_seeds=_strings(data.get("web_seeds", []), "web_seeds"))
        return JSONResponse(creation_json(self.creations.add(creation)), status_code=201)

    async def listing(self, request: Request) -> Response:
        """``GET /api/creations``: ``{"creations": [...]}``, the unfinished first, each group in
        the order added."""
        return JSONResponse({"creations": [creation_json(t) for t in self.creations.tasks()]})

    async def get(self, request: Request) -> Response:
        """``GET /api/creations/{id}``."""
        return JSONResponse(creation_json(self.creations.get(request.path_params["task_id"])))

    async def torrent_file(self, request: Request) -> Response:
        """``GET /api/creations/{id}/torrent``: the .torrent made (``409`` until then, or if it failed)."""
        task = self.creations.get(request.path_params["task_id"])
        if task.torrent_file is None or task.torrent is None:
            raise JobConflict("it failed: nothing was made" if task.error else f"it is {task.status}: "
                              "the .torrent is there once it is finished", "id")
        return torrent_file_response(task.torrent, task.torrent_file)

    async def delete(self, request: Request) -> Response:
        """``DELETE /api/creations/{id}``: ``{"deleted": id}``, forgotten, and cancelled if not
        finished (nothing of it left on disk); a .torrent file it wrote stays, as does the job
        seeding it."""
        self.creations.delete(request.path_params["task_id"])
        return JSONResponse({"deleted": request.path_params["task_id"]})

