"""``torrents/add`` of WebAPI 2.14–2.16 (issue 45): ``seedMode`` (2.16's name for
``skip_checking``) and the counted answer 2.14 gives, driven by the real ``qbittorrent-api``."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import pytest

from tests.conftest import require_module
from tests.integration.api_helpers import running_api
from tests.integration.helpers import make_payload, make_torrent
from tests.integration.test_compat_qbittorrent_webapi216 import MAGNET, client_of, five_pieces
from torrent_engine.jobs import JobState

pytestmark = pytest.mark.anyio

FILES = (("a.bin", 70_003), ("b.bin", 30_001))


def add_counted(url: str, data: bytes, info_hash: str) -> None:
    qbittorrentapi = require_module("qbittorrentapi")
    client = client_of(url)
    answer = client.torrents_add(urls=[MAGNET, "not a link"], torrent_files=data, is_paused=True)
    assert dict(answer) == {"success_count": 2, "failure_count": 1, "pending_count": 0,
                            "added_torrent_ids": [info_hash, "c" * 40]}
    with pytest.raises(qbittorrentapi.Conflict409Error):  # (none added: both there already)
        client.torrents_add(urls=[MAGNET, "c" * 40], is_paused=True)  # (a bare info-hash is a magnet)


async def test_add_answers_counts_as_webapi_214(tmp_path: Path) -> None:
    torrent = five_pieces()
    async with running_api(tmp_path) as api:
        await anyio.to_thread.run_sync(add_counted, api.url, torrent.to_bytes(), torrent.info_hash.hex())
        r = await api.client.post("/api/v2/torrents/add", data={"urls": MAGNET})
        assert (r.status_code, r.text) == (409, "Conflict")
        r = await api.client.post("/api/v2/torrents/add", data={})
        assert r.status_code == 400
        r = await api.client.post("/api/v2/torrents/add", files={"torrents": ("x.torrent", b"not bencode")})
        assert r.status_code == 415  # (qBittorrent's BadData)
        assert len(api.service.client_jobs()) == 2


def add_seed_mode(url: str, save: str, seeded: bytes, checked: bytes) -> None:
    client = client_of(url)
    # (qbittorrent-api sends is_skip_checking as both seedMode and skip_checking: seedMode is read)
    added = client.torrents_add(torrent_files=seeded, save_path=save, is_skip_checking=True)
    assert added["success_count"] == 1
    client._post(_name="torrents", _method="add", data={"savepath": save, "seedMode": "false",
                                                        "skip_checking": "true"},
                 files={"torrents": ("checked.torrent", checked)})


async def test_seed_mode_adds_a_seeding_job_and_wins_over_skip_checking(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        save = api.download_root / "x"
        seeded = make_torrent(make_payload(save, FILES, name="seeded"), piece_length=16384)
        checked = make_torrent(make_payload(save, FILES, name="checked", seed=2), piece_length=16384)
        await anyio.to_thread.run_sync(add_seed_mode, api.url, str(save), seeded.to_bytes(),
                                       checked.to_bytes())
        with anyio.fail_after(20):
            while not all(j.state is JobState.SEEDING for j in api.service.client_jobs()):
                await anyio.sleep(0.05)
        jobs = {j.name: j for j in api.service.client_jobs()}
        assert jobs["seeded"].seed_mode and not jobs["checked"].seed_mode


def super_seed_at_limit(url: str, save: str, data: bytes, info_hash: str) -> None:
    client = client_of(url)
    added = client.torrents_add(torrent_files=data, save_path=save, is_skip_checking=True, ratio_limit=0,
                                share_limit_action="EnableSuperSeeding")
    assert added["added_torrent_ids"] == [info_hash]
    deadline = time.monotonic() + 20
    while not (t := client.torrents_info(torrent_hashes=info_hash)[0]).super_seeding:
        assert time.monotonic() < deadline, dict(t)
        time.sleep(0.1)
    assert t.state in ("uploading", "stalledUP") and t.share_limit_action == "EnableSuperSeeding"


async def test_a_share_limit_of_enable_super_seeding_turns_it_on_and_the_torrent_seeds_on(
        tmp_path: Path) -> None:
    """qBittorrent's ``EnableSuperSeeding`` (2.12): at its ratio limit (0 here) the torrent
    super-seeds and goes on seeding, instead of stopping."""
    async with running_api(tmp_path) as api:
        save = api.download_root / "x"
        seeded = make_torrent(make_payload(save, FILES, name="seeded"), piece_length=16384)
        await anyio.to_thread.run_sync(super_seed_at_limit, api.url, str(save), seeded.to_bytes(),
                                       seeded.info_hash.hex())
        [job] = api.service.client_jobs()
        assert job.state is JobState.SEEDING and job.options.super_seeding


def add_to_top(url: str, first: bytes, second: bytes, third: bytes) -> list[tuple[int, str]]:
    qbittorrentapi = require_module("qbittorrentapi")
    client = client_of(url)
    assert client.app_preferences()["add_to_top_of_queue"] is False
    client.app_set_preferences({"queueing_enabled": True})
    client.torrents_add(torrent_files=first, is_paused=True)
    client.app_set_preferences({"add_to_top_of_queue": True})
    assert client.app_preferences()["add_to_top_of_queue"] is True
    client.torrents_add(torrent_files=second, is_paused=True)  # (says nothing: the preference's)
    client.torrents_add(torrent_files=third, is_paused=True, add_to_top_of_queue=False)
    with pytest.raises(qbittorrentapi.InvalidRequest400Error, match="add_to_top_of_queue"):
        client.app_set_preferences({"add_to_top_of_queue": "yes"})
    return sorted((t.priority, t.name) for t in client.torrents_info())


async def test_the_add_to_top_of_queue_preference_puts_new_torrents_first_unless_the_add_says(
        tmp_path: Path) -> None:
    """qBittorrent's add_to_top_of_queue (answered false always before): a torrent added while it
    is on takes the first place in the queue unless ``addToTopOfQueue`` says otherwise."""
    torrents = [five_pieces(name) for name in ("first", "second", "third")]
    async with running_api(tmp_path) as api:
        order = await anyio.to_thread.run_sync(add_to_top, api.url, *(t.to_bytes() for t in torrents))
        assert [name for _, name in order] == ["second", "first", "third"]
        assert api.service.get_settings().add_to_top_of_queue
