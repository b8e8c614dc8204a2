"""The metadata calls' records and memory (``qbittorrent_metadata.py``) and the bare info-hashes
qBittorrent reads as magnet links."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from tests.integration.helpers import make_payload, make_torrent
from torrent_engine.api.compat.qbittorrent import _magnet_in, _magnet_of_hash
from torrent_engine.api.compat.qbittorrent_metadata import MetadataMemory, info_hash_record, metadata_record
from torrent_engine.formats.magnet import parse_magnet


def test_a_hybrid_shows_both_hashes_and_no_pad_file(tmp_path: Path) -> None:
    payload = make_payload(tmp_path, (("a.bin", 20_001), ("b.bin", 9_000)), name="h")
    torrent = dataclasses.replace(
        make_torrent(payload, piece_length=16384),
        trackers=(("http://t1/a", "http://t2/a"), ("udp://t3:1/a",)), web_seeds=("http://w/",))
    assert any(f.pad for f in torrent.files)  # (BEP 47: a hybrid aligns its files)
    record = metadata_record(torrent)
    assert record["hash"] == record["infohash_v1"] == torrent.info_hash.hex()
    assert torrent.info_hash_v2 is not None and record["infohash_v2"] == torrent.info_hash_v2.hex()
    info = record["info"]
    assert isinstance(info, dict)
    assert info["files"] == [{"path": "h/a.bin", "length": 20_001}, {"path": "h/b.bin", "length": 9_000}]
    assert info["length"] == 29_001 and info["pieces_num"] == torrent.num_pieces
    assert record["trackers"] == [{"url": "http://t1/a", "tier": 0}, {"url": "http://t2/a", "tier": 0},
                                  {"url": "udp://t3:1/a", "tier": 1}]
    assert record["webseeds"] == ["http://w/"] and record["creation_date"] == (torrent.creation_date or -1)
    magnet = parse_magnet(torrent.magnet_uri())
    assert info_hash_record(magnet) == {k: record[k] for k in ("hash", "infohash_v1", "infohash_v2")}


def test_bare_info_hashes_are_magnet_links() -> None:
    v1 = "0123456789abcdef0123456789abcdef01234567"
    assert _magnet_of_hash(f" {v1} ") == f"magnet:?xt=urn:btih:{v1}"
    base32 = "AERUKZ4JVPG66AJDIVTYTK6N54ASGRLH"  # (the same 20 bytes in base32)
    magnet = _magnet_in(base32)
    assert magnet is not None and magnet.info_hash.hex() == v1
    v2 = "ab" * 32
    magnet = _magnet_in(v2)
    assert magnet is not None and magnet.info_hash_v2 == bytes.fromhex(v2)
    assert _magnet_in("http://x/t.torrent") is None and _magnet_of_hash("not-a-hash") == "not-a-hash"


def test_the_memory_forgets_the_oldest_past_its_limit(tmp_path: Path) -> None:
    memory = MetadataMemory(limit=2)
    torrents = [make_torrent(make_payload(tmp_path, (("x.bin", 1000 + i),), name=f"t{i}"), version="v1")
                for i in range(3)]
    for i, torrent in enumerate(torrents):
        memory.keep(torrent, f"http://x/{i}")
    assert list(memory.torrents) == [t.info_hash.hex() for t in torrents[1:]]
    assert list(memory.sources) == ["http://x/1", "http://x/2"]
    memory.forget(torrents[2].info_hash.hex(), "http://x/2")
    assert list(memory.torrents) == [torrents[1].info_hash.hex()] and list(memory.sources) == ["http://x/1"]
