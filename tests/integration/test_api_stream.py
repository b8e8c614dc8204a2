"""``GET``/``HEAD /api/jobs/{id}/files/{index}/stream`` over a real server: ranges at piece and
file boundaries, suffix ranges, 416, Content-Type, the read-only stream token, several readers
at once, a paused job started by its stream, and a completed job served from disk."""

from __future__ import annotations

from pathlib import Path

import anyio
import httpx
import pytest

from torrent_engine.api.stream import RangeNotSatisfiable, parse_range, stream_token
from torrent_engine.session import Session

from .api_helpers import TOKEN, add_kept_from_its_save_path, running_api
from .helpers import loopback_config, make_payload, make_torrent

pytestmark = pytest.mark.anyio

FILES = (("movie.mp4", 700_001), ("sub/notes.txt", 90_000), ("z.mkv", 3))
PIECE = 32 * 1024


async def test_ranges_token_and_readers(tmp_path: Path) -> None:
    payload = make_payload(tmp_path / "seed", FILES)
    torrent = make_torrent(payload, piece_length=PIECE, version="v1")
    data = [(payload / rel).read_bytes() for rel, _ in FILES]
    seed_cfg = loopback_config(upload_rate_limit=2_000_000)
    async with Session(torrent, tmp_path / "seed", config=seed_cfg) as seeder:
        await seeder.wait_ready()
        async with running_api(tmp_path) as api:
            c = api.client
            r = await c.post("/api/jobs", json={"source": torrent.magnet_uri(), "paused": True,
                                                "peers": [f"127.0.0.1:{seeder.listen_port}"]})
            assert r.status_code == 201, r.text
            job_id = r.json()["id"]
            tok = (await c.get(f"/api/jobs/{job_id}/stream-token")).json()
            assert tok["token"] == stream_token(TOKEN, job_id)
            base = f"/api/jobs/{job_id}/files"
            plain = httpx.AsyncClient(base_url=api.url, timeout=60)  # a player: no API token
            async with plain:
                # no token, a wrong one, another job's: refused; the token opens nothing else
                assert (await plain.get(f"{base}/0/stream")).status_code == 401
                assert (await plain.get(f"{base}/0/stream", params={"token": "x" * 40})).status_code == 401
                other = stream_token(TOKEN, "other")
                assert (await plain.get(f"{base}/0/stream", params={"token": other})).status_code == 401
                t = {"token": tok["token"]}
                assert (await plain.get(f"/api/jobs/{job_id}", params=t)).status_code == 401
                assert (await plain.get("/api/jobs", params=t)).status_code == 401
                assert (await plain.delete(f"{base}/0/stream", params=t)).status_code == 401

                # the job was paused: opening its stream starts it (the metadata comes, then bytes)
                head = await plain.head(f"{base}/0/stream", params=t)
                assert head.status_code == 200
                assert head.headers["accept-ranges"] == "bytes"
                assert head.headers["content-length"] == str(len(data[0]))
                assert head.headers["content-type"] == "video/mp4"
                assert head.content == b""
                assert (await c.get(f"/api/jobs/{job_id}")).json()["state"] != "paused"

                async def ranged(index: int, spec: str) -> httpx.Response:
                    return await plain.get(f"{base}/{index}/stream", params=t, headers={"Range": spec})

                movie = data[0]
                for start, end in [(0, 0), (PIECE - 1, PIECE), (PIECE - 10, 3 * PIECE + 9),
                                   (len(movie) - 1, len(movie) - 1)]:
                    r = await ranged(0, f"bytes={start}-{end}")
                    assert r.status_code == 206
                    assert r.headers["content-range"] == f"bytes {start}-{end}/{len(movie)}"
                    assert r.content == movie[start:end + 1]
                r = await ranged(0, "bytes=-100")
                assert r.status_code == 206 and r.content == movie[-100:]
                r = await ranged(0, "bytes=700000-")
                assert r.status_code == 206 and r.content == movie[700_000:]
                r = await ranged(0, f"bytes={len(movie)}-")
                assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{len(movie)}"
                # the second file starts mid-piece: across its first piece boundary, and its end
                notes = data[1]
                first_boundary = PIECE - len(movie) % PIECE
                r = await ranged(1, f"bytes={first_boundary - 5}-{first_boundary + 5}")
                assert r.content == notes[first_boundary - 5:first_boundary + 6]
                assert r.headers["content-type"] == "text/plain"
                r = await ranged(2, "bytes=0-")
                assert r.content == data[2] and r.headers["content-type"] == "video/x-matroska"
                assert (await plain.get(f"{base}/9/stream", params=t)).status_code == 404

                # several readers at once, whole file and ranges
                got: dict[str, bytes] = {}

                async def fetch(name: str, spec: str | None) -> None:
                    headers = {"Range": spec} if spec else {}
                    got[name] = (await plain.get(f"{base}/0/stream", params=t, headers=headers)).content

                async with anyio.create_task_group() as tg:
                    tg.start_soon(fetch, "whole", None)
                    tg.start_soon(fetch, "end", "bytes=-5000")
                    tg.start_soon(fetch, "middle", "bytes=300000-399999")
                assert got == {"whole": movie, "end": movie[-5000:], "middle": movie[300_000:400_000]}


async def test_a_completed_job_is_streamed_from_disk(tmp_path: Path) -> None:
    payload = make_payload(tmp_path / "seed", FILES)
    torrent = make_torrent(payload, piece_length=PIECE, version="v1")
    movie = (payload / "movie.mp4").read_bytes()
    async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
        await seeder.wait_ready()
        async with running_api(tmp_path) as api:
            api.service.manager.config.seed = False  # done once complete: the job completes
            r = await api.client.post("/api/jobs", json={"source": torrent.magnet_uri(),
                                                         "peers": [f"127.0.0.1:{seeder.listen_port}"]})
            job_id = r.json()["id"]
            with anyio.fail_after(60):
                while (await api.client.get(f"/api/jobs/{job_id}")).json()["state"] != "completed":
                    await anyio.sleep(0.1)
            url = f"/api/jobs/{job_id}/files/0/stream"
            r = await api.client.get(url, headers={"Range": "bytes=100-199"})
            assert r.status_code == 206 and r.content == movie[100:200]
            r = await api.client.get(url)
            assert r.status_code == 200 and r.content == movie
            assert (await api.client.get(f"/api/jobs/{job_id}/files/7/stream")).status_code == 404


async def test_a_completed_job_whose_data_stayed_in_its_incomplete_folder_is_streamed_from_there(
        tmp_path: Path) -> None:
    """Complete in its incomplete folder, a job whose save path has a file of its name with
    other data ends there (it does not seed): its stream is its own data, not that file's."""
    async with running_api(tmp_path) as api:
        api.service.manager.config.seed = False
        payload = make_payload(api.download_root / "part", FILES)
        torrent = make_torrent(payload, piece_length=PIECE, version="v1")
        movie = (payload / "movie.mp4").read_bytes()
        theirs = api.download_root / "done" / payload.name / "movie.mp4"
        job_id = await add_kept_from_its_save_path(api, torrent, theirs, b"the user's own film")
        with anyio.fail_after(30):
            while (job := (await api.client.get(f"/api/jobs/{job_id}")).json())["state"] != "completed":
                await anyio.sleep(0.05)
        assert job["stall"]["reason"] == "not_moved"
        r = await api.client.get(f"/api/jobs/{job_id}/files/0/stream")
        assert r.status_code == 200 and r.content == movie


def test_parse_range() -> None:
    assert parse_range(None, 100) is None
    assert parse_range("bytes=0-9", 100) == (0, 10)
    assert parse_range("bytes=90-200", 100) == (90, 100)
    assert parse_range("bytes=-10", 100) == (90, 100)
    assert parse_range("bytes=-1000", 100) == (0, 100)
    assert parse_range("bytes=5-", 100) == (5, 100)
    assert parse_range("bytes=9-5", 100) is None  # invalid: ignored
    assert parse_range("items=0-5", 100) is None
    assert parse_range("bytes=0-1,5-6", 100) is None
    assert parse_range("bytes=abc", 100) is None
    for bad in ("bytes=100-", "bytes=100-200", "bytes=-0"):
        with pytest.raises(RangeNotSatisfiable):
            parse_range(bad, 100)
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=-5", 0)


async def test_a_stream_starts_a_queued_job(tmp_path: Path) -> None:
    payload = make_payload(tmp_path / "seed", FILES)
    torrent = make_torrent(payload, piece_length=PIECE, version="v1")
    other = make_torrent(make_payload(tmp_path / "other", (("x.bin", 50_000),), seed=7), version="v1")
    movie = (payload / "movie.mp4").read_bytes()
    async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
        await seeder.wait_ready()
        async with running_api(tmp_path) as api:
            await api.service.update_settings(queueing=True, max_active_downloads=1)
            c = api.client
            # the first job takes the one download slot (it has no peer: it stays downloading)
            r = await c.post("/api/jobs", json={"source": other.magnet_uri()})
            assert r.status_code == 201, r.text
            r = await c.post("/api/jobs", json={"source": torrent.magnet_uri(),
                                                "peers": [f"127.0.0.1:{seeder.listen_port}"]})
            job_id = r.json()["id"]
            assert (await c.get(f"/api/jobs/{job_id}")).json()["state"] == "queued"
            with anyio.fail_after(60):
                r = await c.get(f"/api/jobs/{job_id}/files/0/stream", headers={"Range": "bytes=10-20"})
            assert r.status_code == 206 and r.content == movie[10:21]
            job = (await c.get(f"/api/jobs/{job_id}")).json()
            assert job["state"] != "queued" and job["features"]["force_start"]  # past the slot: forced
            await api.service.tick()  # the queue's next round does not hold it back again
            r = await c.get(f"/api/jobs/{job_id}/files/0/stream", headers={"Range": "bytes=-100"})
            assert r.status_code == 206 and r.content == movie[-100:]


async def test_a_magnet_without_metadata_is_answered_503_with_why(tmp_path: Path) -> None:
    # nobody has the metadata (no peer, no tracker, no DHT): the request does not hang, it says why
    payload = make_payload(tmp_path / "seed", FILES)
    torrent = make_torrent(payload, piece_length=PIECE, version="v1")
    async with running_api(tmp_path) as api:  # (the daemon's own wait)
        r = await api.client.post("/api/jobs", json={"source": torrent.magnet_uri()})
        assert r.status_code == 201, r.text
        job_id = r.json()["id"]
        with anyio.fail_after(9):  # answered before a client's usual 10 s time-out (it was 30 s)
            r = await api.client.get(f"/api/jobs/{job_id}/files/0/stream")
        assert r.status_code == 503
        assert r.headers["retry-after"] == "5"
        body = r.json()
        assert body["retry_after"] == 5
        assert "has not arrived after 5 s" in body["error"]
        assert "no peer sources" in body["error"], body
        # the job goes on (the metadata may still come): nothing failed, nothing was left open
        job = (await api.client.get(f"/api/jobs/{job_id}")).json()
        assert job["state"] not in ("failed", "cancelled")
        session = api.service.manager.get(torrent.info_hash)
        assert session is not None and not session.readers.open_readers
