"""qBittorrent's ``infohash_v2``: a hybrid torrent's whole v2 info-hash in ``torrents/info``,
``sync/maindata`` and ``torrents/properties``, from its job's record (a list reads no metainfo),
over a restart too; ``""`` for a v1 torrent. It was ``""`` always."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from tests.integration.api_helpers import Api, running_api
from tests.integration.helpers import make_payload, make_torrent
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.jobs import JobState

pytestmark = pytest.mark.anyio


async def _shown(api: Api, torrent: Torrent) -> list[str]:
    """``infohash_v1`` and ``infohash_v2`` as each of the three calls shows them."""
    h = torrent.info_hash.hex()
    row = (await api.client.get("/api/v2/torrents/info", params={"hashes": h})).json()[0]
    synced = (await api.client.get("/api/v2/sync/maindata")).json()["torrents"][h]
    props = (await api.client.get("/api/v2/torrents/properties", params={"hash": h})).json()
    return [shown[key] for shown in (row, synced, props) for key in ("infohash_v1", "infohash_v2")]


async def test_a_hybrid_torrents_v2_hash_is_shown_and_a_v1_torrents_is_empty(tmp_path: Path) -> None:
    hybrid = make_torrent(make_payload(tmp_path / "downloads", [("h.bin", 70_000)], name="hybrid"))
    v1 = make_torrent(make_payload(tmp_path / "downloads", [("o.bin", 70_000)], name="old"), version="v1")
    assert hybrid.info_hash_v1 is not None and hybrid.info_hash_v2 is not None
    expected = {hybrid: [hybrid.info_hash_v1.hex(), hybrid.info_hash_v2.hex()] * 3,
                v1: [v1.info_hash.hex(), ""] * 3}
    async with running_api(tmp_path) as api:
        for torrent in (hybrid, v1):  # (their data is where they are added: each seeds at once)
            job, _ = await api.service.add(torrent.to_bytes())
            with anyio.fail_after(30):
                while api.service.get(job.id).state is not JobState.SEEDING:
                    await anyio.sleep(0.05)
        for torrent, shown in expected.items():
            assert await _shown(api, torrent) == shown
    async with running_api(tmp_path) as api:  # a restart: from the records
        for torrent, shown in expected.items():
            assert await _shown(api, torrent) == shown
