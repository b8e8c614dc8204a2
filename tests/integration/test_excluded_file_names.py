"""Excluded file names (qBittorrent's "excluded file names"), set through the qBittorrent dialect
with qbittorrent-api: a new torrent's files of those names, or in folders of them, are not
downloaded (a magnet's once its metadata came from a loopback seeder); an add that chooses its
files, and a torrent added once the setting is off, keep every file."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from tests.conftest import require_module
from tests.integration.api_helpers import TOKEN, running_api
from tests.integration.helpers import seeded_magnet, small_v1
from torrent_engine.jobs import JobState

pytestmark = pytest.mark.anyio

FILES = (("e01.mkv", 40_000), ("e01.nfo", 300), ("Sample/e01.mkv", 5_000))


async def test_files_of_excluded_names_are_not_downloaded_by_new_torrents(tmp_path: Path) -> None:
    qbittorrentapi = require_module("qbittorrentapi")
    show, chosen, later = (small_v1(tmp_path / "made", FILES, name, seed=i)
                           for i, name in enumerate(("Show", "Chosen", "Later"), 1))
    fetched = small_v1(tmp_path / "seed", FILES, "Fetched", seed=4)
    async with seeded_magnet(fetched, tmp_path / "seed") as link:
        async with running_api(tmp_path / "daemon") as api:
            def drive() -> tuple[dict[str, object], dict[str, int]]:
                qbt = qbittorrentapi.Client(host=api.url, username="admin", password=TOKEN,
                                            REQUESTS_ARGS={"timeout": 30})
                qbt.app_set_preferences({"excluded_file_names_enabled": True,
                                         "excluded_file_names": "*.NFO\n\nsample\n"})
                prefs = qbt.app_preferences()
                with pytest.raises(qbittorrentapi.InvalidRequest400Error, match="excluded_file_names"):
                    qbt.app_set_preferences({"excluded_file_names": "Sample/*.mkv"})
                qbt.torrents_add(torrent_files=show.to_bytes(), is_paused=True)
                qbt.torrents_add(urls=link)
                return ({k: prefs[k] for k in ("excluded_file_names_enabled", "excluded_file_names")},
                        {f.name: f.priority for f in qbt.torrents_files(torrent_hash=show.info_hash.hex())})

            prefs, priorities = await anyio.to_thread.run_sync(drive)
            assert prefs == {"excluded_file_names_enabled": True, "excluded_file_names": "*.NFO\nsample"}
            assert priorities == {"Show/e01.mkv": 1, "Show/e01.nfo": 0, "Show/Sample/e01.mkv": 0}
            job, _ = await api.service.add(chosen, files=[0, 1, 2], paused=True)  # (its own choice)
            assert [f.priority for f in api.service.get(job.id).files] == [4, 4, 4]
            magnet = next(j for j in api.service.list() if j.info_hash == fetched.info_hash.hex())
            with anyio.fail_after(30):  # (its metadata, then the wanted file, from the seeder)
                while (now := api.service.get(magnet.id)).state is not JobState.SEEDING:
                    await anyio.sleep(0.05)
            assert {f.path: f.priority for f in now.files} == {"Fetched/e01.mkv": 4, "Fetched/e01.nfo": 0,
                                                          "Fetched/Sample/e01.mkv": 0}
            assert now.total_size == 40_000 and now.progress == 1.0
            data = api.download_root / "Fetched"
            assert (data / "e01.mkv").read_bytes() == (tmp_path / "seed" / "Fetched" / "e01.mkv").read_bytes()
            await api.service.update_settings(excluded_file_names_enabled=False)
            job, _ = await api.service.add(later, paused=True)
            assert [f.priority for f in api.service.get(job.id).files] == [4, 4, 4]
