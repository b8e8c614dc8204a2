"""infohash: the 20 bytes that stand for a torrent on the wire, one rule for torrents and magnets."""

from __future__ import annotations

import hashlib

import pytest

from torrent_engine.formats.infohash import wire_info_hash
from torrent_engine.formats.magnet import Magnet

V1 = hashlib.sha1(b"info").digest()
V2 = hashlib.sha256(b"info").digest()


def test_v1_else_v2_truncated() -> None:
    assert wire_info_hash(V1, V2) == V1  # a hybrid goes by its v1 hash
    assert wire_info_hash(V1, None) == V1
    assert wire_info_hash(None, V2) == V2[:20]
    assert Magnet(info_hash_v2=V2).info_hash == V2[:20]


def test_no_info_hash_is_an_error() -> None:
    with pytest.raises(ValueError, match="v1 or a v2"):
        wire_info_hash(None, None)
