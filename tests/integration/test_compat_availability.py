"""What a torrent's peers have, as the dialects say it: Transmission's ``desiredAvailable`` (the
bytes of the wanted pieces a torrent lacks that its connected peers have: ``transmission-remote
-i``'s "Availability", the web client's) and ``etaIdle`` (the seconds before an idle seeding limit
stops a seeding torrent), and qBittorrent's ``torrents/files`` ``availability`` (each file's share
of pieces a peer has). They were ``0``, ``-1`` and ``-1`` whatever the torrent did."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.integration.api_helpers import Api, running_api
from tests.integration.test_api_tracker_scrapes import transmission
from tests.integration.test_jobs_service import seeder
from torrent_engine.jobs import AddOptions, JobState

pytestmark = pytest.mark.anyio

FIELDS = ["id", "leftUntilDone", "desiredAvailable", "haveValid", "sizeWhenDone", "etaIdle"]


async def fields_of(api: Api, number: int) -> dict[str, Any]:
    """``torrent-get``'s ``FIELDS`` of torrent ``number``."""
    got = await transmission(api, "torrent-get", {"ids": [number], "fields": FIELDS})
    torrent: dict[str, Any] = got["torrents"][0]
    return torrent


async def torrent_set(api: Api, number: int, **arguments: object) -> None:
    await transmission(api, "torrent-set", {"ids": [number], **arguments})


async def test_what_the_peers_have_of_what_is_wanted_is_available(tmp_path: Path) -> None:
    files = [("a.bin", 600_000), ("b.bin", 400_000)]
    async with seeder(tmp_path / "seed", files=files, rate=100_000) as (seed, torrent, _):
        async with running_api(tmp_path) as api:
            job, _ = await api.service.add(torrent.to_bytes(), AddOptions(paused=True))
            got = await fields_of(api, job.number)
            assert got["desiredAvailable"] == 0 and got["leftUntilDone"] > 0  # (no peer)
            await torrent_set(api, job.number, **{"files-unwanted": [1]})  # (b.bin: the second file
            # torrent-get lists, a pad file before it in the metainfo, which was unwanted instead)
            assert [(f.path.rsplit("/")[-1], f.selected) for f in api.service.get(job.id).files] == [
                ("a.bin", True), ("b.bin", False)]
            await api.service.resume(job.id)
            await api.service.add_peers(job.id, [("127.0.0.1", seed.listen_port)])
            with anyio.fail_after(30):  # (slowly: the seeder sends 100 kB a second)
                while not (got := await fields_of(api, job.number))["desiredAvailable"]:
                    await anyio.sleep(0.05)
            # the seeder has every piece: all that is left of a.bin is available, none of b.bin's alone
            assert got["desiredAvailable"] == got["leftUntilDone"] > 0
            assert got["sizeWhenDone"] < torrent.payload_size  # (b.bin is not wanted)
            assert got["etaIdle"] == -1  # (not seeding)
            h = torrent.info_hash.hex()
            files = (await api.client.get("/api/v2/torrents/files", params={"hash": h})).json()
            assert [f["availability"] for f in files] == [1.0, 1.0]  # (the seeder has every piece)


async def test_a_seeding_torrent_under_an_idle_limit_says_when_it_reaches_it(tmp_path: Path) -> None:
    async with seeder(tmp_path / "seed", files=[("t.bin", 50_000)]) as (seed, torrent, _):
        async with running_api(tmp_path) as api:
            job, _ = await api.service.add(torrent.to_bytes(), peers=[("127.0.0.1", seed.listen_port)])
            with anyio.fail_after(30):
                while api.service.get(job.id).state is not JobState.SEEDING:
                    await anyio.sleep(0.05)

            async def eta_idle() -> int:
                return int((await fields_of(api, job.number))["etaIdle"])

            assert await eta_idle() == -1  # (no idle limit)
            await torrent_set(api, job.number, seedIdleMode=1, seedIdleLimit=30)
            # (a list's view keeps its seeding times for up to a minute: LISTED_SEEDING_TIME_STEP)
            idle = api.service.get(job.id).idle_seeding_time
            assert abs(await eta_idle() - (30 * 60 - idle)) <= 62
            await transmission(api, "session-set", {"idle-seeding-limit-enabled": True,
                                                    "idle-seeding-limit": 10})
            await torrent_set(api, job.number, seedIdleMode=0)  # (the session's)
            idle = api.service.get(job.id).idle_seeding_time
            assert abs(await eta_idle() - (10 * 60 - idle)) <= 62
