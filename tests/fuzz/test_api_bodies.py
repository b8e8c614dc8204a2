"""Malformed and hostile bodies on every route of the job API that reads one: each gets a clean
4xx in JSON naming the problem, never a 5xx, and the daemon keeps serving."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from tests.integration.api_helpers import running_api

pytestmark = pytest.mark.anyio

MAGNET = "magnet:?xt=urn:btih:" + "cd" * 20 + "&dn=fuzz"
FIELDS = ["source", "save_path", "files", "sequential", "paused", "peers", "client", "file_priorities",
          "download_limit", "upload_limit", "ttl", "replaces", "x", ""]
ODD_SCALARS: list[Any] = [None, True, False, 0, -1, 1, 2**64, -(2**80), 10**400, 1.5, float("nan"),
                          float("inf"), "", "²", "١٢", "0x10", "a" * 5000, "\ud800", "../../etc", "1:2:3",
                          "[::1]:²", "127.0.0.1:0", "magnet:?xt=urn:btih:zz", "AAAA", "\x00"]


def _value(rng: random.Random, depth: int) -> Any:
    roll = rng.random()
    if depth <= 0 or roll < 0.45:
        return rng.choice(ODD_SCALARS)
    if roll < 0.7:
        return [_value(rng, depth - 1) for _ in range(rng.randint(0, 4))]
    return {rng.choice([*FIELDS, "²", "7", "-1"]): _value(rng, depth - 1) for _ in range(rng.randint(0, 4))}


def _bodies(rng: random.Random, count: int) -> list[bytes]:
    fixed = [b"[" * 1000 + b"]" * 1000, b"{\"a\":" * 1000 + b"1" + b"}" * 1000,
             b"{\"files\":" + b"[" * 5000 + b"]" * 5000 + b"}", b"{\"ttl\": NaN}", b"{\"ttl\": Infinity}",
             b"{", b"\xff\xfe{}", b"null", b"[]", b"\"x\"", b"1e999999", b"{\"a\":1,\"a\":2}",
             b"{\"file_priorities\": {\"\\u00b2\": 1}}", b"{\"peers\": [\"h:\\u00b2\"]}", b" " * 100]
    out = list(fixed)
    for _ in range(count):
        doc = {rng.choice(FIELDS): _value(rng, 4) for _ in range(rng.randint(1, 5))}
        out.append(json.dumps(doc).encode())
    return out


async def test_no_body_on_any_route_gets_a_5xx(tmp_path: Path) -> None:
    rng = random.Random(20261123)
    async with running_api(tmp_path) as api:
        r = await api.client.post("/api/jobs", json={"source": MAGNET, "paused": True})
        assert r.status_code in (200, 201), r.text
        job_id = r.json()["id"]
        r = await api.client.post("/api/clients", json={"ttl": 600})
        assert r.status_code == 201
        routes = [("POST", "/api/jobs"), ("PATCH", f"/api/jobs/{job_id}"), ("POST", "/api/clients")]
        seen: dict[int, int] = {}
        for body in _bodies(rng, 150):
            for method, path in routes:
                r = await api.client.request(method, path, content=body,
                                             headers={"content-type": "application/json"})
                seen[r.status_code] = seen.get(r.status_code, 0) + 1
                assert r.status_code < 500, (method, path, body[:200], r.text)
                if r.status_code >= 400:
                    assert r.json()["error"], (method, path, body[:200])
                elif method == "POST" and path == "/api/clients":
                    await api.client.delete(f"/api/clients/{r.json()['id']}")
        # the corpus reached the validators, not only the JSON parser
        assert seen.get(400, 0) > 100
        for body in (b"--x\r\nContent-Disposition: form-data; name=\"torrent\"\r\n\r\nnot bencode\r\n--x--",
                     b"garbage", b"--x\r\n\r\n--x--", b""):
            r = await api.client.post("/api/jobs", content=body,
                                      headers={"content-type": "multipart/form-data; boundary=x"})
            assert 400 <= r.status_code < 500, (body, r.text)
        assert (await api.client.get("/api/health")).status_code == 200


async def test_a_deeply_nested_body_is_a_400_that_says_so(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        for body in (b"[" * 1000 + b"]" * 1000, b"{\"a\":" * 1000 + b"1" + b"}" * 1000,
                     b"{\"files\":" + b"[" * 40 + b"]" * 40 + b"}"):
            r = await api.client.post("/api/jobs", content=body, headers={"content-type": "application/json"})
            assert r.status_code == 400, r.text
            assert "nested" in r.json()["error"] and r.json()["field"] == "body"
