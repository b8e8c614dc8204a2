"""BEP 46 mutable torrents through the job service, on a loopback DHT of our own nodes: a btpk
link resolved and downloaded, a newer version with the same info-hash ignored, a newer version
with another info-hash followed (the files that did not change are not downloaded again)."""

from __future__ import annotations

import random
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from torrent_engine.engine.manager import TorrentManager
from torrent_engine.engine.mutable import publish_version
from torrent_engine.formats.magnet import MutableMagnet
from torrent_engine.jobs import FINISHED_STATES, Job, JobService, JobState
from torrent_engine.jobs.model import InvalidJobRequest
from torrent_engine.jobs.store import JobStore
from torrent_engine.net.dht import bep44
from torrent_engine.net.dht.node import DhtNode

from .api_helpers import TOKEN, running_api
from .helpers import loopback_config, make_payload, make_torrent, same_files

pytestmark = pytest.mark.anyio

ROUTERS = 4


@asynccontextmanager
async def loopback_dht() -> AsyncIterator[list[DhtNode]]:
    """A few nodes of ours on 127.0.0.1 that know each other (never a public router)."""
    async with anyio.create_task_group() as tg:
        nodes = [DhtNode(bind=("127.0.0.1", 0), enforce_bep42=False, rng=random.Random(i))
                 for i in range(ROUTERS)]
        for node in nodes:
            await tg.start(node.run)
        for node in nodes:
            for other in nodes:
                if other is not node:
                    await node.ping(other.address)
        yield nodes
        tg.cancel_scope.cancel()


async def wait_state(jobs: JobService, job_id: str, *states: JobState, timeout: float = 60) -> Job:
    with anyio.fail_after(timeout):
        while True:
            job = jobs.get(job_id)
            if job.state in states:
                return job
            assert job.state not in FINISHED_STATES - set(states), job
            await anyio.sleep(0.05)


async def test_a_btpk_link_is_resolved_downloaded_and_followed(tmp_path: Path) -> None:
    v1_dir = make_payload(tmp_path / "v1")
    torrent_v1 = make_torrent(v1_dir, piece_length=16 * 1024)
    # version 2: one file changed (same size), the others as they were
    shutil.copytree(v1_dir, tmp_path / "v2" / "payload")
    changed = tmp_path / "v2" / "payload" / "sub" / "b.bin"
    changed.write_bytes(random.Random(99).randbytes(changed.stat().st_size))
    torrent_v2 = make_torrent(tmp_path / "v2" / "payload", piece_length=16 * 1024)
    assert torrent_v2.info_hash != torrent_v1.info_hash
    key = Ed25519PrivateKey.generate()
    async with loopback_dht() as dht, TorrentManager(loopback_config()) as seeds:
        publisher = dht[0]
        for torrent, root in ((torrent_v1, tmp_path / "v1"), (torrent_v2, tmp_path / "v2")):
            seed = await seeds.add(torrent, root)
            await seed.wait_ready()
        port = seed.listen_port  # (one listener for both)
        seq, stored = await publish_version(publisher, key, torrent_v1.info_hash, salt=b"dumps")
        assert (seq, stored >= 1) == (1, True)
        link = MutableMagnet(bep44.public_key_bytes(key), b"dumps", display_name="dumps",
                             peers=(("127.0.0.1", port),)).to_uri()
        boot = tuple(node.address for node in dht[1:])
        config = loopback_config(dht_enabled=True, dht_bootstrap=boot, enforce_bep42=False)
        async with JobService(config, download_root=tmp_path / "downloads",
                              state_dir=tmp_path / "state") as jobs:
            job, created = await jobs.add(link, save_path="mirror")
            assert created and job.info_hash == torrent_v1.info_hash.hex() and job.source == link
            first = await wait_state(jobs, job.id, JobState.SEEDING)
            save = tmp_path / "downloads" / "mirror"
            assert same_files(torrent_v1, tmp_path / "v1", save) == []
            assert first.downloaded >= torrent_v1.payload_size

            # a newer seq naming the same torrent: nothing to do
            assert (await publish_version(dht[2], key, torrent_v1.info_hash, salt=b"dumps"))[0] == 2
            assert await jobs.follow_mutable() == 0
            assert [j.id for j in jobs.list()] == [job.id]

            # a newer seq naming version 2: the job moves to it, in the same folder
            assert (await publish_version(dht[3], key, torrent_v2.info_hash, salt=b"dumps"))[0] == 3
            assert await jobs.follow_mutable() == 1
            old = jobs.get(job.id)
            assert old.state is JobState.CANCELLED and old.error is not None
            assert torrent_v2.info_hash.hex() in old.error
            new = next(j for j in jobs.list() if j.id != job.id)
            assert new.info_hash == torrent_v2.info_hash.hex() and new.source == link
            second = await wait_state(jobs, new.id, JobState.SEEDING)
            assert same_files(torrent_v2, tmp_path / "v2", save) == []
            # only the changed file's pieces came again (BEP 47 pads align each file to pieces)
            assert 0 < second.downloaded <= 6 * 16 * 1024, second.downloaded
            assert await jobs.follow_mutable() == 0  # (seq 3 is what it has)
        records, lost = JobStore(tmp_path / "state").load_all()
        assert lost == []
        seqs = {r.info_hash: r.mutable_seq for r in records}
        assert seqs == {torrent_v1.info_hash.hex(): 2, torrent_v2.info_hash.hex(): 3}


async def test_a_link_nobody_published_is_refused_with_its_key(tmp_path: Path) -> None:
    key = bytes(range(32))
    async with loopback_dht() as dht:
        boot = tuple(node.address for node in dht)
        config = loopback_config(dht_enabled=True, dht_bootstrap=boot, enforce_bep42=False)
        async with JobService(config, download_root=tmp_path / "downloads",
                              state_dir=tmp_path / "state") as jobs:
            with pytest.raises(InvalidJobRequest, match=f"no DHT node holds the item of key {key.hex()}"):
                await jobs.add(MutableMagnet(key).to_uri())
            with pytest.raises(InvalidJobRequest, match="64 hex digits"):
                await jobs.add("magnet:?xs=urn:btpk:abcd")
            assert jobs.list() == []


async def test_a_btpk_link_without_a_dht_is_refused(tmp_path: Path) -> None:
    async with JobService(loopback_config(), download_root=tmp_path / "downloads",
                          state_dir=tmp_path / "state") as jobs:
        with pytest.raises(InvalidJobRequest, match="the DHT is off"):
            await jobs.add(MutableMagnet(bytes(32)).to_uri())


async def test_the_timer_follows_a_paused_job_and_a_restart_keeps_its_link(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    first, second = bytes([1]) * 20, bytes([2]) * 20  # (nobody seeds them: the job stays paused)
    async with loopback_dht() as dht:
        await publish_version(dht[0], key, first)
        link = MutableMagnet(bep44.public_key_bytes(key)).to_uri()
        boot = tuple(node.address for node in dht[1:])
        config = loopback_config(dht_enabled=True, dht_bootstrap=boot, enforce_bep42=False,
                                 mutable_poll_interval=0.3)

        def service() -> JobService:
            return JobService(config, download_root=tmp_path / "downloads", state_dir=tmp_path / "state")

        async with service() as jobs:
            job, _ = await jobs.add(link, paused=True, save_path="kept")
            assert job.state is JobState.PAUSED and job.info_hash == first.hex()
        async with service() as jobs:  # a restart: the job comes back from its record, link and all
            again = jobs.get(job.id)
            assert again.state is JobState.PAUSED and again.source == link
            await publish_version(dht[1], key, second)
            with anyio.fail_after(30):  # (no call: the service's own timer finds the new version)
                while len(jobs.list()) < 2:
                    await anyio.sleep(0.05)
            new = next(j for j in jobs.list() if j.id != job.id)
            assert new.info_hash == second.hex() and new.source == link
            assert new.state is JobState.PAUSED  # (its options as the job it replaces had them)
            assert new.options.save_path == again.options.save_path
            assert jobs.get(job.id).state is JobState.CANCELLED


async def test_every_door_takes_a_btpk_link(tmp_path: Path) -> None:
    keys = [Ed25519PrivateKey.generate() for _ in range(3)]
    hashes = [bytes([i + 1]) * 20 for i in range(3)]  # (nobody seeds them: added paused)
    async with loopback_dht() as dht:
        links = []
        for key, ih in zip(keys, hashes, strict=True):
            await publish_version(dht[0], key, ih, salt=b"door")
            links.append(MutableMagnet(bep44.public_key_bytes(key), b"door").to_uri())
        boot = tuple(node.address for node in dht[1:])
        options = {"dht_enabled": True, "dht_bootstrap": boot, "enforce_bep42": False}
        async with running_api(tmp_path, config_options=options) as api:
            # our API
            r = await api.client.post("/api/jobs", json={"source": links[0], "paused": True})
            assert r.status_code == 201, r.text
            assert (r.json()["source"], r.json()["info_hash"]) == (links[0], hashes[0].hex())
            r = await api.client.post("/api/jobs", json={"source": "magnet:?xs=urn:btpk:zz"})
            assert r.status_code == 400 and "xs: btpk public key must be 64 hex digits" in r.text
            # qBittorrent's torrents/add
            r = await api.client.post("/api/v2/torrents/add", data={"urls": links[1], "paused": "true"})
            assert r.status_code == 200, r.text
            # Transmission's torrent-add
            async with httpx.AsyncClient(base_url=api.url, auth=("u", TOKEN)) as c:
                call = {"method": "torrent-add", "arguments": {"filename": links[2], "paused": True}}
                sid = (await c.post("/transmission/rpc", json=call)).headers["x-transmission-session-id"]
                r = await c.post("/transmission/rpc", json=call, headers={"X-Transmission-Session-Id": sid})
                assert r.json()["result"] == "success", r.text
            added = {(j.source, j.info_hash) for j in api.service.list()}
            assert added == {(link, ih.hex()) for link, ih in zip(links, hashes, strict=True)}


async def test_a_round_puts_the_item_it_follows_again(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    async with loopback_dht() as dht:
        await publish_version(dht[0], key, bytes([7]) * 20)
        holders = [n for n in dht if len(n.items)]
        assert holders
        for node in holders[1:]:  # (as if it had expired everywhere but on one node)
            node.items = bep44.ItemStore()
        boot = tuple(node.address for node in dht)
        config = loopback_config(dht_enabled=True, dht_bootstrap=boot, enforce_bep42=False)
        async with JobService(config, download_root=tmp_path / "downloads",
                              state_dir=tmp_path / "state") as jobs:
            await jobs.add(MutableMagnet(bep44.public_key_bytes(key)).to_uri(), paused=True)
            assert sum(len(n.items) for n in dht) == 1
            assert await jobs.follow_mutable() == 0
            # put again as it was signed: the other nodes closest to its target hold it again
            assert sum(len(n.items) for n in dht) >= 2
            stored = [n.items.get(bep44.mutable_target(bep44.public_key_bytes(key)), 0.0) for n in dht]
            assert {item.seq for item in stored if item is not None} == {1}


async def test_a_newer_item_that_names_no_torrent_changes_nothing(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    key = Ed25519PrivateKey.generate()
    async with loopback_dht() as dht:
        await publish_version(dht[0], key, bytes([7]) * 20)
        boot = tuple(node.address for node in dht[1:])
        config = loopback_config(dht_enabled=True, dht_bootstrap=boot, enforce_bep42=False)
        async with JobService(config, download_root=tmp_path / "downloads",
                              state_dir=tmp_path / "state") as jobs:
            job, _ = await jobs.add(MutableMagnet(bep44.public_key_bytes(key)).to_uri(), paused=True)
            _, seq, _ = await dht[2].put_mutable(key, b"not a BEP 46 value")  # (signed, seq 2)
            assert seq == 2
            assert await jobs.follow_mutable() == 0
            assert [(j.id, j.state) for j in jobs.list()] == [(job.id, JobState.PAUSED)]
            assert "no version read: the item's value is a bytes, not a dictionary" in caplog.text
