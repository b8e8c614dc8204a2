"""Real readers of a stream: Debian's ffprobe and ffmpeg open an H.264 MP4 (made here with
ffmpeg's test sources, its index at the end, so a reader must jump to the end first) through
the daemon's stream URL while the torrent downloads from a libtorrent seeder capped at a few
MB/s; they seek to 10 %, 80 % and back, and decode exactly what they decode from the original."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import anyio
import httpx
import pytest

from tests.conftest import require_libtorrent, require_program
from tests.integration.api_helpers import running_api
from tests.integration.helpers import make_torrent
from tests.interop.test_libtorrent_transfer import lt_add, lt_session, wait_lt

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

SECONDS = 30


async def make_movie(ffmpeg: str, path: Path) -> None:
    """A SECONDS-long 640x360 H.264 + AAC MP4, moov at the end (ffmpeg's default)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    await anyio.run_process([
        ffmpeg, "-v", "error", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=25",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-t", str(SECONDS),
        "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "2M", "-c:a", "aac", "-y", str(path)])
    data = path.read_bytes()
    assert data.find(b"moov") > data.find(b"mdat") > 0  # the index really is at the end


async def frames(ffmpeg: str, source: str, at: float) -> str:
    """MD5s of the first frames decoded after seeking to ``at`` seconds of ``source``."""
    result = await anyio.run_process([ffmpeg, "-v", "error", "-ss", f"{at:g}", "-i", source,
                                      "-frames:v", "5", "-f", "framemd5", "-"])
    lines = [ln for ln in result.stdout.decode().splitlines() if ln and not ln.startswith("#")]
    assert len(lines) >= 5, result.stderr.decode()
    return "\n".join(lines)


async def test_ffprobe_and_ffmpeg_read_and_seek_while_it_downloads(tmp_path: Path) -> None:
    lt = require_libtorrent()
    ffmpeg = require_program("ffmpeg")
    ffprobe = require_program("ffprobe")
    movie = tmp_path / "seed" / "clip" / "movie.mp4"
    await make_movie(ffmpeg, movie)
    torrent = make_torrent(movie.parent, piece_length=64 * 1024, version="v1")
    size = movie.stat().st_size
    with lt_session(lt) as ses:
        handle = lt_add(lt, ses, torrent, tmp_path / "seed")
        await wait_lt(handle, seeding=True)
        handle.set_upload_limit(3_000_000)  # a few MB/s: the download takes seconds
        async with running_api(tmp_path) as api:
            r = await api.client.post("/api/jobs", json={
                "source": base64.b64encode(torrent.to_bytes()).decode(),
                "peers": [f"127.0.0.1:{ses.listen_port()}"]})
            assert r.status_code == 201, r.text
            job_id = r.json()["id"]
            files = (await api.client.get(f"/api/jobs/{job_id}/stream-token")).json()["files"]
            url = api.url + files[0]["url"]
            with anyio.fail_after(120):
                probe = await anyio.run_process([
                    ffprobe, "-v", "error", "-show_entries", "format=duration,size:stream=codec_name",
                    "-of", "json", url])
                info = json.loads(probe.stdout)
                assert abs(float(info["format"]["duration"]) - SECONDS) < 1
                assert int(info["format"]["size"]) == size
                assert sorted(s["codec_name"] for s in info["streams"]) == ["aac", "h264"]
                for at in (0.1 * SECONDS, 0.8 * SECONDS, 0.0):
                    assert await frames(ffmpeg, url, at) == await frames(ffmpeg, str(movie), at), at
                # several readers at once, at piece boundaries and past the end
                async with httpx.AsyncClient(timeout=60) as player:
                    original = movie.read_bytes()
                    results: dict[str, httpx.Response] = {}

                    async def get(name: str, spec: str) -> None:
                        results[name] = await player.get(url, headers={"Range": spec})

                    piece = torrent.piece_length
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(get, "boundary", f"bytes={piece - 3}-{piece + 2}")
                        tg.start_soon(get, "tail", "bytes=-70000")
                        tg.start_soon(get, "middle", f"bytes={size // 2}-{size // 2 + 300_000}")
                        tg.start_soon(get, "past", f"bytes={size}-")
                    assert results["boundary"].content == original[piece - 3:piece + 3]
                    assert results["tail"].content == original[-70_000:]
                    assert results["middle"].content == original[size // 2:size // 2 + 300_001]
                    assert results["past"].status_code == 416
