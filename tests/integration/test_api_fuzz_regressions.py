"""Bugs the API's fuzzing (schemathesis from the OpenAPI document, and the probes written after
it) found: each answer was a 500 or a bad input taken as another; now a 400 naming the field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.integration.api_helpers import running_api

pytestmark = pytest.mark.anyio

MAGNET = "magnet:?xt=urn:btih:" + "a" * 40 + "&dn=a"
JSON = {"content-type": "application/json"}


async def test_lone_surrogates_in_a_json_body_are_refused_naming_the_field(tmp_path: Path) -> None:
    # JSON's \ud800 escape decodes to a string no UTF-8 file name, record or answer can hold: it
    # was a 500 (after the add had already created the category, so that every later
    # GET /api/jobs was a 500 too).
    async with running_api(tmp_path) as api:
        c = api.client
        job = (await c.post("/api/jobs", json={"source": MAGNET, "paused": True})).json()
        src = '{"source": "' + MAGNET.replace("a" * 40, "b" * 40) + '", '
        cases = [
            ("POST", "/api/jobs", src + '"save_path": "x\\ud800"}', "save_path"),
            ("POST", "/api/jobs", src + '"category": "\\ud800"}', "category"),
            ("POST", "/api/jobs", src + '"tags": ["ok", "\\udfff"]}', "tags"),
            ("POST", "/api/jobs", src + '"\\ud800": 1}', "body"),
            ("PATCH", f"/api/jobs/{job['id']}", '{"rename": "\\ud800"}', "rename"),
            ("POST", f"/api/jobs/{job['id']}/move", '{"save_path": "\\ud800"}', "save_path"),
            ("POST", "/api/categories", '{"name": "\\ud800"}', "name"),
            ("POST", "/api/tags", '{"tags": ["\\ud800"]}', "tags"),
            ("POST", "/api/clients", '{"ttl": 5, "replaces": "\\ud800"}', "replaces"),
        ]
        for method, url, body, field in cases:
            r = await c.request(method, url, content=body.encode(), headers=JSON)
            assert r.status_code == 400, (url, body, r.text)
            assert r.json()["field"] == field and "surrogate" in r.json()["error"]
        assert (await c.get("/api/jobs")).status_code == 200
        assert (await c.get("/api/categories")).json() == {"categories": []}
        assert (await c.get("/api/tags")).json() == {"tags": []}
        assert [j["id"] for j in (await c.get("/api/jobs")).json()["jobs"]] == [job["id"]]


async def test_a_save_path_too_long_for_the_file_system_is_refused_naming_save_path(tmp_path: Path) -> None:
    # ENAMETOOLONG from the first stat of the path was a 500.
    async with running_api(tmp_path) as api:
        c = api.client
        job = (await c.post("/api/jobs", json={"source": MAGNET, "paused": True})).json()
        for long in ("x" * 256, "y/" * 2100):
            r = await c.post("/api/jobs", json={"source": MAGNET.replace("a" * 40, "c" * 40),
                                                "save_path": long})
            assert r.status_code == 400 and r.json()["field"] == "save_path", r.text
            r = await c.post(f"/api/jobs/{job['id']}/move", json={"save_path": long})
            assert r.status_code == 400 and r.json()["field"] == "save_path", r.text
            r = await c.post("/api/categories", json={"name": "films", "save_path": long})
            assert r.status_code == 400 and r.json()["field"] == "save_path", r.text
        r = await c.post(f"/api/jobs/{job['id']}/move", json={"save_path": "z" * 255})
        assert r.status_code == 200, r.text


async def test_feature_bodies_are_checked_by_type_and_errors_name_the_body_field(tmp_path: Path) -> None:
    # save_path: false (or 0, or []) was taken as "", a missing "tags" as an empty list, and the
    # errors of POST /api/jobs/{id}/move and /queue named "location" and "where", not the fields sent.
    async with running_api(tmp_path) as api:
        c = api.client
        job = (await c.post("/api/jobs", json={"source": MAGNET, "paused": True})).json()
        refused = [
            ("POST", "/api/categories", {"name": "films", "save_path": False}, "save_path"),
            ("POST", "/api/categories", {"save_path": "x"}, "name"),
            ("POST", "/api/categories", {"name": 7}, "name"),
            ("POST", "/api/categories", {"name": "a//b"}, "name"),
            ("POST", "/api/tags", {}, "tags"),
            ("POST", "/api/tags", {"tags": 0}, "tags"),
            ("POST", f"/api/jobs/{job['id']}/move", {}, "save_path"),
            ("POST", f"/api/jobs/{job['id']}/move", {"save_path": ""}, "save_path"),
            ("POST", f"/api/jobs/{job['id']}/move", {"save_path": 3}, "save_path"),
            ("POST", f"/api/jobs/{job['id']}/queue", {"move": "sideways"}, "move"),
            ("POST", f"/api/jobs/{job['id']}/queue", {}, "move"),
        ]
        for method, url, body, field in refused:
            r = await c.request(method, url, json=body)
            assert r.status_code == 400, (url, body, r.text)
            assert r.json()["field"] == field, (url, body, r.text)
        assert (await c.post("/api/categories", json={"name": "films"})).status_code == 201
        r = await c.patch("/api/categories/films", json={"save_path": []})
        assert r.status_code == 400 and r.json()["field"] == "save_path"
        r = await c.patch("/api/categories/films", json={"save_path": None})  # null = the root
        assert r.status_code == 200 and r.json()["save_path"] == ""


async def test_a_wrong_method_is_a_405_whose_allow_lists_every_method_of_the_path(tmp_path: Path) -> None:
    # The 405 had no Allow header (RFC 9110 wants one); Starlette's own would have named only the
    # first route of a path (GET for /api/jobs, which also takes POST and DELETE).
    async with running_api(tmp_path) as api:
        document = (await api.client.get("/api/openapi.json")).json()
        templates = {re.compile(re.sub(r"\{\w+\}", "[^/]+", p) + "$"): item
                     for p, item in document["paths"].items()}
        for path in document["paths"]:
            url = path.replace("{", "").replace("}", "")
            r = await api.client.request("TRACE", url)  # (a method no path takes)
            assert r.status_code == 405, (path, r.text)
            # (a fixed path is not the template it also matches: /api/jobs/active and
            # /api/jobs/bulk are no job ids, whatever /api/jobs/{job_id} takes)
            fixed = document["paths"].get(url) if "{" not in path else None
            documented = {m.upper() for m in fixed} if fixed is not None else \
                {m.upper() for t, item in templates.items() if t.match(url) for m in item}
            implicit = {"HEAD"} if "GET" in documented else set()
            assert set(r.headers["allow"].split(", ")) == documented | implicit, path
            assert "Method Not Allowed" in r.json()["error"] or "list" in r.json()["error"], r.text


async def test_a_request_the_http_parser_refuses_is_answered_as_json(tmp_path: Path) -> None:
    # schemathesis's negative headers (a Transfer-Encoding that is no coding) were refused by
    # uvicorn's parser with a text/plain body, where the document says every 400 is a JSON error.
    import json

    import anyio

    async with running_api(tmp_path) as api:
        port = int(api.server.url.rsplit(":", 1)[1])
        for head in (b"Transfer-Encoding: 7_ ;n.eOnC\r\n", b"Bad Header Name: x\r\n"):
            async with await anyio.connect_tcp("127.0.0.1", port) as conn:
                await conn.send(b"POST /api/jobs/0123456789abcdef/pause HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                + head + b"\r\n")
                answer = b""
                with anyio.fail_after(10):
                    while b"\r\n\r\n" not in answer or not answer.endswith(b"}"):
                        answer += await conn.receive()
            status, _, rest = answer.partition(b"\r\n")
            headers, _, body = rest.partition(b"\r\n\r\n")
            assert status == b"HTTP/1.1 400 Bad Request", answer
            assert b"content-type: application/json" in headers.lower(), answer
            assert json.loads(body)["error"].startswith("bad HTTP request: "), body
