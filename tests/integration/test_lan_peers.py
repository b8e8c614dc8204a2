"""The global rate limits and peers on the local network (qBittorrent's ``limit_lan_peers``):
by default a loopback peer is held to the global download limit as any peer is; with the
setting off (qBittorrent's preference, read and written) it moves at full speed — a download the
limit would hold for a minute completes in seconds — while the torrent's own limit still binds.

As the other rate-limit tests, the bounds are on bytes a limit can let through, never on how
fast a machine is: 16 KiB/s lets at most its one-second burst and 16 KiB a second pass."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from tests.integration.api_helpers import running_api
from tests.integration.test_jobs_service import seeder
from torrent_engine.jobs import JobState

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

SIZE = 1024 * 1024
RATE = 16 * 1024  # the global download limit: the whole file would take a minute through it


async def test_a_loopback_peer_passes_the_global_limit_once_it_does_not_apply_to_the_lan(
        tmp_path: Path) -> None:
    async with seeder(tmp_path / "seed", files=[("f.bin", SIZE)]) as (seed, torrent, _), \
            running_api(tmp_path / "api") as api:
        c = api.client
        assert (await c.get("/api/v2/app/preferences")).json()["limit_lan_peers"] is True
        r = await c.patch("/api/settings", json={"download_limit": RATE})
        assert r.status_code == 200, r.text
        job, _ = await api.service.add(torrent.to_bytes(), peers=[("127.0.0.1", seed.listen_port)])
        with anyio.fail_after(30):
            while api.service.get(job.id).downloaded == 0:
                await anyio.sleep(0.05)
        await anyio.sleep(2.0)
        held = api.service.get(job.id).downloaded
        assert held <= 2 * RATE + 4 * RATE + 64 * 1024, held  # (burst, 2 s and then some: not 1 MiB)

        r = await c.post("/api/v2/app/setPreferences", data={"json": json.dumps({"limit_lan_peers": False})})
        assert r.status_code == 200, r.text
        assert api.service.get_settings().limit_lan_peers is False
        with anyio.fail_after(30):  # (through the limit: a minute more)
            while (done := api.service.get(job.id)).state is not JobState.SEEDING:
                await anyio.sleep(0.05)
        assert done.progress == 1.0
        assert (await c.get("/api/settings")).json()["limit_lan_peers"] is False
