"""The API's guard holds when an application mounts the API under a prefix
(``Mount("/torrents", create_app(...))``, FastAPI's ``app.mount``): Starlette keeps the full
path in ``scope["path"]`` and the prefix in ``root_path``."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from torrent_engine.api.security import GuardMiddleware, Tickets


def _app() -> Starlette:
    async def jobs(request: Request) -> PlainTextResponse:
        return PlainTextResponse("the jobs")

    inner = Starlette(routes=[Route("/api/jobs", jobs)])
    guarded = GuardMiddleware(inner, token="secret", allowed_hosts=frozenset({"testserver"}), max_body=1000,
                              tickets=Tickets())
    return Starlette(routes=[Mount("/torrents", guarded)])


@pytest.mark.anyio
async def test_a_mounted_api_still_wants_the_token() -> None:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        assert (await client.get("/torrents/api/jobs")).status_code == 401
        wrong = await client.get("/torrents/api/jobs", headers={"Authorization": "Bearer wrong"})
        assert wrong.status_code == 401
        answer = await client.get("/torrents/api/jobs", headers={"Authorization": "Bearer secret"})
    assert answer.status_code == 200 and answer.text == "the jobs"
