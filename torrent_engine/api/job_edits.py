"""Our API's routes for renaming a job's files and folders and editing its trackers and web seeds (the same
JSON and errors as the rest of the API: see app.py and docs/api.md)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..jobs import InvalidJobRequest
from ..jobs.trackers import check_tiers
from ..jobs.webseeds import check_web_seeds
from .features import JsonRoutes

RENAME_KINDS = {"file": False, "folder": True, "any": None}


class JobEditApi(JsonRoutes):
    """Renaming a job's files and folders, editing its trackers and web seeds."""

    async def rename(self, request: Request) -> Response:
        """``POST /api/jobs/{id}/rename`` ``{"old_path", "new_path", "kind"?}``: give a file or a
        folder of the job a new path (``kind``: "file", "folder" or "any", the default)."""
        data = await self._body(request)
        kind = data.get("kind", "any")
        if not isinstance(kind, str) or kind not in RENAME_KINDS:
            raise InvalidJobRequest(f"must be one of {', '.join(RENAME_KINDS)}", "kind")
        unknown = sorted(set(data) - {"old_path", "new_path", "kind"})
        if unknown:
            raise InvalidJobRequest("unknown field (known: old_path, new_path, kind)", unknown[0])
        paths = []
        for name in ("old_path", "new_path"):
            value = data.get(name)
            if not isinstance(value, str):
                raise InvalidJobRequest("must be a string" if value is not None else "is required", name)
            paths.append(value)
        job = await self.service.rename_path(request.path_params["job_id"], *paths, folder=RENAME_KINDS[kind])
        return JSONResponse(job.to_json(detail=True))

    async def trackers(self, request: Request) -> Response:
        """``GET /api/jobs/{id}/trackers``: ``{"tiers": [[url, ...], ...]}`` (BEP 12 tiers)."""
        tiers = self.service.tracker_tiers(request.path_params["job_id"])
        return JSONResponse({"tiers": [list(tier) for tier in tiers]})

    async def set_trackers(self, request: Request) -> Response:
        """``PUT /api/jobs/{id}/trackers`` ``{"tiers": [[url, ...], ...]}``: the job's trackers
        from now on (every URL checked first: one bad URL and nothing changes)."""
        data = await self._body(request)
        unknown = sorted(set(data) - {"tiers"})
        if unknown:
            raise InvalidJobRequest("unknown field (known: tiers)", unknown[0])
        tiers = data.get("tiers")
        if not isinstance(tiers, list) or not all(isinstance(t, list) for t in tiers):
            raise InvalidJobRequest("must be a list of tiers, each a list of announce URLs", "tiers")
        checked = check_tiers([t for t in tiers if isinstance(t, list)], "tiers")
        job = await self.service.set_trackers(request.path_params["job_id"], checked, "tiers")
        return JSONResponse(job.to_json(detail=True))

    async def web_seeds(self, request: Request) -> Response:
        """``GET /api/jobs/{id}/webseeds``: ``{"urls": [url, ...]}`` (BEP 19 web seeds)."""
        return JSONResponse({"urls": self.service.web_seeds(request.path_params["job_id"])})

    async def set_web_seeds(self, request: Request) -> Response:
        """``PUT /api/jobs/{id}/webseeds`` ``{"urls": [url, ...]}``: the job's web seeds from now
        on (every URL checked first: one that is not http(s) and nothing changes)."""
        data = await self._body(request)
        unknown = sorted(set(data) - {"urls"})
        if unknown:
            raise InvalidJobRequest("unknown field (known: urls)", unknown[0])
        urls = data.get("urls")
        if not isinstance(urls, list):
            raise InvalidJobRequest("must be a list of web seed URLs (http or https)", "urls")
        checked = check_web_seeds(urls, "urls")
        job = await self.service.set_web_seeds(request.path_params["job_id"], checked, "urls")
        return JSONResponse(job.to_json(detail=True))

    def routes(self) -> list[Route]:
        """The routes, to add to the API's."""
        return [
            Route("/api/jobs/{job_id}/rename", self.rename, methods=["POST"]),
            Route("/api/jobs/{job_id}/trackers", self.trackers, methods=["GET"]),
            Route("/api/jobs/{job_id}/trackers", self.set_trackers, methods=["PUT"]),
            Route("/api/jobs/{job_id}/webseeds", self.web_seeds, methods=["GET"]),
            Route("/api/jobs/{job_id}/webseeds", self.set_web_seeds, methods=["PUT"]),
        ]
