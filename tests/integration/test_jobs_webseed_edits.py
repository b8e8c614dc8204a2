"""Editing a job's web seeds (BEP 19): the list starts as the torrent's url-list; one put in its
place serves the download at once, one removed is no longer asked; a URL that is not http(s) is
refused naming it; the edited list is the job's after a restart."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from urllib.parse import quote

import anyio
import pytest

from tests.integration.helpers import loopback_config, make_payload, make_torrent, same_files
from tests.unit.webseed._webseed_server import http_server, ranged
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.jobs import JobService, JobState
from torrent_engine.jobs.model import InvalidJobRequest

pytestmark = pytest.mark.anyio


def served_files(torrent: Torrent, folder: Path) -> dict[str, bytes]:
    return {"/pub/" + "/".join(quote(p, safe="") for p in f.path): folder.joinpath(*f.path).read_bytes()
            for f in torrent.files if not f.pad}


async def test_edited_web_seeds_serve_the_job_at_once_and_are_kept_across_a_restart(tmp_path: Path) -> None:
    plain = make_torrent(make_payload(tmp_path / "seed"), version="v1")
    files = served_files(plain, tmp_path / "seed")
    state_dir = tmp_path / "state"
    config = loopback_config(state_dir=state_dir)
    async with http_server(lambda path, s, e: (b"", True)) as stuck, \
            http_server(lambda path, s, e: (ranged(files[path], s, e), True)) as good:
        listed, given = stuck.url("/pub/"), good.url("/pub/")
        torrent = dataclasses.replace(plain, web_seeds=(listed, "ftp://ignored.example/"))
        async with JobService(config, download_root=tmp_path / "downloads", state_dir=state_dir) as jobs:
            job, _ = await jobs.add(torrent)
            assert jobs.web_seeds(job.id) == [listed]  # (the url-list's usable URLs)
            with anyio.fail_after(10):
                while not stuck.requests:
                    await anyio.sleep(0.02)
            with pytest.raises(InvalidJobRequest, match="gopher://x/") as err:
                await jobs.set_web_seeds(job.id, [given, "gopher://x/"])
            assert err.value.field == "web_seeds"
            assert jobs.web_seeds(job.id) == [listed]  # (nothing changed)
            await jobs.set_web_seeds(job.id, [given])
            asked = len(stuck.requests)
            with anyio.fail_after(30):
                while jobs.get(job.id).state is not JobState.SEEDING:
                    await anyio.sleep(0.02)
            assert len(stuck.requests) == asked and good.requests
            assert jobs.web_seeds(job.id) == [given]
        async with JobService(config, download_root=tmp_path / "downloads", state_dir=state_dir) as again:
            assert again.web_seeds(job.id) == [given]
            assert again.get(job.id).state in (JobState.SEEDING, JobState.CHECKING)
    assert same_files(plain, tmp_path / "seed", tmp_path / "downloads") == []
