"""``POST /api/metadata``: a magnet's files before it is added (the add dialog's file tree), its
info dict fetched from a loopback seeder without a job; then added with the files chosen, from
the .torrent the answer holds; bad input refused naming ``source``."""

from __future__ import annotations

import base64
from pathlib import Path

import anyio
import pytest

from tests.integration.api_helpers import running_api
from tests.integration.helpers import loopback_config, make_payload, make_torrent
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.session import Session

pytestmark = pytest.mark.anyio

FILES = (("a.bin", 40_000), ("sub/b.bin", 30_000), ("sub/c.bin", 20_000))


async def test_a_magnets_files_are_fetched_without_a_job_then_added_with_some_chosen(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed", FILES, name="Fetched"), version="v1",
                           piece_length=16 * 1024)
    async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
        await seeder.wait_ready()
        link = f"{torrent.magnet_uri()}&x.pe=127.0.0.1:{seeder.listen_port}"
        async with running_api(tmp_path / "daemon") as api:
            first = await api.client.post("/api/metadata", json={"source": link})
            assert first.status_code == 202, first.text
            assert first.json() == {"info_hash": torrent.info_hash.hex(), "state": "fetching"}
            assert api.service.list() == []  # (no job: nothing written)
            with anyio.fail_after(30):
                while (answer := await api.client.post("/api/metadata", json={"source": link})) \
                        .status_code == 202:
                    await anyio.sleep(0.1)
            assert answer.status_code == 200, answer.text
            got = answer.json()
            assert (got["state"], got["name"], got["size"]) == ("fetched", "Fetched", 90_000)
            assert [(f["index"], f["path"], f["length"], f["pad"]) for f in got["files"]] == [
                (0, "Fetched/a.bin", 40_000, False), (1, "Fetched/sub/b.bin", 30_000, False),
                (2, "Fetched/sub/c.bin", 20_000, False)]
            assert Torrent.from_bytes(base64.b64decode(got["torrent"])).info_bytes == torrent.info_bytes
            assert api.service.list() == [] and not list(api.state_dir.glob("metadata-*"))
            added = await api.client.post("/api/jobs", json={"source": got["torrent"], "files": [0, 2],
                                                             "paused": True})
            assert added.status_code == 201, added.text
            [job] = api.service.list()
            assert [f.selected for f in job.files] == [True, False, True]


async def test_a_bad_source_or_field_is_refused_by_name(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        for body, field, text in (
                ({}, "source", "is required"),
                ({"source": 7}, "source", "must be a string"),
                ({"source": "https://example.org/x.torrent"}, "source", "not a magnet"),
                ({"source": "magnet:?xt=urn:btih:12"}, "source", ""),
                ({"source": f"magnet:?xt=urn:btih:{1:040x}", "files": [0]}, "files", "only source")):
            r = await api.client.post("/api/metadata", json=body)
            assert r.status_code == 400, (body, r.text)
            assert r.json()["field"] == field and text in r.json()["error"], (body, r.json())
        assert api.service.list() == []


async def test_adding_the_magnet_ends_the_look_at_its_files(tmp_path: Path) -> None:
    magnet = f"magnet:?xt=urn:btih:{3:040x}"
    async with running_api(tmp_path) as api:
        assert (await api.client.post("/api/metadata", json={"source": magnet})).status_code == 202
        assert api.service.metadata_fetching(f"{3:040x}")
        added = await api.client.post("/api/jobs", json={"source": magnet, "paused": True})
        assert added.status_code == 201, added.text
        assert not api.service.metadata_fetching(f"{3:040x}")  # (the job fetches its own)
        again = await api.client.post("/api/metadata", json={"source": magnet})  # (a job of it now)
        assert again.status_code == 409 and added.json()["id"] in again.json()["error"], again.text
        assert not api.service.metadata_fetching(f"{3:040x}")
