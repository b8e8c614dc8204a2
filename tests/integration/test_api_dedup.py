"""Our API's ``POST /api/dedup/match``: which of a torrent's files the daemon holds whole, as an add
would take them — a v1 file found by its length and pieces in a complete job, a v2 file by its
pieces root, a small file not looked for, a file of the same length with other bytes not held —
with nothing added or written; a magnet and bad input refused naming the field; dedup off says
so; a user (not an admin) refused."""

from __future__ import annotations

import base64
import os
import random
from pathlib import Path

import anyio
import pytest

from tests.integration.api_helpers import Api, running_api, seeding_job
from tests.integration.helpers import make_torrent
from tests.integration.test_api_users import as_user, users
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.jobs.disk.dedup import LENGTH_MATCH_MIN

pytestmark = pytest.mark.anyio

SIZE = 1_572_867
V2_SIZE = 300_001  # (a file is found by its pieces root whatever its size)


def b64(t: Torrent) -> str:
    return base64.b64encode(t.to_bytes()).decode()


def write(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


async def held(api: Api) -> tuple[str, str, bytes, bytes]:
    """A complete v1 job (a 1.5 MiB file) and a complete hybrid one (a 300 KB file, known by its
    pieces root) in the download folder, known to the dedup: their ids, and the two files' bytes.
    (A v2-only torrent of a folder with one file is a single-file torrent: its file is not in
    the folder, as libtorrent reads it too.)"""
    rng = random.Random(5)
    big, small = rng.randbytes(SIZE), rng.randbytes(V2_SIZE)
    c = make_torrent(write(api.download_root / "C", {"c.bin": small}), piece_length=32 * 1024,
                     version="hybrid")
    v1 = await seeding_job(api, make_torrent(write(api.download_root / "A", {"a.mkv": big}),
                                             piece_length=32 * 1024, version="v1"))
    v2 = await seeding_job(api, c)
    root = c.files[0].pieces_root
    assert root is not None
    with anyio.fail_after(10):
        while not api.service.dedup.of_length(SIZE) or not api.service.dedup.known(root):
            await anyio.sleep(0.02)
    return v1, v2, big, small


async def test_a_torrents_files_held_are_named_with_how_each_was_found(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        v1, v2, big, small = await held(api)
        decoy = bytearray(big)
        decoy[:1000] = bytes(1000)
        b = make_torrent(write(tmp_path / "mk" / "Show", {
            "Show.mkv": big, "extra.bin": small, "other.mkv": bytes(decoy)[:SIZE - 1] + b"x",
            "notes.nfo": os.urandom(5000)}), piece_length=64 * 1024, version="hybrid")
        jobs_before = len(api.service.list())
        r = await api.client.post("/api/dedup/match", json={"source": b64(b)})
        assert r.status_code == 200, r.text
        answer = r.json()
        assert answer["info_hash"] == b.info_hash.hex() and answer["mode"] == "reflink"
        assert answer["length_from"] == LENGTH_MATCH_MIN and answer["pieces_sampled"] == 8
        files = {f["path"].split("/")[-1]: f for f in answer["files"]}
        assert set(files) == {"Show.mkv", "extra.bin", "other.mkv", "notes.nfo"}  # (no pad file)
        assert files["Show.mkv"]["held"] == {"path": str(api.download_root / "A" / "a.mkv"), "job_id": v1,
                                             "by": "length and pieces"}
        assert files["extra.bin"]["held"] == {"path": str(api.download_root / "C" / "c.bin"), "job_id": v2,
                                              "by": "pieces root"}
        assert files["other.mkv"]["held"] is None
        assert files["other.mkv"]["why"] == "none of the 1 file(s) of its size holds its pieces"
        assert files["notes.nfo"]["held"] is None
        assert files["notes.nfo"]["why"] == ("no file held has its pieces root (under 1048576 bytes, not "
                                             "looked for by length)")
        assert answer["held_bytes"] == SIZE + V2_SIZE
        assert answer["total_bytes"] == SIZE + V2_SIZE + SIZE + 5000
        # nothing added, nothing written
        assert len(api.service.list()) == jobs_before
        assert sorted(p.name for p in api.download_root.iterdir()) == ["A", "C"]


async def test_a_v1_file_with_no_file_of_its_length_says_so(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        await held(api)
        b = make_torrent(write(tmp_path / "mk" / "One", {"one.bin": os.urandom(SIZE + 1)}), version="v1")
        r = await api.client.post("/api/dedup/match", json={"source": b64(b)})
        assert r.status_code == 200, r.text
        [f] = r.json()["files"]
        assert (f["held"], f["why"], r.json()["held_bytes"]) == (None, "no file held has its length", 0)


async def test_a_magnet_bad_input_and_a_user_are_refused_and_dedup_off_says_so(tmp_path: Path) -> None:
    users(tmp_path / "state")
    async with running_api(tmp_path) as api:
        t = make_torrent(write(tmp_path / "mk" / "T", {"t.bin": os.urandom(SIZE)}), version="v1")
        magnet = f"magnet:?xt=urn:btih:{t.info_hash.hex()}"
        for body, status in (({"source": magnet}, 400), ({"source": "not base64!"}, 400),
                             ({"source": base64.b64encode(b"d4:infoe").decode()}, 400), ({}, 400)):
            r = await api.client.post("/api/dedup/match", json=body)
            assert r.status_code == status, (body, r.text)
            assert r.json()["field"] == "source", r.text
        r = await api.client.post("/api/dedup/match", json={"source": magnet})
        assert "a magnet's files are not known before its metadata" in r.text
        async with as_user(api, "alice") as alice:
            r = await alice.post("/api/dedup/match", json={"source": b64(t)})
            assert r.status_code == 403, r.text
    async with running_api(tmp_path, config_options={"dedup": "off"}) as api:
        r = await api.client.post("/api/dedup/match", json={"source": b64(t)})
        assert r.status_code == 200, r.text
        assert r.json()["mode"] == "off" and r.json()["held_bytes"] == 0
        assert [(f["held"], f["why"]) for f in r.json()["files"]] == [(None, "dedup is off")]


async def test_the_status_says_what_is_held_and_how_the_folders_walk_went(tmp_path: Path) -> None:
    library = write(tmp_path / "library", {"a.mkv": os.urandom(70_000), "b.nfo": os.urandom(900)})
    missing = tmp_path / "not-mounted"
    async with running_api(tmp_path / "daemon") as api:
        status = (await api.client.get("/api/dedup")).json()
        assert status == {"mode": "reflink", "jobs": 0, "folders": [], "files": 0, "hashed": 0,
                          "walking": False, "hashing": None, "walked_at": None, "truncated": False}
        await seeding_job(api, make_torrent(write(api.download_root / "A", {"a.bin": os.urandom(40_000)}),
                                            version="v1"))
        r = await api.client.patch("/api/settings", json={"dedup_folders": [str(library), str(missing)]})
        assert r.status_code == 200, r.text
        with anyio.fail_after(20):
            while (status := (await api.client.get("/api/dedup")).json())["walked_at"] is None \
                    or status["jobs"] < 1:
                await anyio.sleep(0.02)
        assert status["files"] == status["hashed"] == 2 and not status["walking"]
        assert status["jobs"] == 1
        [there, gone] = status["folders"]
        assert there == {"folder": str(library), "error": None}
        assert gone["folder"] == str(missing) and "No such file" in gone["error"]
        r = await api.client.patch("/api/settings", json={"dedup": "off"})
        assert r.status_code == 200, r.text
        with anyio.fail_after(10):
            while (status := (await api.client.get("/api/dedup")).json())["files"]:
                await anyio.sleep(0.02)
        assert status["mode"] == "off" and status["jobs"] == 0
