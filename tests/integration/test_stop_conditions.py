"""Stop conditions (qBittorrent's "torrent stop condition"), through the qBittorrent dialect
with qbittorrent-api and through our API: a new torrent stops (is paused) by itself once its
metadata is received (a magnet's from a loopback seeder; a .torrent is added paused) or once its
files are checked; the preference is the default, an add's ``stopCondition`` its own."""

from __future__ import annotations

import base64
from pathlib import Path

import anyio
import pytest

from tests.conftest import require_module
from tests.integration.api_helpers import TOKEN, running_api
from tests.integration.helpers import seeded_magnet, small_v1
from torrent_engine.jobs import JobService, JobState
from torrent_engine.session.checking import Checker
from torrent_engine.session.phases import Checking

pytestmark = pytest.mark.anyio

FILES = (("e01.mkv", 40_000), ("e01.srt", 3_000))


async def wait_state(service: JobService, info_hash: str, state: JobState) -> None:
    with anyio.fail_after(30):
        while (job := next((j for j in service.list() if j.info_hash == info_hash), None)) is None \
                or job.state is not state:
            await anyio.sleep(0.05)


async def test_torrents_stop_once_their_metadata_is_received_or_their_files_checked(tmp_path: Path) -> None:
    qbittorrentapi = require_module("qbittorrentapi")
    fetched = small_v1(tmp_path / "seed", FILES, "Fetched")
    made = tmp_path / "made"
    given, free = small_v1(made, FILES, "Given", seed=2), small_v1(made, FILES, "Free", seed=4)
    checked = small_v1(tmp_path / "daemon" / "downloads", FILES, "Checked", seed=3)  # (its data there)
    async with seeded_magnet(fetched, tmp_path / "seed") as link:
        async with running_api(tmp_path / "daemon") as api:
            assert api.download_root == (tmp_path / "daemon" / "downloads").resolve()
            qbt = qbittorrentapi.Client(host=api.url, username="admin", password=TOKEN,
                                        REQUESTS_ARGS={"timeout": 30})

            def prefer() -> object:
                assert qbt.app_preferences()["torrent_stop_condition"] == "None"
                qbt.app_set_preferences({"torrent_stop_condition": "MetadataReceived"})
                with pytest.raises(qbittorrentapi.InvalidRequest400Error, match="torrent_stop_condition"):
                    qbt.app_set_preferences({"torrent_stop_condition": "Later"})
                qbt.torrents_add(urls=link)  # (the preference's condition)
                qbt.torrents_add(torrent_files=given.to_bytes())
                qbt.torrents_add(torrent_files=checked.to_bytes(), stop_condition="FilesChecked")
                qbt.torrents_add(torrent_files=free.to_bytes(), stop_condition="None")
                return qbt.app_preferences()["torrent_stop_condition"]

            assert await anyio.to_thread.run_sync(prefer) == "MetadataReceived"
            await wait_state(api.service, fetched.info_hash.hex(), JobState.PAUSED)  # (its files known)
            magnet = next(j for j in api.service.list() if j.info_hash == fetched.info_hash.hex())
            assert [f.path for f in magnet.files] == ["Fetched/e01.mkv", "Fetched/e01.srt"]
            assert magnet.progress == 0.0 and magnet.options.paused  # (no piece asked for before it stopped)
            await wait_state(api.service, given.info_hash.hex(), JobState.PAUSED)  # (added paused)
            await wait_state(api.service, checked.info_hash.hex(), JobState.PAUSED)  # (checked: complete)
            done = next(j for j in api.service.list() if j.info_hash == checked.info_hash.hex())
            assert done.progress == 1.0 and done.downloaded == 0
            await wait_state(api.service, free.info_hash.hex(), JobState.DOWNLOADING)  # (none: not stopped)

            def states() -> dict[str, str]:
                return {t.name: t.state for t in qbt.torrents_info()}
            shown = await anyio.to_thread.run_sync(states)
            assert (shown["Fetched"], shown["Given"], shown["Checked"], shown["Free"]) == (
                "stoppedDL", "stoppedDL", "stoppedUP", "stalledDL")  # (5.0's names)
            # (stopped once: resumed, the magnet downloads what its user chose meanwhile)
            await api.service.update(magnet.id, file_priorities={1: 0})
            await api.service.resume(magnet.id)
            await wait_state(api.service, fetched.info_hash.hex(), JobState.SEEDING)
            now = api.service.get(magnet.id)
            assert now.total_size == 40_000 and now.progress == 1.0


async def test_our_api_takes_a_stop_condition_at_the_add_and_as_a_setting(tmp_path: Path) -> None:
    torrent = small_v1(tmp_path / "made", FILES, "Ours")
    async with running_api(tmp_path / "daemon") as api:
        r = await api.client.patch("/api/settings", json={"stop_condition": "whenever"})
        assert r.status_code == 400 and r.json()["field"] == "stop_condition", r.text
        r = await api.client.patch("/api/settings", json={"stop_condition": "files_checked"})
        assert r.status_code == 200 and r.json()["stop_condition"] == "files_checked", r.text
        r = await api.client.post("/api/jobs", json={"source": torrent.magnet_uri(), "stop_condition": 3})
        assert r.status_code == 400 and r.json()["field"] == "stop_condition", r.text
        r = await api.client.post("/api/jobs", json={"source": "magnet:?xt=urn:btih:" + "d" * 40,
                                                     "stop_condition": "metadata_received"})
        assert r.status_code == 201, r.text
        r = await api.client.post("/api/jobs", json={"source": base64.b64encode(torrent.to_bytes()).decode(),
                                                     "stop_condition": "metadata_received"})
        assert r.status_code == 201 and r.json()["state"] == "paused", r.text  # (its metainfo is here)


async def test_a_torrent_added_paused_shows_paused_before_its_session_has_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A session added paused is "queued" until its start-up check has looked (then it checks, if
    its data is there, and pauses): the add's answer, made before that on a loaded machine, said
    "queued" for a job the user had paused (the stop condition's test above, now and then in the
    suite). Here each session's start-up check begins a second late; the add, the list and the
    job say paused throughout."""
    torrent = small_v1(tmp_path / "made", FILES, "Waits")
    check = Checker.check

    async def late_check(checker: Checker, checking: Checking) -> None:
        await anyio.sleep(1.0)
        await check(checker, checking)

    monkeypatch.setattr(Checker, "check", late_check)
    async with running_api(tmp_path / "daemon") as api:
        source = base64.b64encode(torrent.to_bytes()).decode()
        r = await api.client.post("/api/jobs", json={"source": source, "paused": True})
        assert r.status_code == 201, r.text
        session = api.service.manager.get(r.json()["info_hash"])
        assert session is not None and session.state.value == "queued"  # (it has not run yet)
        assert r.json()["state"] == "paused", r.text
        job_id = r.json()["id"]
        assert (await api.client.get(f"/api/jobs/{job_id}")).json()["state"] == "paused"
        with anyio.fail_after(30):  # (once it has run: paused by its own step)
            while session.state.value != "paused":
                await anyio.sleep(0.05)
        assert (await api.client.get(f"/api/jobs/{job_id}")).json()["state"] == "paused"
