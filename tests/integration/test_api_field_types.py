"""Every field of every JSON body our API takes, given a value of the wrong kind (an object, a
list, a number, a string, null, a boolean): a 4xx that names what was wrong, never a 500 — alone,
and beside the body's other fields given plausible values (so that a check made after theirs is
reached). Routes come from the API's own OpenAPI document: a route added later is swept too."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from tests.integration.api_helpers import running_api

pytestmark = pytest.mark.anyio

MAGNET = "magnet:?xt=urn:btih:" + "ab" * 20 + "&dn=swept"
WRONG: list[Any] = [{}, {"x": {}}, [], [{}], [[]], 1.5, -1, 2**70, "", "x", None, True]
# switches whose True is no wrong kind but turns on the DHT (it bootstraps from public routers)
# or LSD (it joins a multicast group): the suite's guard refuses both outside a namespace of the
# test's own (tests/integration/test_runtime_network.py turns them on and off on loopback)
REACHES_OUT = {"dht_enabled", "lsd_enabled", "dht", "lsd", "dht-enabled", "lpd-enabled"}


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _plausible(schema: dict[str, Any]) -> Any:
    """A value of the kind ``schema`` asks for (its example when it gives one)."""
    for key in ("examples", "enum"):
        if schema.get(key):
            return schema[key][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    return {"string": "x", "integer": 1, "number": 1, "boolean": False, "array": [],
            "object": {}}.get(kind or "string", "x")


async def test_a_field_of_the_wrong_kind_is_a_4xx_never_a_server_error(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    async with running_api(tmp_path) as api:
        c = api.client
        r = await c.post("/api/jobs", json={"source": MAGNET, "paused": True})
        assert r.status_code == 201, r.text
        known = {"job_id": r.json()["id"], "lease_id": (await c.post("/api/clients", json={})).json()["id"],
                 "name": "films", "tag": "old"}
        await c.post("/api/categories", json={"name": "films"})
        await c.post("/api/tags", json={"tags": ["old"]})
        document = (await c.get("/api/openapi.json")).json()
        swept, errors = 0, []
        for path, item in document["paths"].items():
            for method, op in item.items():
                body = op.get("requestBody", {}).get("content", {}).get("application/json")
                if body is None:
                    continue
                schema = _resolve(document, body["schema"])
                props = {n: _resolve(document, s) for n, s in schema.get("properties", {}).items()}
                url = path.format(**known)
                base = {n: _plausible(props[n]) for n in schema.get("required", []) if n in props}
                for name in props:
                    for value in WRONG:
                        if value is True and name in REACHES_OUT:
                            continue
                        for sent in ({name: value}, {**base, name: value}):
                            r = await c.request(method.upper(), url, json=sent)
                            swept += 1
                            if r.status_code >= 500:
                                errors.append(f"{method.upper()} {path} {sent!r}: {r.status_code} {r.text}")
                            elif r.status_code == 400 and "error" not in r.json():
                                errors.append(f"{method.upper()} {path} {sent!r}: 400 saying nothing")
        assert not errors, "\n".join(errors)
        assert swept > 500  # (the sweep found the routes' fields)
    assert not [rec for rec in caplog.records if rec.levelno >= logging.ERROR], caplog.text


TR_TORRENT_SET = ("bandwidthPriority", "downloadLimit", "downloadLimited", "uploadLimit", "uploadLimited",
                  "seedRatioMode", "seedRatioLimit", "seedIdleMode", "seedIdleLimit", "honorsSessionLimits",
                  "group", "labels", "peer-limit", "priority-low", "priority-normal", "priority-high",
                  "files-wanted", "files-unwanted", "sequentialDownload", "queuePosition", "location",
                  "trackerAdd", "trackerRemove", "trackerReplace", "trackerList")
TR_WRONG: list[Any] = [{}, [{}], 1.5, "x", None, True]
TR_OTHERS = ("ids", "fields", "format", "filename", "metainfo", "download-dir", "paused", "delete-local-data",
             "move", "path", "name", "labels", "cookies")


async def test_a_transmission_argument_of_the_wrong_kind_is_an_error_answer_never_a_server_error(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    async with running_api(tmp_path) as api:
        c = api.client
        r = await c.post("/transmission/rpc", json={"method": "session-get"})
        head = {"X-Transmission-Session-Id": r.headers["x-transmission-session-id"]}
        r = await c.post("/api/jobs", json={"source": MAGNET, "paused": True})
        info_hash = r.json()["info_hash"]
        r = await c.post("/transmission/rpc", headers=head, json={"method": "session-get"})
        session = sorted(r.json()["arguments"])
        methods = {"session-set": session, "torrent-set": TR_TORRENT_SET, "torrent-add": TR_OTHERS,
                   **{m: TR_OTHERS for m in (
                       "session-get", "session-stats", "torrent-get", "torrent-start", "torrent-start-now",
                       "torrent-stop", "torrent-verify", "torrent-reannounce", "torrent-set-location",
                       "free-space", "queue-move-top", "queue-move-bottom", "queue-move-up",
                       "queue-move-down", "torrent-rename-path", "blocklist-update")},
                   "torrent-remove": TR_OTHERS}  # (last: it removes the job)
        errors = []
        for method, names in methods.items():
            for name in names:
                for value in TR_WRONG:
                    if value is True and name in REACHES_OUT:
                        continue
                    for arguments in ({name: value}, {"ids": [info_hash], name: value}):
                        r = await c.post("/transmission/rpc", headers=head,
                                         json={"method": method, "arguments": arguments})
                        if r.status_code >= 500 or r.status_code == 200 and "result" not in r.json():
                            errors.append(f"{method} {arguments!r}: {r.status_code} {r.text[:200]}")
                            continue
                        said = r.json()["result"]
                        if said.startswith("invalid argument") and name not in said:
                            errors.append(f"{method} {arguments!r}: says not what: {said}")
        assert not errors, "\n".join(errors[:50])
    assert not [rec for rec in caplog.records if rec.levelno >= logging.ERROR], caplog.text


async def test_a_qbittorrent_preference_of_the_wrong_kind_is_a_4xx_never_a_server_error(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    async with running_api(tmp_path) as api:
        c = api.client
        prefs = (await c.get("/api/v2/app/preferences")).json()
        errors = []
        for name in sorted(prefs):
            for value in WRONG:
                if value is True and name in REACHES_OUT:
                    continue
                r = await c.post("/api/v2/app/setPreferences", data={"json": json.dumps({name: value})})
                if r.status_code >= 500:
                    errors.append(f"{name}={value!r}: {r.status_code} {r.text[:200]}")
        assert not errors, "\n".join(errors[:50])
        assert len(prefs) > 50
    assert not [rec for rec in caplog.records if rec.levelno >= logging.ERROR], caplog.text
