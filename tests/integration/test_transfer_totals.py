"""The service's transfer statistics, this run's and every run's (``jobs/totals.py``): the bytes a
download moved stay counted when its job is removed, the runs add up across a restart
(``stats.json``), and each door shows them as its client reads them: qBittorrent's session
``dl_info_data`` beside its ``alltime_dl``, Transmission's ``current-stats`` beside its
``cumulative-stats`` (it had shown one for the other, with ``sessionCount`` 1 and
``secondsActive`` 0 always), our ``/api/stats`` ``transfer`` and ``/metrics``' counters."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.integration.api_helpers import downloaded, running_api
from tests.integration.test_api_tracker_scrapes import transmission
from tests.integration.test_jobs_service import seeder
from torrent_engine.jobs import TransferCounts
from torrent_engine.jobs.totals import STATS_FILE, read_counts

pytestmark = pytest.mark.anyio

SIZE = 400_000


async def test_what_moved_is_counted_this_run_and_across_runs_in_every_door(tmp_path: Path) -> None:
    async with seeder(tmp_path / "seed", files=[("t.bin", SIZE)]) as (seed, torrent, _):
        async with running_api(tmp_path) as api:
            await downloaded(api, torrent, [("127.0.0.1", seed.listen_port)])
            first = api.service.stats().transfer
            assert first.session.downloaded >= SIZE and first.session.added == 1
            assert first.session.session_count == 1 and first.all_time == first.session
            r = await api.client.post("/api/v2/torrents/delete", data={"hashes": torrent.info_hash.hex(),
                                                                         "deleteFiles": "false"})
            assert r.status_code == 200, r.text
            await api.service.clear_history()  # (its record too)
            assert len(api.service) == 0
            stats = api.service.stats()
            assert stats.downloaded == 0  # (the jobs' own totals: it left)
            assert stats.transfer.session.downloaded == first.session.downloaded  # (what it moved stays)
            state = (await api.client.get("/api/v2/sync/maindata")).json()["server_state"]
            assert (state["dl_info_data"], state["alltime_dl"]) == (first.session.downloaded,) * 2
            ours = (await api.client.get("/api/stats")).json()["transfer"]
            assert ours["session"]["downloaded"] == first.session.downloaded and ours["session"]["added"] == 1
            metrics = (await api.client.get("/metrics")).text
            assert f"torrent_engine_downloaded_bytes_total {float(first.session.downloaded)}" in metrics
        saved = read_counts(tmp_path / "state")
        assert (saved.downloaded, saved.added, saved.session_count) == (first.session.downloaded, 1, 1)

        async with running_api(tmp_path) as api:  # (a restart: another run)
            now = api.service.stats().transfer
            assert (now.session.downloaded, now.session.added, now.session.session_count) == (0, 0, 1)
            assert (now.all_time.downloaded, now.all_time.added, now.all_time.session_count) == (
                first.session.downloaded, 1, 2)
            got = await transmission(api, "session-stats", {})
            current, cumulative = got["current-stats"], got["cumulative-stats"]
            assert (current["downloadedBytes"], current["filesAdded"], current["sessionCount"]) == (0, 0, 1)
            assert (cumulative["downloadedBytes"], cumulative["filesAdded"], cumulative["sessionCount"]) == (
                first.session.downloaded, 1, 2)
            assert cumulative["secondsActive"] >= current["secondsActive"] >= 0
            state = (await api.client.get("/api/v2/transfer/info")).json()
            assert state["dl_info_data"] == 0
            state = (await api.client.get("/api/v2/sync/maindata")).json()["server_state"]
            assert (state["dl_info_data"], state["alltime_dl"]) == (0, first.session.downloaded)
    assert read_counts(tmp_path / "state").session_count == 2


@pytest.mark.parametrize(("text", "kept", "said"), [
    ("{", TransferCounts(), "unreadable"),
    ("[1]", TransferCounts(), "not a JSON object"),
    ('{"downloaded": 5, "uploaded": -1, "added": "x", "session_count": 2}',
     TransferCounts(downloaded=5, session_count=2), "uploaded = -1"),
])
def test_a_stats_file_that_cannot_be_read_is_said_and_its_good_counts_kept(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, text: str, kept: TransferCounts, said: str) -> None:
    (tmp_path / STATS_FILE).write_text(text)
    with caplog.at_level(logging.WARNING, logger="torrent_engine.jobs.totals"):
        assert read_counts(tmp_path) == kept
    assert any(said in r.getMessage() and STATS_FILE in r.getMessage() for r in caplog.records)
    assert read_counts(tmp_path / "none") == TransferCounts() and read_counts(None) == TransferCounts()


async def test_a_stats_file_that_cannot_be_written_is_said_and_the_service_goes_on(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="torrent_engine.jobs.totals"):
        async with running_api(tmp_path) as api:
            (tmp_path / "state" / STATS_FILE).mkdir()  # (a folder where the file goes: not replaced)
            await api.service.add("magnet:?xt=urn:btih:" + "ab" * 20, paused=True)
            assert (await api.client.get("/api/stats")).json()["transfer"]["session"]["added"] == 1
        # (the stop wrote the records and tried the counts: said, and the stop ended)
    assert any("could not be written" in r.getMessage() and STATS_FILE in r.getMessage()
               for r in caplog.records)
    async with running_api(tmp_path) as api:
        assert len(api.service) == 1  # (the records were kept)


async def test_a_torrents_session_counts_are_this_runs_and_its_totals_every_runs(tmp_path: Path) -> None:
    # qBittorrent's downloaded_session and total_downloaded_session were the job's every-run totals
    async with seeder(tmp_path / "seed", files=[("t.bin", SIZE)]) as (seed, torrent, _):
        async with running_api(tmp_path) as api:
            done = job = await downloaded(api, torrent, [("127.0.0.1", seed.listen_port)])
            assert done.downloaded >= SIZE and done.run_downloaded == done.downloaded
            h = torrent.info_hash.hex()
            row = (await api.client.get("/api/v2/torrents/info", params={"hashes": h})).json()[0]
            assert row["downloaded_session"] == row["downloaded"] == done.downloaded
            props = (await api.client.get("/api/v2/torrents/properties", params={"hash": h})).json()
            assert props["total_downloaded_session"] == props["total_downloaded"] == done.downloaded
    async with running_api(tmp_path) as api:  # (a restart: another run; the seeder has gone)
        again = api.service.get(job.id)
        assert (again.downloaded, again.run_downloaded, again.run_uploaded) == (done.downloaded, 0, 0)
        ours = (await api.client.get(f"/api/jobs/{job.id}")).json()
        assert (ours["downloaded"], ours["run_downloaded"]) == (done.downloaded, 0)
        row = (await api.client.get("/api/v2/torrents/info", params={"hashes": h})).json()[0]
        shown = (row["downloaded"], row["downloaded_session"], row["uploaded_session"])
        assert shown == (done.downloaded, 0, 0)
        props = (await api.client.get("/api/v2/torrents/properties", params={"hash": h})).json()
        assert (props["total_downloaded"], props["total_downloaded_session"]) == (done.downloaded, 0)
