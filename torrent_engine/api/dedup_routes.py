"""Our API's ``GET /api/dedup`` (what the deduplication holds and does now) and
``POST /api/dedup/match``: which of a torrent's files the daemon holds whole already,
as an add of it would take them (deduplication, docs/dedup.md: by v2 pieces root, or by length
and a sample of its own pieces), nothing added, placed or written — what a cross-seeding tool
asks before it adds a torrent found elsewhere. An admin's: it names the files held, every
user's and the indexed folders' (``security.route_scope``)."""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..engine.addtorrent import MagnetLink, Parsed, TorrentUrl
from ..formats.metainfo import Torrent
from ..jobs import InvalidJobRequest, JobService
from ..jobs.disk.dedup import LENGTH_MATCH_MIN, SAMPLED_PIECES
from ..jobs.disk.folder_index import FOLDER
from ..jsonvalue import JSON
from .features import JsonRoutes, ReadJson

__all__ = ["DedupApi"]

ParseSource = Callable[[object], "Parsed | MagnetLink | TorrentUrl"]  # the API's reader of a ``source``


class DedupApi(JsonRoutes):
    """``GET /api/dedup``, ``POST /api/dedup/match``."""

    def __init__(self, service: JobService, read_json: ReadJson, max_json: int, parse: ParseSource) -> None:
        super().__init__(service, read_json, max_json)
        self._parse = parse

    def routes(self) -> list[Route]:
        """The group's routes."""
        return [Route("/api/dedup", self.status, methods=["GET"]),
                Route("/api/dedup/match", self.match, methods=["POST"])]

    async def status(self, request: Request) -> Response:
        """``GET /api/dedup``: ``{"mode", "jobs", "folders": [{"folder", "error"}], "files",
        "hashed", "walking", "hashing": {"done", "total"} | null, "walked_at", "truncated"}``
        (``Deduplicator.status``)."""
        return JSONResponse(self.service.dedup.status())

    async def match(self, request: Request) -> Response:
        """``POST /api/dedup/match`` ``{"source": base64 .torrent}``: ``{"info_hash", "mode",
        "held_bytes", "total_bytes", "files": [{"index", "path", "length", "held"}]}``, each file
        (not a pad file) with ``held`` ``{"path", "job_id" (null: an indexed folder's), "by":
        "pieces root" | "length and pieces"}`` or null and ``why``. ``mode`` "off": nothing is
        looked up (the index is not kept). A magnet or a URL is refused (400): a magnet's files
        are not known before its metadata, and a URL is not fetched here."""
        data = await self._body(request)
        source = self._parse(data.get("source"))
        torrent = source.torrent if isinstance(source, Parsed) else None
        if not isinstance(torrent, Torrent):
            raise InvalidJobRequest("must be a base64-encoded .torrent (a magnet's files are not known "
                                    "before its metadata; a URL is not fetched here)", "source")
        dedup = self.service.dedup
        files: list[JSON] = []
        held_bytes = 0
        for h in await dedup.match(torrent):
            f = torrent.files[h.index]
            row: dict[str, JSON] = {"index": h.index, "path": "/".join(f.path), "length": f.length,
                                    "held": None}
            if h.source is not None:
                held_bytes += f.length
                row["held"] = {"path": h.source.path,
                               "job_id": None if h.source.origin == FOLDER else h.source.origin,
                               "by": "length and pieces" if h.by_length else "pieces root"}
            else:
                row["why"] = h.why
            files.append(row)
        return JSONResponse({
            "info_hash": torrent.info_hash.hex(), "mode": dedup.mode, "held_bytes": held_bytes,
            "total_bytes": sum(f.length for f in torrent.files if not f.pad),
            "length_from": LENGTH_MATCH_MIN, "pieces_sampled": SAMPLED_PIECES, "files": files})
