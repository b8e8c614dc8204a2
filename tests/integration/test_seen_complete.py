"""When the swarm last showed a whole copy (libtorrent's ``last_seen_complete``, qBittorrent's
``seen_complete`` and "Last seen complete"): now while a connected peer has every piece, when the
last one left after that, never while none was seen; our own completeness does not count (it
had said when the job completed, and never while it downloaded from a seed). Beside it,
Transmission's ``doneDate``: when a download completed the torrent, none for one whole at its add."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import pytest

from tests.integration.api_helpers import running_api
from tests.integration.test_api_tracker_scrapes import transmission
from tests.integration.test_jobs_service import seeder
from torrent_engine.jobs import JobState

pytestmark = pytest.mark.anyio

SIZE = 400_000


async def test_a_download_sees_its_seed_complete_until_it_leaves_and_keeps_when_across_a_restart(
        tmp_path: Path) -> None:
    async with seeder(tmp_path / "seed", rate=100_000, files=[("t.bin", SIZE)]) as (seed, torrent, _):
        async with running_api(tmp_path) as api:
            assert seed.seen_complete == 0.0  # (a seed alone: itself complete does not count)
            job, _ = await api.service.add(torrent.to_bytes(), peers=[("127.0.0.1", seed.listen_port)])
            h = torrent.info_hash.hex()

            async def shown() -> tuple[int, int]:
                info = (await api.client.get("/api/v2/torrents/info", params={"hashes": h})).json()[0]
                props = (await api.client.get("/api/v2/torrents/properties", params={"hash": h})).json()
                return info["seen_complete"], props["last_seen"]

            with anyio.fail_after(30):
                while api.service.get(job.id).seeds == 0:
                    await anyio.sleep(0.05)
            got = api.service.get(job.id)
            assert got.state is JobState.DOWNLOADING
            assert got.seen_complete_at is not None and abs(got.seen_complete_at - time.time()) < 2
            seen, last = await shown()
            # (it said 0 and -1: never; while the seed is there it is now, and the two requests
            # may straddle a second)
            assert abs(seen - last) <= 1 and abs(seen - time.time()) < 2, (seen, last)
            with anyio.fail_after(60):
                while api.service.get(job.id).state is not JobState.SEEDING \
                        or api.service.get(job.id).seeds:  # (two seeds part)
                    await anyio.sleep(0.05)
            left = time.time()
            await anyio.sleep(1.5)
            await api.service.tick()
            kept = api.service.get(job.id).seen_complete_at
            assert kept is not None and kept <= left + 0.5  # (when it left, not now)
            assert await shown() == (int(kept), int(kept))
            # (Transmission's doneDate: when a download completed it; one whole at its add has none)
            got = await transmission(api, "torrent-get", {"ids": [h], "fields": ["doneDate"]})
            completed = api.service.get(job.id).completed_at
            assert completed is not None and got["torrents"][0]["doneDate"] == int(completed)
        async with running_api(tmp_path) as api:  # (a restart: the record keeps it)
            assert api.service.get(job.id).seen_complete_at == kept
            info = (await api.client.get("/api/v2/torrents/info", params={"hashes": h})).json()[0]
            assert info["seen_complete"] == int(kept)


async def test_a_seed_that_met_no_complete_peer_has_never_seen_one(tmp_path: Path) -> None:
    """(It said when its own download completed, as qbittorrent-nox does not:
    ``tests/interop/test_qbittorrent_values.py``.)"""
    async with seeder(tmp_path / "made", files=[("t.bin", SIZE)]) as (_, torrent, made):
        async with running_api(tmp_path) as api:
            (api.download_root / "payload").mkdir()
            (api.download_root / "payload" / "t.bin").write_bytes((made / "payload" / "t.bin").read_bytes())
            job, _ = await api.service.add(torrent.to_bytes())
            with anyio.fail_after(30):
                while api.service.get(job.id).state is not JobState.SEEDING:
                    await anyio.sleep(0.05)
            await api.service.tick()
            assert api.service.get(job.id).seen_complete_at is None
            h = torrent.info_hash.hex()
            info = (await api.client.get("/api/v2/torrents/info", params={"hashes": h})).json()[0]
            props = (await api.client.get("/api/v2/torrents/properties", params={"hash": h})).json()
            assert (info["seen_complete"], props["last_seen"]) == (0, -1)
            assert info["completion_on"] > 0  # (its completion is its own: shown there)
            got = await transmission(api, "torrent-get", {"ids": [h], "fields": ["doneDate"]})
            assert got["torrents"][0]["doneDate"] == 0  # (no download completed it)
