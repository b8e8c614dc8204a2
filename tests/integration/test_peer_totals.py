"""The bytes moved with each connected peer: qBittorrent's ``sync/torrentPeers`` ``downloaded``,
``uploaded`` and 2.16's ``contribution`` (what was sent to the peer over what it has, as
qBittorrent computes it), our job's ``peer_list`` (they were 0 whatever moved); the peer's id. And a leecher's
progress as its seed sees it: a peer tells every peer of each piece it completes, those that have
it too (libtorrent's ``send_redundant_have``, its default): a seed showed a leecher of ours at 0 %
from start to end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.integration.api_helpers import Api, running_api, seeding_job
from tests.integration.helpers import loopback_config, make_payload, make_torrent
from tests.integration.test_api_tracker_scrapes import transmission
from tests.integration.test_jobs_service import seeder
from torrent_engine.net.peer.peer_id import CLIENT_PREFIX
from torrent_engine.session import Session

pytestmark = pytest.mark.anyio

SIZE = 400_000


async def _peers(api: Api, info_hash: str) -> dict[str, dict[str, Any]]:
    r = await api.client.get("/api/v2/sync/torrentPeers", params={"hash": info_hash})
    assert r.status_code == 200, r.text
    peers: dict[str, dict[str, Any]] = r.json()["peers"]
    return peers


async def test_what_came_from_a_seeder_is_counted_on_its_row(tmp_path: Path) -> None:
    async with seeder(tmp_path / "seed", rate=100_000, files=[("t.bin", SIZE)]) as (seed, torrent, _), \
            running_api(tmp_path / "api") as api:
        job, _ = await api.service.add(torrent.to_bytes(), peers=[("127.0.0.1", seed.listen_port)])
        with anyio.fail_after(60):  # (the seeder's rate keeps it connected and sending a while)
            while not (rows := await _peers(api, torrent.info_hash.hex())) or \
                    next(iter(rows.values()))["downloaded"] < 50_000:
                await anyio.sleep(0.1)
        row = next(iter(rows.values()))
        assert row["uploaded"] == 0 and row["contribution"] == 0
        detail = (await api.client.get(f"/api/jobs/{job.id}")).json()["peer_list"]
        assert detail[0]["downloaded"] >= row["downloaded"] and detail[0]["uploaded"] == 0
        # the seeder's peer id: whole in ours, its client's 8 bytes in qBittorrent's (2.15.1)
        assert seed.shared is not None and bytes.fromhex(detail[0]["peer_id"]) == seed.shared.peer_id
        assert row["peer_id_client"] == CLIENT_PREFIX.decode()
        # its connection: we want its pieces and it unchokes us, it wants none of ours (qBittorrent's
        # D, Transmission's D; the flags said only where it came from); the handshake through MSE
        assert row["flags"].split()[0] == "D", row["flags"]
        assert "e" in row["flags"].split() or "E" in row["flags"].split(), row["flags"]
        assert {"am_interested", "am_choking", "mse"} <= set(detail[0]["wire"]), detail[0]["wire"]
        assert "peer_choking" not in detail[0]["wire"] and "peer_interested" not in detail[0]["wire"]
        got = await transmission(api, "torrent-get", {"ids": [torrent.info_hash.hex()], "fields": ["peers"]})
        peer = got["torrents"][0]["peers"][0]
        assert (peer["clientIsInterested"], peer["clientIsChoked"]) == (True, False)
        assert peer["isDownloadingFrom"] is True
        assert (peer["peerIsInterested"], peer["isUploadingTo"]) == (False, False)
        assert peer["flagStr"].lstrip("T").startswith("D"), peer["flagStr"]  # (T first: over uTP)
        assert peer["isEncrypted"] == ("E" in row["flags"].split())


async def test_what_went_to_a_leecher_is_counted_on_its_row_with_its_contribution(tmp_path: Path) -> None:
    payload = make_payload(tmp_path / "api" / "downloads", (("s.bin", SIZE),), name="s")
    torrent = make_torrent(payload, piece_length=16 * 1024)
    async with running_api(tmp_path / "api") as api:
        job_id = await seeding_job(api, torrent)
        port = api.service.manager.shared.listen_port
        async with Session(torrent, tmp_path / "leech", config=loopback_config(download_rate_limit=100_000),
                           peers=[("127.0.0.1", port)]) as leecher:
            with anyio.fail_after(60):  # (the leecher tells us the pieces it has: HAVE messages)
                while not (rows := await _peers(api, torrent.info_hash.hex())) or \
                        next(iter(rows.values()))["progress"] <= 0:
                    await anyio.sleep(0.1)
            row = next(iter(rows.values()))
            assert row["downloaded"] == 0 and row["uploaded"] > 0 and len(leecher.have) > 0
            # (qBittorrent's: what it was sent over what it has)
            has = row["progress"] * api.service.get(job_id).torrent_size
            assert row["contribution"] == pytest.approx(row["uploaded"] / has)
            detail = (await api.client.get(f"/api/jobs/{job_id}")).json()["peer_list"]
            assert detail[0]["uploaded"] >= row["uploaded"] and detail[0]["downloaded"] == 0
            # (we lack nothing it could have; nothing is asked of it)
            assert (row["relevance"], row["files"]) == (0, "")
            # it wants our pieces and we unchoke it, we want none of its: U, and it dialed us
            assert row["flags"].split()[0] == "U" and "I" in row["flags"].split(), row["flags"]


async def test_a_seeders_row_says_it_has_all_we_lack_and_the_files_being_fetched_from_it(
        tmp_path: Path) -> None:
    """qBittorrent's ``relevance`` (the share of the pieces we lack that the peer has) and
    ``files`` (those of the piece being downloaded from it, a line each) were 0 and ""."""
    files = [("a.bin", 200_000), ("b.bin", 200_000)]
    async with seeder(tmp_path / "seed", rate=100_000, files=files) as (seed, torrent, _), \
            running_api(tmp_path / "api") as api:
        job, _ = await api.service.add(torrent.to_bytes(), peers=[("127.0.0.1", seed.listen_port)])
        with anyio.fail_after(60):  # (the seeder's rate keeps requests in flight a while)
            while not (rows := await _peers(api, torrent.info_hash.hex())) or \
                    not next(iter(rows.values()))["files"]:
                await anyio.sleep(0.1)
        row = next(iter(rows.values()))
        assert row["relevance"] == 1  # a seed: every piece we lack
        r = await api.client.get("/api/v2/torrents/files", params={"hash": torrent.info_hash.hex()})
        names = {f["name"] for f in r.json()}
        assert names == {"payload/a.bin", "payload/b.bin"}
        assert set(row["files"].split("\n")) <= names
        detail = (await api.client.get(f"/api/jobs/{job.id}")).json()["peer_list"]
        assert detail[0]["relevance"] == 1 and set(detail[0]["files"]) <= names
