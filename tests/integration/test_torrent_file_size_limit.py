"""The .torrent file size limit (the job service's ``torrent_file_size_limit``, qBittorrent's
preference of that name): read and set at our API and as qBittorrent's preference, a bad value
refused naming the field; a .torrent over it refused at every door (our upload and base64, the
qBittorrent and Transmission dialects, a library add, a URL fetched) saying so, nothing added;
the same .torrent added once the limit is raised."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

from tests.integration.api_helpers import TOKEN, running_api
from tests.integration.test_cli_everyday import http_server
from torrent_engine.engine.addtorrent import TORRENT_FILE_LIMIT_LEAST, TORRENT_FILE_LIMIT_MOST, TorrentBytes
from torrent_engine.formats.bencode import encode
from torrent_engine.jobs import InvalidJobRequest

pytestmark = pytest.mark.anyio

PIECE = 16 * 1024


def torrent_of(size: int, name: str) -> bytes:
    """A .torrent of at least ``size`` bytes (its piece hashes; no data anywhere)."""
    pieces = size // 20 + 1
    hashes = b"".join(hashlib.sha1(i.to_bytes(4, "big")).digest() for i in range(pieces))
    return encode({b"info": {b"name": name.encode(), b"length": pieces * PIECE, b"piece length": PIECE,
                             b"pieces": hashes}})


async def test_a_torrent_over_the_limit_is_refused_at_every_door_and_added_once_it_is_raised(
        tmp_path: Path) -> None:
    big = torrent_of(TORRENT_FILE_LIMIT_LEAST + 1000, "big")
    assert TORRENT_FILE_LIMIT_LEAST < len(big) < 2 * TORRENT_FILE_LIMIT_LEAST
    (tmp_path / "served").mkdir()
    (tmp_path / "served" / "big.torrent").write_bytes(big)
    async with running_api(tmp_path) as api:
        c = api.client
        settings = (await c.get("/api/settings")).json()
        assert settings["torrent_file_size_limit"] == TORRENT_FILE_LIMIT_MOST  # (32 MiB: as before it)
        prefs = (await c.get("/api/v2/app/preferences")).json()
        assert prefs["torrent_file_size_limit"] == TORRENT_FILE_LIMIT_MOST
        for bad in (TORRENT_FILE_LIMIT_LEAST - 1, TORRENT_FILE_LIMIT_MOST + 1, "2097152", True, 1572864.5):
            r = await c.patch("/api/settings", json={"torrent_file_size_limit": bad})
            assert (r.status_code, r.json()["field"]) == (400, "torrent_file_size_limit"), r.text
        r = await c.post("/api/v2/app/setPreferences", data={"json": json.dumps(
            {"torrent_file_size_limit": 100 * 1024 * 1024})})  # (qBittorrent's default: more than we read)
        assert r.status_code == 400 and "torrent_file_size_limit" in r.text, r.text
        r = await c.post("/api/v2/app/setPreferences", data={"json": json.dumps(
            {"torrent_file_size_limit": TORRENT_FILE_LIMIT_LEAST})})
        assert r.status_code == 200, r.text
        assert api.service.get_settings().torrent_file_size_limit == TORRENT_FILE_LIMIT_LEAST

        over = f"over the .torrent file size limit of {TORRENT_FILE_LIMIT_LEAST}"
        said = f"the .torrent is {len(big)} bytes, {over}"
        b64 = base64.b64encode(big).decode()  # (the base64 doors: refused before it is decoded, alike)
        encoded = (f"the .torrent's base64 is {len(b64)} characters, more than a .torrent within the "
                   f".torrent file size limit of {TORRENT_FILE_LIMIT_LEAST} bytes makes")
        r = await c.post("/api/jobs", files={"torrent": ("big.torrent", big)})
        assert r.status_code == 413 and said in r.json()["error"], r.text
        r = await c.post("/api/jobs", json={"source": b64})
        assert r.status_code == 413 and encoded in r.json()["error"], r.text
        r = await c.post("/api/v2/torrents/add", files={"torrents": ("big.torrent", big)})
        assert r.status_code == 413 and said in r.text, r.text
        r = await c.post("/api/v2/torrents/parseMetadata", files={"torrents": ("big.torrent", big)})
        assert r.status_code == 413 and said in r.text, r.text
        call = {"method": "torrent-add", "arguments": {"metainfo": b64}}
        r = await c.post("/transmission/rpc", json=call, auth=("u", TOKEN))
        r = await c.post("/transmission/rpc", json=call, auth=("u", TOKEN),
                         headers={"X-Transmission-Session-Id": r.headers["x-transmission-session-id"]})
        assert encoded in r.json()["result"], r.text
        with pytest.raises(InvalidJobRequest) as refused:  # (a library's add, a watched folder's)
            await api.service.add(TorrentBytes(big), paused=True)
        assert refused.value.field == "source" and said in refused.value.reason
        with http_server(tmp_path / "served") as port:
            url = f"http://127.0.0.1:{port}/big.torrent"
            r = await c.post("/api/jobs", json={"source": url, "paused": True})
            assert r.status_code == 400 and str(TORRENT_FILE_LIMIT_LEAST) in r.json()["error"], r.text
            assert api.service.list() == []

            r = await c.patch("/api/settings", json={"torrent_file_size_limit": 2 * TORRENT_FILE_LIMIT_LEAST})
            assert r.status_code == 200, r.text
            r = await c.post("/api/jobs", json={"source": url, "paused": True})
            assert r.status_code == 201, r.text
        r = await c.post("/api/jobs", files={"torrent": ("big.torrent", big)}, data={"paused": "true"})
        assert r.status_code == 200 and r.json()["name"] == "big", r.text  # (the same job: there already)
        assert [job.name for job in api.service.list()] == ["big"]
