"""When a job's trackers are announced to next, as each dialect shows it: qBittorrent's
``torrents/trackers`` ``next_announce`` and ``min_announce`` (WebAPI 2.13, epoch seconds) and
``torrents/properties`` ``reannounce`` (seconds to go), Transmission's ``trackerStats`` ``nextAnnounceTime``,
``lastAnnounceTime`` and ``announceState``, our API's tracker times: the tracker's interval and
min interval after an answer, the back-off after a failure (the sooner of the two the torrent's
``reannounce``), nothing while the job is paused; and a tracker's refusal told apart from a
failure to reach it (qBittorrent 5's statuses 5 and 4, and maindata's flags), and what went
wrong as the torrent's fact (our ``tracker_issues``, Transmission's torrent ``error``)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import anyio.abc
import pytest

from tests.conftest import require_program
from tests.integration.api_helpers import TOKEN, add_with_trackers, qbt_tracker_rows, running_api
from tests.integration.test_api_tracker_scrapes import transmission
from tests.unit.tracker._tracker_servers import HttpRequest, announce_body, http_response, http_tracker
from torrent_engine.formats.bencode import encode
from torrent_engine.jobs import AddOptions, Job

pytestmark = pytest.mark.anyio

INTERVAL, MIN_INTERVAL = 1800, 600
DEAD = "http://127.0.0.1:1/announce"  # (nothing listens on port 1: its announce fails at once)


async def test_each_dialect_says_when_the_trackers_are_announced_to_next(tmp_path: Path) -> None:
    async def tracker(request: HttpRequest, stream: anyio.abc.ByteStream) -> None:
        if request.path.startswith("/announce/refused"):
            await stream.send(http_response(encode({"failure reason": "unregistered torrent"})))
        else:
            body = announce_body(interval=INTERVAL, **{"min interval": MIN_INTERVAL})
            await stream.send(http_response(body))

    async with http_tracker(tracker) as web, \
            running_api(tmp_path, config_options={"tracker_enabled": True}) as api:
        url = f"http://127.0.0.1:{web.port}/announce"
        refusing = f"http://127.0.0.1:{web.port}/announce/refused"
        info_hash, job_id = await add_with_trackers(api, tmp_path / "elsewhere", [[url], [DEAD], [refusing]])
        c = api.client

        async def rows() -> dict[str, dict[str, Any]]:
            return await qbt_tracker_rows(api, info_hash)

        with anyio.fail_after(30):  # (every tier is announced to: the second fails, the third refuses)
            while [row["status"] for row in (await rows()).values()][-3:] != [2, 4, 5]:
                await anyio.sleep(0.05)
        answered = time.time()
        seen = await rows()
        assert abs(seen[url]["next_announce"] - (answered + INTERVAL)) <= 5, seen[url]  # (epoch seconds)
        assert abs(seen[url]["min_announce"] - (answered + MIN_INTERVAL)) <= 5, seen[url]
        assert 1 <= seen[DEAD]["next_announce"] - answered <= 15, seen[DEAD]  # (its back-off)
        assert seen[DEAD]["min_announce"] == 0, seen[DEAD]
        assert all("next_announce" not in row for u, row in seen.items() if u.startswith("** ["))
        assert seen[refusing]["msg"].startswith("unregistered torrent")  # (5: Tracker error)
        flags = (await c.get("/api/v2/sync/maindata")).json()["torrents"][info_hash]
        assert (flags["has_tracker_error"], flags["has_other_announce_error"]) == (True, True)
        ours = {t["url"]: t for t in (await c.get(f"/api/jobs/{job_id}")).json()["trackers"]}
        assert [ours[u]["failure"] for u in (url, DEAD, refusing)] == [None, "error", "refused"]
        props = (await c.get("/api/v2/torrents/properties", params={"hash": info_hash})).json()
        assert 1 <= props["reannounce"] <= 15, props["reannounce"]  # (the sooner: the failing one's retry)
        stats = (await transmission(api, "torrent-get", {"ids": [info_hash], "fields": ["trackerStats"]})
                 )["torrents"][0]["trackerStats"]
        first = next(s for s in stats if s["announce"] == url)
        assert first["announceState"] == 1 and abs(first["lastAnnounceTime"] - answered) <= 5, first
        assert abs(first["nextAnnounceTime"] - (answered + INTERVAL)) <= 5, first
        ours = {t["url"]: t for t in (await c.get(f"/api/jobs/{job_id}")).json()["trackers"]}
        assert abs(ours[url]["next_announce_at"] - (answered + INTERVAL)) <= 5, ours[url]
        assert abs(ours[url]["min_announce_at"] - (answered + MIN_INTERVAL)) <= 5, ours[url]
        assert abs(ours[DEAD]["announced_at"] - answered) <= 5 and ours[DEAD]["min_announce_at"] is None

        # paused: nothing is due (the times it had are not shown as a countdown)
        r = await c.post("/api/v2/torrents/stop", data={"hashes": info_hash})
        assert r.status_code == 200, r.text
        with anyio.fail_after(30):
            while (await c.get(f"/api/jobs/{job_id}")).json()["state"] != "paused":
                await anyio.sleep(0.05)
        assert (await rows())[url]["next_announce"] == 0 and (await rows())[url]["min_announce"] == 0
        props = (await c.get("/api/v2/torrents/properties", params={"hash": info_hash})).json()
        assert props["reannounce"] == 0
        stats = (await transmission(api, "torrent-get", {"ids": [info_hash], "fields": ["trackerStats"]})
                 )["torrents"][0]["trackerStats"]
        assert {(s["announceState"], s["nextAnnounceTime"]) for s in stats} == {(0, 0)}
        paused = (await c.get(f"/api/jobs/{job_id}")).json()["trackers"]  # (our API alike: none due)
        assert {(t["next_announce_at"], t["min_announce_at"]) for t in paused} == {(None, None)}, paused
        assert all(t["announced_at"] for t in paused)  # (what it last heard stays)



async def test_a_trackers_warning_beside_a_working_answer_is_shown_in_each_dialect(tmp_path: Path) -> None:
    """BEP 3's ``warning message`` with a working answer: our API's tracker ``warning``,
    qBittorrent's row ``msg`` (status 2, Working) and maindata's ``has_tracker_warning``,
    Transmission's ``lastAnnounceResult`` in place of ``Success``; a later answer without one
    clears it."""
    warn = ["your client is too old"]

    async def tracker(request: HttpRequest, stream: anyio.abc.ByteStream) -> None:
        extra = {"warning message": warn[0]} if warn[0] else {}
        await stream.send(http_response(announce_body(interval=INTERVAL, **extra)))

    async with http_tracker(tracker) as web, \
            running_api(tmp_path, config_options={"tracker_enabled": True}) as api:
        url = f"http://127.0.0.1:{web.port}/announce"
        info_hash, job_id = await add_with_trackers(api, tmp_path / "elsewhere", [[url]])
        c = api.client

        async def ours() -> dict[str, Any]:
            tracker: dict[str, Any] = (await c.get(f"/api/jobs/{job_id}")).json()["trackers"][0]
            return tracker

        with anyio.fail_after(30):
            while (await ours())["status"] != "working":
                await anyio.sleep(0.05)
        assert (await ours())["warning"] == "your client is too old"
        row = (await qbt_tracker_rows(api, info_hash))[url]
        # (its scrape's failure may follow: this tracker answers no scrape)
        assert row["status"] == 2 and row["msg"].startswith("your client is too old"), row
        flags = (await c.get("/api/v2/sync/maindata")).json()["torrents"][info_hash]
        assert (flags["has_tracker_warning"], flags["has_tracker_error"], flags["has_other_announce_error"]) \
            == (True, False, False)
        stats = (await transmission(api, "torrent-get", {"ids": [info_hash], "fields": ["trackerStats"]})
                 )["torrents"][0]["trackerStats"]
        assert [(s["lastAnnounceSucceeded"], s["lastAnnounceResult"]) for s in stats] == [
            (True, "your client is too old")]

        warn[0] = ""
        r = await c.post("/api/v2/torrents/reannounce", data={"hashes": info_hash})
        assert r.status_code == 200, r.text
        with anyio.fail_after(30):
            while (await ours())["warning"]:
                await anyio.sleep(0.05)
        flags = (await c.get("/api/v2/sync/maindata")).json()["torrents"][info_hash]
        assert flags["has_tracker_warning"] is False
        assert "too old" not in (await qbt_tracker_rows(api, info_hash))[url]["msg"]


async def test_what_went_wrong_with_the_announces_is_each_torrents_issue_in_each_dialect(
        tmp_path: Path) -> None:
    """What a torrent's trackers answered, as a torrent's fact: our API's ``tracker_issues``
    (what the web UI's tracker status filter reads); Transmission's ``error`` and ``errorString``
    as its announcer sets them (the only tracker's refusal 2 with its failure reason, a working
    tracker's warning 1; a refusal beside other trackers, or a tracker not reached, is not the
    torrent's error), shown by the real ``transmission-remote -i``; qBittorrent's flags alike."""
    exe = require_program("transmission-remote")

    async def tracker(request: HttpRequest, stream: anyio.abc.ByteStream) -> None:
        if request.path.startswith("/announce/refused"):
            await stream.send(http_response(encode({"failure reason": "unregistered torrent"})))
        elif request.path.startswith("/announce/warn"):
            body = announce_body(interval=INTERVAL, **{"warning message": "your client is too old"})
            await stream.send(http_response(body))
        else:
            await stream.send(http_response(announce_body(interval=INTERVAL)))

    def remote(port: int, *args: str) -> str:
        done = subprocess.run([exe, f"127.0.0.1:{port}", "-n", f"user:{TOKEN}", *args], capture_output=True,
                              text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    async with http_tracker(tracker) as web, \
            running_api(tmp_path, config_options={"tracker_enabled": True}) as api:
        base = f"http://127.0.0.1:{web.port}/announce"
        refused, warn = f"{base}/refused", f"{base}/warn"
        cases = {"refused": [refused], "warned": [warn], "refused beside another": [refused, base],
                 "not reached": [DEAD]}
        hashes = {name: f"{n + 1:040x}" for n, name in enumerate(cases)}
        for name, trackers in cases.items():
            magnet = f"magnet:?xt=urn:btih:{hashes[name]}&dn={name.replace(' ', '-')}" + "".join(
                f"&tr={quote(t, safe='')}" for t in trackers)
            await api.service.add(magnet, AddOptions())

        def ours() -> dict[str, Job]:
            jobs = {j.info_hash: j for j in api.service.list()}
            return {name: jobs[h] for name, h in hashes.items()}

        with anyio.fail_after(30):  # (every tracker answered, or failed)
            while any(t.status == "unknown" for j in ours().values() for t in j.trackers):
                await anyio.sleep(0.05)
        issues = {name: (await api.client.get(f"/api/jobs/{job.id}")).json()["tracker_issues"]
                  for name, job in ours().items()}
        assert issues == {"refused": ["tracker_error"], "warned": ["warning"],
                          "refused beside another": ["tracker_error"], "not reached": ["other_error"]}, issues
        got = (await transmission(api, "torrent-get", {"ids": list(hashes.values()),
                                                        "fields": ["hashString", "error", "errorString"]}))
        errors = {t["hashString"]: (t["error"], t["errorString"]) for t in got["torrents"]}
        assert {name: errors[h] for name, h in hashes.items()} == {
            "refused": (2, "unregistered torrent"), "warned": (1, "your client is too old"),
            "refused beside another": (0, ""), "not reached": (0, "")}, errors
        port = api.server.bound_port
        run = anyio.to_thread.run_sync
        shown = await run(remote, port, "-t", hashes["refused"], "-i")
        assert "Tracker gave an error: unregistered torrent" in shown, shown
        shown = await run(remote, port, "-t", hashes["warned"], "-i")
        assert "Tracker gave a warning: your client is too old" in shown, shown
        flags = (await api.client.get("/api/v2/sync/maindata")).json()["torrents"]
        assert [(flags[hashes[name]]["has_tracker_warning"], flags[hashes[name]]["has_tracker_error"],
                 flags[hashes[name]]["has_other_announce_error"]) for name in cases] == [
            (False, True, False), (True, False, False), (False, True, False), (False, False, True)]


async def test_a_trackers_refusal_or_warning_stays_the_torrents_error_until_it_answers_again(
        tmp_path: Path) -> None:
    """Transmission keeps a tracker's refusal (``error`` 2) or warning (1) through announces that
    got no answer (the tracker not reached), until its next answer: ours did not (a failure to
    connect after a refusal turned ``error`` back to 0). Our tracker's ``refusal`` and
    ``warning`` are kept alike; qBittorrent's flags and row stay the last announce's."""
    answers = ["refuse"]

    async def tracker(request: HttpRequest, stream: anyio.abc.ByteStream) -> None:
        if answers[0] == "refuse":
            await stream.send(http_response(encode({"failure reason": "unregistered torrent"})))
        elif answers[0] == "warn":
            await stream.send(http_response(announce_body(interval=INTERVAL,
                                                          **{"warning message": "your client is too old"})))
        elif answers[0] == "ok":
            await stream.send(http_response(announce_body(interval=INTERVAL)))
        # ("drop": the connection closed with no answer)

    async with http_tracker(tracker) as web, \
            running_api(tmp_path, config_options={"tracker_enabled": True}) as api:
        url = f"http://127.0.0.1:{web.port}/announce"
        info_hash, job_id = await add_with_trackers(api, tmp_path / "elsewhere", [[url]])
        c = api.client

        async def step(answer: str, failure: str | None) -> tuple[dict[str, Any], Any, Any]:
            """The tracker answers so from now on; a reannounce; what each door then says."""
            answers[0] = answer
            before = (await c.get(f"/api/jobs/{job_id}")).json()["trackers"][0]["announced_at"]
            if before is not None:
                r = await c.post("/api/v2/torrents/reannounce", data={"hashes": info_hash})
                assert r.status_code == 200, r.text
            with anyio.fail_after(30):
                while True:
                    ours = (await c.get(f"/api/jobs/{job_id}")).json()
                    t = ours["trackers"][0]
                    if t["announced_at"] not in (None, before) and t["failure"] == failure:
                        break
                    await anyio.sleep(0.05)
            asked = {"ids": [info_hash], "fields": ["error", "errorString"]}
            got = (await transmission(api, "torrent-get", asked))["torrents"][0]
            row = (await qbt_tracker_rows(api, info_hash))[url]
            return t | {"issues": ours["tracker_issues"]}, (got["error"], got["errorString"]), row["msg"]

        refused, warned = "unregistered torrent", "your client is too old"
        # (the tracker's answer; how the announce failed; the tracker's kept refusal and warning,
        # the torrent's issues and Transmission's error then; what qBittorrent's row no longer says)
        for answer, failure, kept, issues, error, unsaid in (
                ("refuse", "refused", (refused, ""), ["tracker_error"], (2, refused), None),
                ("drop", "error", (refused, ""), ["other_error"], (2, refused), "unregistered"),
                ("warn", None, ("", warned), ["warning"], (1, warned), None),
                ("drop", "error", ("", warned), ["other_error"], (1, warned), "too old"),
                ("ok", None, ("", ""), [], (0, ""), None)):
            t, shown, msg = await step(answer, failure)
            assert ((t["refusal"], t["warning"]), t["issues"], shown) == (kept, issues, error), (answer, t)
            assert unsaid is None or unsaid not in msg, (answer, msg)
