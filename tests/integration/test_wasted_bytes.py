"""Bytes received in pieces that failed their hash check, and bytes received and not needed: the
session counts them (``Session.corrupt``, ``Session.wasted``), a job keeps them across restarts,
and each door shows them as its client reads them — qBittorrent's ``total_wasted`` (both) and
``server_state.total_wasted_session``, Transmission's ``corruptEver``, our job's ``wasted`` and
``corrupt``, the web UI's General tab. Every one of them was 0 whatever came."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from tests.integration.api_helpers import downloaded, running_api
from tests.integration.test_api_tracker_scrapes import transmission
from tests.integration.test_bad_peers import FILES, FakePeer
from torrent_engine import events as ev
from torrent_engine.session import Session

from .helpers import loopback_config, make_payload, make_torrent, same_files

pytestmark = pytest.mark.anyio

PIECE = 16 * 1024
SEED_CONFIG = loopback_config(upload_rate_limit=1_500_000)  # (the liar gets its share of requests)


async def test_a_session_counts_each_failed_piece_whole(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed", FILES), piece_length=PIECE)
    liar = FakePeer(torrent, "liar")  # random bytes for every block asked
    seen: list[ev.Event] = []
    async with anyio.create_task_group() as tg:
        await tg.start(liar.serve)
        async with Session(torrent, tmp_path / "seed", config=SEED_CONFIG) as seed:
            await seed.wait_ready()
            leecher = Session(torrent, tmp_path / "leech", config=loopback_config(encryption="disable"),
                              peers=[("127.0.0.1", liar.port), ("127.0.0.1", seed.listen_port)])
            leecher.events.subscribe("*", seen.append)
            async with leecher:
                with anyio.fail_after(60):
                    await leecher.wait_completed()
                corrupt, wasted, downloaded = leecher.corrupt, leecher.wasted, leecher.downloaded
        tg.cancel_scope.cancel()
    failed = [e.index for e in seen if isinstance(e, ev.PieceHashFailed)]
    assert failed and corrupt == sum(torrent.piece_size(i) for i in failed)
    assert downloaded >= torrent.payload_size + corrupt + wasted  # (among the bytes received)
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []


async def test_every_door_shows_the_bytes_wasted_and_a_job_keeps_them_over_a_restart(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed", FILES), piece_length=PIECE)
    liar = FakePeer(torrent, "liar")
    async with anyio.create_task_group() as tg:
        await tg.start(liar.serve)
        async with Session(torrent, tmp_path / "seed", config=SEED_CONFIG) as seed:
            await seed.wait_ready()
            async with running_api(tmp_path) as api:
                done = job = await downloaded(api, torrent, [("127.0.0.1", liar.port),
                                                             ("127.0.0.1", seed.listen_port)])
                assert done.corrupt > 0  # (each failed piece counted whole: the test above)
                wasted = done.wasted + done.corrupt
                ours = (await api.client.get(f"/api/jobs/{job.id}")).json()
                assert (ours["wasted"], ours["corrupt"]) == (done.wasted, done.corrupt)
                assert (await api.client.get("/api/stats")).json()["transfer"]["session"]["wasted"] == wasted
                h = torrent.info_hash.hex()
                props = (await api.client.get("/api/v2/torrents/properties", params={"hash": h})).json()
                assert props["total_wasted"] == wasted
                row = (await api.client.get("/api/v2/torrents/info", params={"hashes": h})).json()[0]
                assert row["total_wasted"] == wasted
                state = (await api.client.get("/api/v2/sync/maindata")).json()["server_state"]
                assert state["total_wasted_session"] == wasted
                got = await transmission(api, "torrent-get", {"ids": [done.number],
                                                              "fields": ["corruptEver"]})
                assert got["torrents"][0]["corruptEver"] == done.corrupt
        tg.cancel_scope.cancel()

    async with running_api(tmp_path) as api:  # (a restart: the job keeps its counts, the run starts at 0)
        again = api.service.get(job.id)
        assert (again.wasted, again.corrupt) == (done.wasted, done.corrupt)
        props = (await api.client.get("/api/v2/torrents/properties", params={"hash": h})).json()
        assert props["total_wasted"] == wasted
        got = await transmission(api, "torrent-get", {"ids": [again.number], "fields": ["corruptEver"]})
        assert got["torrents"][0]["corruptEver"] == done.corrupt
        state = (await api.client.get("/api/v2/sync/maindata")).json()["server_state"]
        assert state["total_wasted_session"] == 0
        transfer = (await api.client.get("/api/stats")).json()["transfer"]
        assert (transfer["session"]["wasted"], transfer["all_time"]["wasted"]) == (0, wasted)
