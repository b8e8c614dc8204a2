"""Copies of .torrent files (qBittorrent's ``export_dir`` and ``export_dir_fin``), set through the
qBittorrent dialect with qbittorrent-api: a new torrent's copy as it is added, a magnet's once its
metadata came from a loopback seeder, and a finished download's as it completes; a folder outside
the download root is refused."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from tests.conftest import require_module
from tests.integration.api_helpers import TOKEN, running_api
from tests.integration.helpers import seeded_magnet, small_v1
from tests.unit.jobs.test_exports import copies
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.jobs import JobState

pytestmark = pytest.mark.anyio

FILES = (("e01.mkv", 40_000), ("e01.nfo", 300))


async def test_new_and_finished_torrents_are_copied_where_the_preferences_say(tmp_path: Path) -> None:
    qbittorrentapi = require_module("qbittorrentapi")
    paused = small_v1(tmp_path / "made", FILES, "Paused", seed=1)
    fetched = small_v1(tmp_path / "seed", FILES, "Fetched", seed=2)
    async with seeded_magnet(fetched, tmp_path / "seed") as link:
        async with running_api(tmp_path / "daemon") as api:
            root = api.download_root
            new, done = root / "copies" / "new", root / "copies" / "done"

            def drive() -> dict[str, object]:
                qbt = qbittorrentapi.Client(host=api.url, username="admin", password=TOKEN,
                                            REQUESTS_ARGS={"timeout": 30})
                qbt.app_set_preferences({"export_dir": str(new), "export_dir_fin": "copies/done"})
                prefs = qbt.app_preferences()
                with pytest.raises(qbittorrentapi.InvalidRequest400Error, match="torrent_export_dir"):
                    qbt.app_set_preferences({"export_dir": "/etc"})
                qbt.torrents_add(torrent_files=paused.to_bytes(), is_paused=True)
                qbt.torrents_add(urls=link)
                return {k: prefs[k] for k in ("export_dir", "export_dir_fin")}

            prefs = await anyio.to_thread.run_sync(drive)
            assert prefs == {"export_dir": str(new), "export_dir_fin": str(done)}
            magnet = next(j for j in api.service.list() if j.info_hash == fetched.info_hash.hex())
            with anyio.fail_after(30):  # (its metadata, then its data, from the seeder; then its copies)
                while api.service.get(magnet.id).state is not JobState.SEEDING or len(copies(new)) < 2 \
                        or not copies(done):
                    await anyio.sleep(0.05)
            assert copies(new) == {"Paused.torrent": paused.info_hash, "Fetched.torrent": fetched.info_hash}
            assert copies(done) == {"Fetched.torrent": fetched.info_hash}  # (the paused one is not done)
            kept = Torrent.from_bytes((done / "Fetched.torrent").read_bytes())
            assert kept.info_bytes == fetched.info_bytes
