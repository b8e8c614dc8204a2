"""Interop, BEP 46: a DHT of libtorrent sessions and our nodes on 127.0.0.1 (``mixed_dht``).

libtorrent stores and serves the versions we publish, and reads them (``dht_get_mutable_item``
gives the ``{"ih": ...}`` dictionary and its seq); we read, signature verified, what libtorrent
puts. libtorrent's Python binding puts a mutable item's value as a byte string only (its
``dht_put_mutable_item`` takes ``bytes``), so an item libtorrent writes can never be a BEP 46
``{"ih": ...}`` value: we read it and refuse it as one, with a typed error. End to end, a job
resolves our link from libtorrent's nodes and downloads the torrent from a libtorrent seeder.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import Any

import anyio
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from tests.integration.helpers import loopback_config, make_payload, make_torrent, same_files
from tests.interop.test_dht_libtorrent import mixed_dht
from tests.interop.test_libtorrent_transfer import lt_add, wait_lt
from torrent_engine.engine.mutable import latest_version, publish_version
from torrent_engine.formats.magnet import MutableMagnet
from torrent_engine.jobs import JobService, JobState
from torrent_engine.net.dht import bep44
from torrent_engine.net.dht.bep46 import MutableTorrentError
from torrent_engine.net.dht.node import DhtNode

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

SALT = b"bep46"


def libtorrent_secret(key: Ed25519PrivateKey) -> bytes:
    """The 64-byte expanded secret key libtorrent signs with (RFC 8032: SHA-512 of the seed, the
    scalar half clamped) of the same key pair."""
    seed = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    h = bytearray(hashlib.sha512(seed).digest())
    h[0] &= 248
    h[31] &= 63
    h[31] |= 64
    return bytes(h)


async def lt_get(lt: Any, session: Any, public_key: bytes, salt: bytes, seq: int,
                 seconds: float = 30) -> Any:
    """libtorrent's mutable item of ``public_key``/``salt`` once it has ``seq`` (asked again each
    few seconds: a first answer may come from a node not yet told of the newest)."""
    with anyio.move_on_after(seconds):
        while True:
            session.dht_get_mutable_item(public_key, salt)
            for _ in range(30):
                await anyio.sleep(0.1)
                for alert in session.pop_alerts():
                    if isinstance(alert, lt.dht_mutable_item_alert) and alert.seq == seq:
                        return alert
    return None


async def test_versions_both_ways_through_libtorrent_nodes() -> None:
    async with mixed_dht() as (lt, sessions, node):
        key = Ed25519PrivateKey.generate()
        public = bep44.public_key_bytes(key)
        link = MutableMagnet(public, SALT)
        ih1, ih2 = hashlib.sha1(b"version 1").digest(), hashlib.sha1(b"version 2").digest()

        # ours -> libtorrent: each version read by libtorrent, as BEP 46 writes it
        for ih, expected in ((ih1, 1), (ih2, 2)):
            seq, stored = await publish_version(node, key, ih, salt=SALT)
            assert seq == expected and stored >= 1, f"no libtorrent node stored seq {expected}: {node.stats}"
            alert = await lt_get(lt, sessions[0], public, SALT, seq)
            assert alert is not None, f"libtorrent did not read our version {seq}"
            assert (alert.item, alert.salt) == ({b"ih": ih}, SALT)

        # served by libtorrent's nodes: a reader of ours that knows only them, none of ours holding it
        assert len(node.items) == 0
        async with anyio.create_task_group() as tg:
            reader = DhtNode(bind=("127.0.0.1", 0), enforce_bep42=False, rng=random.Random(3),
                             bootstrap=[("127.0.0.1", s.listen_port()) for s in sessions])
            await tg.start(reader.run)
            with anyio.fail_after(20):
                await reader.wait_bootstrapped()
            version = await latest_version(reader, link)
            assert (version.info_hash, version.seq) == (ih2, 2)

            # libtorrent -> ours: its put (the same key pair) is read, signature checked; as its
            # binding writes a byte string, the value is no BEP 46 version and says so
            sessions[3].dht_put_mutable_item(libtorrent_secret(key), public, b"from libtorrent", SALT)
            found = None
            with anyio.move_on_after(30):
                while found is None or found[1] < 3:
                    await anyio.sleep(0.3)
                    found = await reader.get_mutable(public, SALT)
            assert found == (b"from libtorrent", 3), f"our node did not read libtorrent's put: {found}"
            with pytest.raises(MutableTorrentError, match="a bytes, not a dictionary with 'ih'"):
                await latest_version(reader, link)
            tg.cancel_scope.cancel()


async def test_a_job_resolves_from_libtorrent_nodes_and_downloads_from_libtorrent(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed"), piece_length=16 * 1024)
    async with mixed_dht() as (lt, sessions, node):
        handle = lt_add(lt, sessions[1], torrent, tmp_path / "seed")
        await wait_lt(handle, seeding=True)
        key = Ed25519PrivateKey.generate()
        seq, stored = await publish_version(node, key, torrent.info_hash, salt=SALT)
        assert seq == 1 and stored >= 1
        link = MutableMagnet(bep44.public_key_bytes(key), SALT,
                             peers=(("127.0.0.1", sessions[1].listen_port()),)).to_uri()
        boot = tuple(("127.0.0.1", s.listen_port()) for s in sessions)  # libtorrent's nodes alone
        config = loopback_config(dht_enabled=True, dht_bootstrap=boot, enforce_bep42=False, seed=False)
        async with JobService(config, download_root=tmp_path / "dl", state_dir=tmp_path / "state") as jobs:
            job, created = await jobs.add(link)
            assert created and job.info_hash == torrent.info_hash.hex()
            with anyio.fail_after(90):
                while (job := jobs.get(job.id)).state is not JobState.COMPLETED:
                    assert job.state not in (JobState.FAILED, JobState.CANCELLED), job.error
                    await anyio.sleep(0.05)
        assert same_files(torrent, tmp_path / "seed", tmp_path / "dl") == []
