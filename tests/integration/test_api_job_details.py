"""What the web UI's details panel reads and does through our API: a job's piece map and
metainfo facts, its trackers' seeds and leechers and hosts, and banning peers (each bad input a
400 naming its field, nothing changed)."""

from __future__ import annotations

import base64
from pathlib import Path

import anyio
import anyio.abc
import pytest

from tests.integration.api_helpers import Api, running_api
from tests.integration.helpers import make_payload
from tests.unit.tracker._tracker_servers import HttpRequest, announce_body, http_response, http_tracker
from torrent_engine.api.job_edits import bitfield_b64, distributed_copies
from torrent_engine.storage.create import create_torrent

pytestmark = pytest.mark.anyio


def test_a_bitfield_puts_piece_zero_in_the_first_bytes_high_bit() -> None:
    states = [2, 0, 1, 2, 0, 0, 0, 0, 2]
    assert base64.b64decode(bitfield_b64(states, 2)) == bytes([0b1001_0000, 0b1000_0000])
    assert base64.b64decode(bitfield_b64(states, 1)) == bytes([0b0010_0000, 0])
    assert bitfield_b64([], 2) == ""


def test_distributed_copies_are_the_rarest_count_and_the_share_above_it() -> None:
    assert distributed_copies([]) is None
    assert distributed_copies([1, 1, 2, 3]) == 1.5
    assert distributed_copies([0, 0, 0, 0]) == 0


async def seeding(api: Api, job_id: str) -> None:
    with anyio.fail_after(30):
        while (await api.client.get(f"/api/jobs/{job_id}")).json()["state"] != "seeding":
            await anyio.sleep(0.05)


async def test_the_piece_map_and_the_metainfo_facts_of_a_seeding_job(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        payload = make_payload(api.download_root, (("a.bin", 300_000), ("b.bin", 50_000)), name="Facts")
        torrent = create_torrent(payload, piece_length=32 * 1024, comment="a comment", created_by="maker 1.0",
                                 creation_date=1_700_000_000)
        c = api.client
        r = await c.post("/api/jobs", json={"source": base64.b64encode(torrent.to_bytes()).decode()})
        assert r.status_code == 201, r.text
        job_id = r.json()["id"]
        await seeding(api, job_id)
        r = await c.get(f"/api/jobs/{job_id}/pieces")
        assert r.status_code == 200, r.text
        pieces = r.json()
        assert pieces["num_pieces"] == torrent.num_pieces
        have = base64.b64decode(pieces["have"])
        assert all(have[i >> 3] & (0x80 >> (i & 7)) for i in range(torrent.num_pieces))
        assert base64.b64decode(pieces["downloading"]) == bytes(len(have))
        assert pieces["availability"] is None  # (a seed counts no copies: libtorrent's answer)
        r = await c.get(f"/api/jobs/{job_id}/torrent")
        assert r.status_code == 200, r.text
        facts = r.json()
        assert facts["has_metadata"] is True
        assert torrent.info_hash_v1 is not None and torrent.info_hash_v2 is not None  # (a hybrid)
        assert (facts["info_hash_v1"], facts["info_hash_v2"]) == (torrent.info_hash_v1.hex(),
                                                                  torrent.info_hash_v2.hex())
        assert (facts["piece_length"], facts["num_pieces"]) == (32 * 1024, torrent.num_pieces)
        assert (facts["comment"], facts["created_by"], facts["creation_date"]) == (
            "a comment", "maker 1.0", 1_700_000_000)
        assert facts["private"] is False
        for path in ("pieces", "torrent"):
            r = await c.get(f"/api/jobs/{'0' * 16}/{path}")
            assert r.status_code == 404 and "error" in r.json()


async def test_a_magnet_before_its_metadata_has_no_piece_map(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        c = api.client
        r = await c.post("/api/jobs", json={"source": "magnet:?xt=urn:btih:" + "ab" * 20, "paused": True})
        job_id = r.json()["id"]
        assert (await c.get(f"/api/jobs/{job_id}/pieces")).json() == {
            "num_pieces": None, "have": "", "downloading": "", "availability": None}
        facts = (await c.get(f"/api/jobs/{job_id}/torrent")).json()
        assert facts["has_metadata"] is False and facts["info_hash_v1"] == "ab" * 20
        assert facts["num_pieces"] is None


async def test_trackers_say_their_seeds_and_leechers_and_the_list_names_their_hosts(tmp_path: Path) -> None:
    async def answer(request: HttpRequest, stream: anyio.abc.ByteStream) -> None:
        await stream.send(http_response(announce_body(interval=1800, complete=7, incomplete=3)))

    async with http_tracker(answer) as tracker, running_api(
            tmp_path, config_options={"tracker_enabled": True}) as api:
        url = f"http://127.0.0.1:{tracker.port}/announce"
        payload = make_payload(api.download_root, (("a.bin", 100_000),), name="Tracked")
        torrent = create_torrent(payload, piece_length=32 * 1024, trackers=[[url], ["udp://Tracker.Example:9/a"]])
        c = api.client
        r = await c.post("/api/jobs", json={"source": base64.b64encode(torrent.to_bytes()).decode()})
        job_id = r.json()["id"]
        listed = {j["id"]: j for j in (await c.get("/api/jobs")).json()["jobs"]}
        assert listed[job_id]["tracker_hosts"] == ["127.0.0.1", "tracker.example"]
        with anyio.fail_after(30):
            while True:
                trackers = (await c.get(f"/api/jobs/{job_id}")).json()["trackers"]
                first = next(t for t in trackers if t["url"] == url)
                if first["status"] == "working":
                    break
                await anyio.sleep(0.05)
        assert (first["seeds"], first["leechers"], first["tier"]) == (7, 3, 0)
        other = next(t for t in trackers if t["url"] != url)
        assert other["seeds"] is None and other["leechers"] is None
        # a trackerless job lists no host
        r = await c.put(f"/api/jobs/{job_id}/trackers", json={"tiers": []})
        assert r.status_code == 200, r.text
        listed = {j["id"]: j for j in (await c.get("/api/jobs")).json()["jobs"]}
        assert listed[job_id]["tracker_hosts"] == []


async def test_banning_peers_adds_their_addresses_and_refuses_what_is_no_address(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        c = api.client
        r = await c.post("/api/peers/ban", json={"peers": ["127.0.0.9:6881", "[::1]:51413", "10.1.2.3"]})
        assert r.status_code == 200, r.text
        assert r.json() == {"banned_ips": ["127.0.0.9", "::1", "10.1.2.3"]}
        r = await c.post("/api/peers/ban", json={"peers": ["127.0.0.9:1", "192.0.2.1:7"]})
        assert r.json()["banned_ips"] == ["127.0.0.9", "::1", "10.1.2.3", "192.0.2.1"]
        for body, field in (({"peers": ["not-an-ip:80"]}, "peers"), ({"peers": []}, "peers"),
                            ({"peers": "1.2.3.4"}, "peers"), ({"peers": [5]}, "peers"),
                            ({"peers": ["1.2.3.4"], "why": "x"}, "why")):
            r = await c.post("/api/peers/ban", json=body)
            assert r.status_code == 400, (body, r.text)
            assert r.json()["field"] == field
        refused = await c.post("/api/peers/ban", json={"peers": ["not-an-ip:80"]})
        assert "not-an-ip" in refused.json()["error"]
        settings = (await c.get("/api/settings")).json()
        assert settings["banned_ips"] == ["127.0.0.9", "::1", "10.1.2.3", "192.0.2.1"]
