"""When a job last began to run (``Job.started_at``; Transmission's ``startDate``): 0 while it has
not in this run of the service, the moment it went downloading or seeding after being paused,
queued or stopped, kept while it is paused again, and the service's start for the jobs a restart
runs again (Transmission's ``startDate`` had been the job's add, whatever came after)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.api_helpers import Api, running_api
from tests.integration.test_api_changes import Clock
from tests.integration.test_api_tracker_scrapes import transmission
from tests.integration.test_jobs_service import wait_state
from tests.unit.torrent_factory import make_torrent, payload
from torrent_engine.jobs import JobState

pytestmark = pytest.mark.anyio

DATA = payload(40_000, 11)


async def _start_date(api: Api, number: int) -> int:
    got = await transmission(api, "torrent-get", {"ids": [number], "fields": ["id", "startDate"]})
    date: int = got["torrents"][0]["startDate"]
    return date


async def test_a_jobs_start_date_is_when_it_last_began_to_run(tmp_path: Path) -> None:
    clock = Clock()
    seed = make_torrent([(("s.bin",), DATA)], 16384, name="s")
    other = make_torrent([(("o.bin",), payload(20_000, 12))], 16384, name="o")
    (tmp_path / "downloads" / "s").mkdir(parents=True)
    (tmp_path / "downloads" / "s" / "s.bin").write_bytes(DATA)
    async with running_api(tmp_path, clock=clock) as api:
        job, _ = await api.service.add(seed.to_bytes(), paused=True)
        kept, _ = await api.service.add(other.to_bytes(), paused=True)
        number = api.service.get(job.id).number
        assert api.service.get(job.id).started_at == 0 and await _start_date(api, number) == 0
        clock.now += 100
        await api.service.resume(job.id)
        await wait_state(api.service, job.id, JobState.SEEDING)
        started = clock.now
        assert api.service.get(job.id).started_at == started
        assert await _start_date(api, number) == int(started)
        assert (await api.client.get(f"/api/jobs/{job.id}")).json()["started_at"] == started
        clock.now += 100
        await api.service.pause(job.id)
        await wait_state(api.service, job.id, JobState.PAUSED)
        assert api.service.get(job.id).started_at == started  # (its last start, as Transmission keeps it)
        clock.now += 100
        await api.service.resume(job.id)
        await wait_state(api.service, job.id, JobState.SEEDING)
        assert api.service.get(job.id).started_at == clock.now > started
        assert api.service.get(kept.id).started_at == 0
    clock.now += 1000
    async with running_api(tmp_path, clock=clock) as api:  # (a restart: it runs again from the start)
        await wait_state(api.service, job.id, JobState.SEEDING)
        assert api.service.get(job.id).started_at == clock.now
        assert await _start_date(api, number) == int(clock.now)
        assert api.service.get(kept.id).started_at == 0  # (paused: not started in this run)
