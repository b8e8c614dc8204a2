"""Our API's routes for bandwidth groups (jobs/tuning/groups.py): list, create, change and delete
them, and see or set the group of a job. Same JSON and errors as the rest of the API."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..jobs import InvalidJobRequest
from ..jobs.tuning.groups import GROUP_FIELDS, GroupSettings, check_group_name
from ..jsonvalue import JSON, JSONObject
from .features import JsonRoutes


def _fields(data: JSONObject, *, allow_name: bool) -> dict[str, object]:
    """A body's group fields (an unknown one refused, naming it)."""
    known = (*GROUP_FIELDS, "name") if allow_name else GROUP_FIELDS
    for name in data:
        if name not in known:
            raise InvalidJobRequest(f"unknown field (known: {', '.join(known)})", name)
    return {k: v for k, v in data.items() if k != "name"}


class GroupApi(JsonRoutes):
    """Bandwidth groups, and a job's group."""

    def _shown(self, group: GroupSettings) -> dict[str, JSON]:
        return {**group.to_json(), "jobs": self.service.bandwidth_group_members(group.name)}

    async def groups(self, request: Request) -> Response:
        """``GET /api/groups``: ``{"groups": [...]}``, by name."""
        return JSONResponse({"groups": [self._shown(g) for g in self.service.bandwidth_groups()]})

    async def create(self, request: Request) -> Response:
        """``POST /api/groups`` ``{"name", "weight"?, "download_limit"?, ...}``."""
        data = await self._body(request)
        name = check_group_name(data.get("name") if "name" in data else None)
        group = await self.service.create_bandwidth_group(name, **_fields(data, allow_name=True))
        return JSONResponse(self._shown(group), status_code=201)

    async def get(self, request: Request) -> Response:
        """``GET /api/groups/{name}``."""
        return JSONResponse(self._shown(self.service.bandwidth_group(request.path_params["name"])))

    async def update(self, request: Request) -> Response:
        """``PATCH /api/groups/{name}`` with the fields to change."""
        data = await self._body(request)
        group = await self.service.update_bandwidth_group(request.path_params["name"],
                                                          **_fields(data, allow_name=False))
        return JSONResponse(self._shown(group))

    async def delete(self, request: Request) -> Response:
        """``DELETE /api/groups/{name}``."""
        name = request.path_params["name"]
        await self.service.delete_bandwidth_group(name)
        return JSONResponse({"removed": name})

    async def job_group(self, request: Request) -> Response:
        """``GET /api/jobs/{id}/group``: the group the job names and the one it is in."""
        job = self.service.get(request.path_params["job_id"])
        return JSONResponse({"group": job.options.group, "in": self.service.job_bandwidth_group(job.id)})

    async def set_job_group(self, request: Request) -> Response:
        """``PUT /api/jobs/{id}/group`` ``{"group"}`` ("": none of its own)."""
        data = await self._body(request)
        _known_only(data, "group")
        job = await self.service.set_job_group(request.path_params["job_id"],
                                               data.get("group"),  # type: ignore[arg-type]  # (checked there)
                                               "group")
        return JSONResponse({"group": job.options.group, "in": self.service.job_bandwidth_group(job.id)})

    def routes(self) -> list[Route]:
        """This group's routes."""
        return [
            Route("/api/groups", self.groups, methods=["GET"]),
            Route("/api/groups", self.create, methods=["POST"]),
            Route("/api/groups/{name:path}", self.get, methods=["GET"]),
            Route("/api/groups/{name:path}", self.update, methods=["PATCH"]),
            Route("/api/groups/{name:path}", self.delete, methods=["DELETE"]),
            Route("/api/jobs/{job_id}/group", self.job_group, methods=["GET"]),
            Route("/api/jobs/{job_id}/group", self.set_job_group, methods=["PUT"]),
        ]


def _known_only(data: JSONObject, *names: str) -> None:
    for name in data:
        if name not in names:
            raise InvalidJobRequest(f"unknown field (known: {', '.join(names)})", name)
    for name in names:
        if name not in data:
            raise InvalidJobRequest("is required", name)
