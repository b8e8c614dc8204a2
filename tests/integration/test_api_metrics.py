"""``GET /metrics``: refused without the right bearer token, read from the objects that own the
facts while a job downloads from a seeder on loopback, and accepted by Prometheus's own
``promtool check metrics`` when scraped from a real ``torrent-engine daemon``."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import anyio.abc
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import require_program
from tests.integration.api_helpers import TOKEN, running_api
from tests.integration.helpers import loopback_config, make_payload
from tests.unit.tracker._tracker_servers import HttpRequest, HttpServer, http_response, http_tracker
from torrent_engine.api import ApiServer
from torrent_engine.formats.bencode import encode
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.jobs import JobService
from torrent_engine.session import Session
from torrent_engine.storage.create import create_torrent
from torrent_engine.storage.timing import PIECE_WRITES

pytestmark = pytest.mark.anyio

DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"

METRICS_TOKEN = "scrape-only-token-0123456789"
FILES = (("a.bin", 300_000), ("b.bin", 50_000))


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    """Every sample of an exposition, by name and labels."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(all_samples: Samples, metric: str, **labels: str) -> float:
    return all_samples[(metric, frozenset(labels.items()))]


async def refuse(request: HttpRequest, stream: anyio.abc.ByteStream) -> None:
    await stream.send(http_response(encode({"failure reason": "not tracked here"})))


def torrent_with_tracker(tmp_path: Path, tracker: HttpServer) -> Torrent:
    payload = make_payload(tmp_path / "seed", FILES)
    return create_torrent(payload, piece_length=32 * 1024,
                          trackers=[f"http://127.0.0.1:{tracker.port}/announce"])


async def test_metrics_needs_the_api_or_the_metrics_token_and_that_token_opens_nothing_else(
        tmp_path: Path) -> None:
    async with running_api(tmp_path, metrics_token=METRICS_TOKEN) as api, \
            httpx.AsyncClient(base_url=api.url, timeout=30) as bare:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
                        {"X-Api-Token": METRICS_TOKEN}):
            r = await bare.get("/metrics", headers=headers)
            assert r.status_code == 401, headers
            assert "torrent_engine" not in r.text and r.headers["www-authenticate"].startswith("Bearer")
        for token in (TOKEN, METRICS_TOKEN):
            r = await bare.get("/metrics", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
            assert "torrent_engine_jobs{" in r.text
        r = await bare.get("/api/jobs", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert r.status_code == 401  # the scraper's token is no API token
        r = await bare.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}", "Host": "evil.example"})
        assert r.status_code == 403  # the Host allow-list holds for /metrics too


async def test_without_a_metrics_token_only_the_api_token_opens_metrics(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api, httpx.AsyncClient(base_url=api.url, timeout=30) as bare:
        for headers in ({}, {"Authorization": f"Bearer {METRICS_TOKEN}"}):
            assert (await bare.get("/metrics", headers=headers)).status_code == 401
        assert (await api.client.get("/metrics")).status_code == 200


@asynccontextmanager
async def api_with_trackers(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    state_dir = tmp_path / "state"
    config = loopback_config(state_dir=state_dir, tracker_enabled=True)
    async with JobService(config, download_root=tmp_path / "downloads", state_dir=state_dir) as service:
        server = ApiServer(service, token=TOKEN, port=0)
        async with anyio.create_task_group() as tg:
            await tg.start(server.serve)
            async with httpx.AsyncClient(base_url=server.url, timeout=30,
                                         headers={"Authorization": f"Bearer {TOKEN}"}) as client:
                try:
                    yield client
                finally:
                    server.stop()


async def test_a_scrape_reads_a_downloading_job_from_the_objects_that_own_its_facts(tmp_path: Path) -> None:
    writes_before = PIECE_WRITES.snapshot().count
    async with http_tracker(refuse) as tracker, \
            Session(torrent := torrent_with_tracker(tmp_path, tracker), tmp_path / "seed",
                    config=loopback_config()) as seeder, \
            api_with_trackers(tmp_path) as client:
        await seeder.wait_ready()
        r = await client.post("/api/jobs", json={"source": base64.b64encode(torrent.to_bytes()).decode(),
                                                 "peers": [f"127.0.0.1:{seeder.listen_port}"]})
        assert r.status_code == 201, r.text
        job = r.json()
        ids = {"job": job["id"], "info_hash": job["info_hash"]}
        with anyio.fail_after(60):
            while True:  # seeding, and the tracker's refusal heard
                job = (await client.get(f"/api/jobs/{job['id']}")).json()  # (read before the scrape)
                r = await client.get("/metrics")
                assert r.status_code == 200
                got = samples(r.text)
                if (got.get(("torrent_engine_job_tracker_errors_total", frozenset(ids.items())), 0) >= 1
                        and ("torrent_engine_job_info", frozenset({**ids, "name": job["name"],
                                                                    "state": "seeding"}.items())) in got
                        and got.get(("torrent_engine_event_loop_lag_seconds_count", frozenset()), 0) >= 1):
                    break
                await anyio.sleep(0.1)
        families = {f.name: f.type for f in text_string_to_metric_families(r.text)}

    assert value(got, "torrent_engine_job_info", **ids, name=job["name"], state="seeding") == 1
    assert value(got, "torrent_engine_job_downloaded_bytes_total", **ids) >= torrent.payload_size
    assert value(got, "torrent_engine_job_downloaded_bytes_total", **ids) >= job["downloaded"]
    assert value(got, "torrent_engine_job_wanted_bytes", **ids) == torrent.payload_size
    assert value(got, "torrent_engine_job_verified_bytes", **ids) == torrent.payload_size
    assert value(got, "torrent_engine_job_pieces", **ids) == torrent.num_pieces
    assert value(got, "torrent_engine_job_pieces_verified", **ids) == torrent.num_pieces
    assert value(got, "torrent_engine_job_trackers", **ids, state="failing") == 1
    assert value(got, "torrent_engine_job_tracker_errors_total", **ids) >= 1
    assert value(got, "torrent_engine_jobs", state="seeding") == 1
    assert value(got, "torrent_engine_jobs", state="queued") == 0
    assert value(got, "torrent_engine_jobs_downloaded_bytes") >= torrent.payload_size
    assert value(got, "torrent_engine_piece_write_seconds_count") >= writes_before + torrent.num_pieces
    assert value(got, "torrent_engine_event_loop_lag_seconds_count") >= 1
    assert 0 <= value(got, "torrent_engine_event_loop_lag_max_seconds") <= 10
    assert value(got, "torrent_engine_api_request_duration_seconds_count",
                 method="GET", route="/api/jobs/{job_id}", code="200") >= 1
    assert value(got, "torrent_engine_process_open_fds") > 0
    assert value(got, "torrent_engine_asyncio_tasks") >= 2  # (at least the loop-lag probe and this request)
    assert value(got, "torrent_engine_threads") >= 1
    doc = DOC.read_text()
    for name, kind in families.items():  # docs/metrics.md lists every metric under its full name
        if name.endswith("_created"):
            continue  # (prometheus_client's companion of a histogram: the docs say so once)
        shown = f"{name}_total" if kind == "counter" else name
        assert f"| `{shown}` | {kind} |" in doc, (shown, kind)


def test_the_promql_lines_in_the_docs_parse(tmp_path: Path) -> None:
    promtool = require_program("promtool")
    block = DOC.read_text().split("```promql\n")[1].split("```")[0]
    exprs: list[str] = []
    for line in block.splitlines():
        if line.startswith("  "):
            exprs[-1] += " " + line.strip()  # a continued expression
        elif line.strip() and not line.startswith("#"):
            exprs.append(line.strip())
    assert len(exprs) >= 10
    rules = tmp_path / "rules.yml"
    rules.write_text(json.dumps({"groups": [{"name": "docs", "rules": [
        {"record": f"docs:line{i}", "expr": e} for i, e in enumerate(exprs)]}]}))  # (JSON is YAML)
    checked = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr


async def test_promtool_accepts_a_scrape_of_a_running_daemon_with_a_job(tmp_path: Path) -> None:
    promtool = require_program("promtool")
    state = tmp_path / "state"
    log = open(tmp_path / "daemon.log", "ab")  # noqa: SIM115 - closed below
    async with http_tracker(refuse) as tracker, \
            Session(torrent := torrent_with_tracker(tmp_path, tracker), tmp_path / "seed",
                    config=loopback_config()) as seeder:
        await seeder.wait_ready()
        proc = subprocess.Popen(
            [sys.executable, "-m", "torrent_engine", "daemon", "--state-dir", str(state),
             "--download-dir", str(tmp_path / "downloads"), "--api-port", "0", "--api-token", TOKEN,
             "--metrics-token", METRICS_TOKEN, "--listen-host", "127.0.0.1", "--no-dht",
             "--no-port-mapping", "--no-lsd"],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            with anyio.fail_after(60):
                while not (state / "api.json").exists():
                    assert proc.poll() is None, (tmp_path / "daemon.log").read_text()
                    await anyio.sleep(0.05)
            url = json.loads((state / "api.json").read_text())["url"]
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                api = {"Authorization": f"Bearer {TOKEN}"}
                r = await client.post("/api/jobs", headers=api, json={
                    "source": base64.b64encode(torrent.to_bytes()).decode(),
                    "peers": [f"127.0.0.1:{seeder.listen_port}"]})
                assert r.status_code == 201, r.text
                job = r.json()
                job_id = job["id"]
                ids = frozenset({"job": job_id, "info_hash": job["info_hash"]}.items())
                with anyio.fail_after(60):
                    while True:  # seeding, and the tracker's refusal heard
                        r = await client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
                        assert r.status_code == 200, r.text
                        got = samples(r.text)
                        seeding = ("torrent_engine_jobs", frozenset({("state", "seeding")}))
                        if got.get(("torrent_engine_job_tracker_errors_total", ids), 0) >= 1 \
                                and got.get(seeding, 0) == 1:
                            break
                        await anyio.sleep(0.1)
        finally:
            proc.kill()
            proc.wait()
            log.close()
    for line in (f'torrent_engine_job_pieces_verified{{info_hash="{job["info_hash"]}",job="{job_id}"}}',
                 f'torrent_engine_job_tracker_errors_total{{info_hash="{job["info_hash"]}",job="{job_id}"}}',
                 "torrent_engine_piece_write_seconds_bucket", "torrent_engine_event_loop_lag_seconds_bucket",
                 "torrent_engine_process_open_fds "):
        assert line in r.text, line
    checked = subprocess.run([promtool, "check", "metrics"], input=r.content, capture_output=True,
                             timeout=60)
    assert (checked.returncode, checked.stdout, checked.stderr) == (0, b"", b"")
