"""Numbers past what a rate limit or a JSON number can be, through every API dialect: a clear
400 (or Transmission's error result) naming the field, never a 500, and nothing changed."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.integration.api_helpers import TOKEN, qbt_added, running_api
from tests.unit.torrent_factory import make_torrent, payload
from torrent_engine.config import MAX_RATE_LIMIT, Config
from torrent_engine.errors import ConfigError

pytestmark = pytest.mark.anyio

JSON = {"Content-Type": "application/json"}
INF = float("inf")
NAN = float("nan")


def text(value: object) -> str:
    """JSON text as Python writes it: whole numbers of any size, NaN and Infinity as bare words."""
    return json.dumps(value)


async def test_our_api_refuses_limits_past_the_maximum(tmp_path: Path) -> None:
    t = make_torrent([(("a.bin",), payload(40000, 5))], 16384, name="lim")
    async with running_api(tmp_path) as api:
        c = api.client
        for big in (10**400, 2**70, MAX_RATE_LIMIT + 1):
            body = text({"source": t.magnet_uri(), "download_limit": big})
            r = await c.post("/api/jobs", content=body, headers=JSON)
            assert r.status_code == 400 and r.json()["field"] == "download_limit", r.text
            r = await c.patch("/api/settings", content=text({"upload_limit": big}), headers=JSON)
            assert r.status_code == 400 and r.json()["field"] == "upload_limit", r.text
        for constant in (NAN, INF, -INF):  # not JSON, though Python's decoder takes them
            r = await c.patch("/api/settings", content=text({"upload_limit": constant}), headers=JSON)
            assert r.status_code == 400 and r.json()["field"] == "body", r.text
        assert (await c.get("/api/jobs")).json()["jobs"] == []
        assert (await c.get("/api/settings")).json()["upload_limit"] == 0  # nothing changed
        r = await c.patch("/api/settings", json={"upload_limit": MAX_RATE_LIMIT})
        assert r.status_code == 200 and r.json()["upload_limit"] == MAX_RATE_LIMIT
        assert api.service.manager.shared.upload_limit.rate == MAX_RATE_LIMIT
        r = await c.post("/api/jobs", json={"source": t.magnet_uri(), "download_limit": MAX_RATE_LIMIT,
                                            "paused": True})
        assert r.status_code == 201, r.text
        job_id = r.json()["id"]
        r = await c.patch(f"/api/jobs/{job_id}", content=text({"download_limit": 10**30}),
                          headers=JSON)
        assert r.status_code == 400 and r.json()["field"] == "download_limit", r.text


async def test_the_compat_dialects_refuse_them_too(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api, httpx.AsyncClient(base_url=api.url) as c:
        r = await c.post("/api/v2/auth/login", data={"username": "admin", "password": TOKEN})
        assert r.text == "Ok."
        for limit in ("1e400", "inf", "nan", str(10**30), str(MAX_RATE_LIMIT + 1)):
            r = await c.post("/api/v2/transfer/setDownloadLimit", data={"limit": limit})
            assert r.status_code == 400, (limit, r.status_code, r.text)
        r = await c.post("/api/v2/app/setPreferences", data={"json": '{"dl_limit": Infinity}'})
        assert r.status_code == 400, r.text
        assert (await c.get("/api/v2/transfer/downloadLimit")).text == "0"

        auth = ("u", TOKEN)
        sid = (await c.post("/transmission/rpc", json={"method": "session-get"}, auth=auth)).headers[
            "x-transmission-session-id"]
        head = {"X-Transmission-Session-Id": sid, **JSON}
        for value in (INF, NAN, 10**30, 10**400):
            body = text({"method": "session-set",
                         "arguments": {"speed-limit-down": value, "speed-limit-down-enabled": True}})
            r = await c.post("/transmission/rpc", content=body, auth=auth, headers=head)
            assert r.status_code in (200, 400), (value, r.status_code, r.text)
            if r.status_code == 200:
                assert r.json()["result"] != "success", (value, r.text)
        r = await c.post("/transmission/rpc", json={"method": "session-get"}, auth=auth, headers=head)
        assert r.json()["arguments"]["speed-limit-down-enabled"] is False


def test_config_refuses_a_limit_past_the_maximum() -> None:
    with pytest.raises(ConfigError) as err:
        Config(download_rate_limit=MAX_RATE_LIMIT + 1)
    assert err.value.field == "download_rate_limit"
    assert Config(upload_rate_limit=MAX_RATE_LIMIT).upload_rate_limit == MAX_RATE_LIMIT


async def test_negative_limits_and_the_field_named_in_both_dialects(tmp_path: Path) -> None:
    """A negative limit is refused (qBittorrent's -1 = no limit, its own word, still taken), and
    every refusal names the field as the dialect spells it: ``limit``, ``dlLimit``,
    ``downloadLimit``, ``speed-limit-down`` (kB/s there, so its own maximum)."""
    magnet = "magnet:?xt=urn:btih:" + "c" * 40
    async with running_api(tmp_path) as api:
        c = api.client
        r = await c.post("/api/v2/torrents/add", data={"urls": magnet, "paused": "true", "dlLimit": "-1"})
        qbt_added(r)
        for limit in ("-5", str(MAX_RATE_LIMIT + 1)):
            for path in ("transfer/setDownloadLimit", "torrents/setUploadLimit"):
                r = await c.post(f"/api/v2/{path}", data={"hashes": "all", "limit": limit})
                assert r.status_code == 400 and "limit" in r.text, (path, limit, r.status_code, r.text)
            r = await c.post("/api/v2/torrents/add", data={"urls": magnet.replace("c", "d"),
                                                           "upLimit": limit})
            assert r.status_code == 400 and "upLimit" in r.text, (limit, r.status_code, r.text)
        r = await c.post("/api/v2/torrents/setDownloadLimit", data={"hashes": "all", "limit": "-1"})
        assert r.status_code == 200
        assert [j.info_hash for j in api.service.active()] == ["c" * 40]
        assert (await c.get("/api/v2/transfer/downloadLimit")).text == "0"

        sid = (await c.post("/transmission/rpc", json={"method": "session-get"})).headers[
            "x-transmission-session-id"]
        head = {"X-Transmission-Session-Id": sid}
        too_many_kb = MAX_RATE_LIMIT // 1000 + 1
        for value in (-5, too_many_kb):
            for method, key, enabled in (("torrent-set", "downloadLimit", "downloadLimited"),
                                         ("session-set", "speed-limit-up", "speed-limit-up-enabled")):
                rpc = {"method": method, "arguments": {key: value, enabled: True}}
                result = (await c.post("/transmission/rpc", headers=head, json=rpc)).json()["result"]
                assert result != "success" and key in result, (method, value, result)
        job = api.service.active()[0]
        assert (job.options.download_limit, api.service.get_settings().upload_limit) == (0, 0)


async def test_older_than_nan_is_a_400_naming_the_field(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        for value in ("nan", "inf", "-1"):
            r = await api.client.delete(f"/api/jobs?finished=true&older_than={value}")
            assert r.status_code == 400 and r.json()["field"] == "older_than", (value, r.text)


async def test_the_active_list_is_never_taken_for_a_job(tmp_path: Path) -> None:
    """``/api/jobs/active`` is the list of unfinished jobs; a job's id is 16 hex digits, so no job
    is called ``active``: another method there is a 405 saying so, not "no job 'active'"."""
    async with running_api(tmp_path) as api:
        assert (await api.client.get("/api/jobs/active")).json() == {"jobs": []}
        for method in ("PATCH", "DELETE", "POST"):
            r = await api.client.request(method, "/api/jobs/active", json={} if method != "DELETE" else None)
            assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD", (method, r.text)
            assert "list" in r.json()["error"]
