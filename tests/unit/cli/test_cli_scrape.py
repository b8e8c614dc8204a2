"""``torrent-engine scrape FILE.torrent`` against in-test HTTP and UDP trackers on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import anyio.abc
import anyio.to_thread
import pytest

from tests.unit.tracker._tracker_servers import (
    HttpRequest,
    UdpTracker,
    http_response,
    http_tracker,
    udp_tracker,
)
from torrent_engine.cli import main
from torrent_engine.formats.bencode import encode
from torrent_engine.storage.create import create_torrent

pytestmark = pytest.mark.anyio


def make_torrent(tmp_path: Path, tiers: list[list[str]]) -> tuple[Path, bytes]:
    payload = tmp_path / "payload.bin"
    payload.write_bytes(b"scrape me" * 1000)
    torrent = create_torrent(payload, version="v1", trackers=tiers)
    path = tmp_path / "x.torrent"
    path.write_bytes(torrent.to_bytes())
    return path, torrent.info_hash


async def test_scrape_prints_counts_per_tracker(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    info_hash = make_torrent(tmp_path, [["http://unused/announce"]])[1]
    body = encode({"files": {info_hash: {"complete": 11, "downloaded": 22, "incomplete": 33}}})

    async def handler(request: HttpRequest, stream: anyio.abc.ByteStream) -> None:
        await stream.send(http_response(body))

    async with http_tracker(handler) as server, udp_tracker(UdpTracker()) as udp:
        http_url = f"http://127.0.0.1:{server.port}/announce"
        udp_url = f"udp://127.0.0.1:{udp.port}"
        no_scrape = f"http://127.0.0.1:{server.port}/tracker"
        path, _ = make_torrent(tmp_path, [[http_url, udp_url], [no_scrape]])
        code = await anyio.to_thread.run_sync(main, ["scrape", str(path), "--timeout", "5"])
        text = capsys.readouterr().out
        json_code = await anyio.to_thread.run_sync(main, ["scrape", str(path), "--json", "--timeout", "5"])
        data = json.loads(capsys.readouterr().out)
    assert code == 0 and json_code == 0
    lines = {line.split()[1]: line.split()[2:] for line in text.splitlines()[2:]}
    assert lines[http_url] == ["11", "33", "22"]  # seeders, leechers, completed
    assert lines[udp_url] == ["5", "7", "6"]
    assert lines[no_scrape][0] == "error:" and "scrape" in " ".join(lines[no_scrape])
    rows = {row["url"]: row for row in data["trackers"]}
    assert (rows[http_url]["seeders"], rows[http_url]["leechers"], rows[http_url]["completed"]) == (
        11,
        33,
        22,
    )
    assert rows[no_scrape]["tier"] == 1 and rows[no_scrape]["seeders"] is None
    assert data["info_hash"] == info_hash.hex()
    assert server.requests[0].path == "/scrape"


async def test_scrape_fails_when_no_tracker_answers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with udp_tracker(UdpTracker()) as udp:
        closed = f"udp://127.0.0.1:{udp.port}"
    path, _ = make_torrent(tmp_path, [[closed]])
    code = await anyio.to_thread.run_sync(main, ["scrape", str(path), "--timeout", "2"])
    assert code == 1 and "error:" in capsys.readouterr().out
