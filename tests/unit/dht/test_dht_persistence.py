"""The DHT state file: round trip, both address families, malformed files refused, atomic write."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from torrent_engine.errors import BencodeError, DHTError
from torrent_engine.formats.bencode import encode
from torrent_engine.net.dht.krpc import NodeInfo
from torrent_engine.net.dht.persistence import decode_state, encode_state, write_atomically


def test_a_state_round_trips_with_both_families() -> None:
    rng = random.Random(1)
    nodes = [NodeInfo(rng.randbytes(20), "127.0.0.1", 6881), NodeInfo(rng.randbytes(20), "::1", 6882)]
    saved = decode_state(encode_state(b"i" * 20, nodes))
    assert saved.node_id == b"i" * 20 and saved.nodes == nodes  # (v4 first, then v6)


def test_a_bad_id_is_dropped_and_non_states_are_refused() -> None:
    assert decode_state(encode({b"id": b"short", b"nodes": b""})).node_id is None
    with pytest.raises(DHTError):
        decode_state(encode([1, 2]))
    with pytest.raises(BencodeError):
        decode_state(b"not bencode")


def test_write_atomically_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dht.dat"
    write_atomically(path, b"one")
    write_atomically(path, b"two")
    assert path.read_bytes() == b"two" and sorted(p.name for p in path.parent.iterdir()) == ["dht.dat"]
