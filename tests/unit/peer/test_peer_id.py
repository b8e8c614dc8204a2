"""BEP 20 peer ids: our own format, and client names of real clients' ids."""

from __future__ import annotations

import random

import pytest

from torrent_engine.net.peer.peer_id import CLIENT_PREFIX, client_name, generate_peer_id


def test_generate_peer_id_format_and_determinism() -> None:
    rng = random.Random(7)
    pid = generate_peer_id(rng.randbytes)
    assert len(pid) == 20 and pid.startswith(b"-TE0100-") and CLIENT_PREFIX == b"-TE0100-"
    assert pid[8:].isascii() and all(c in b"-_" or chr(c).isalnum() for c in pid[8:])
    assert generate_peer_id(random.Random(7).randbytes) == pid
    assert generate_peer_id(random.Random(8).randbytes) != pid
    assert generate_peer_id()[:8] == b"-TE0100-"
    assert generate_peer_id(lambda n: bytes(n))[8:] == b"A" * 12


@pytest.mark.parametrize(
    ("peer_id", "name"),
    [
        (b"-LT2010-abcdefghijkl", "libtorrent (Rasterbar) 2.0.1"),
        (b"-LT1C40-abcdefghijkl", "libtorrent (Rasterbar) 1.12.4"),
        (b"-TR2940-abcdefghijkl", "Transmission 2.94"),
        (b"-TR4060-abcdefghijkl", "Transmission 4.06"),
        (b"-qB4620-abcdefghijkl", "qBittorrent 4.6.2"),
        (b"-DE211s-abcdefghijkl", "Deluge 2.1.1.28"),
        (b"-TE0100-abcdefghijkl", "torrent_engine 0.1"),
        (b"-UT3550-abcdefghijkl", "µTorrent 3.5.5"),
        (b"-ZZ1000-abcdefghijkl", "unknown (ZZ) 1.0"),
        (b"A2-1-34-0-abcdefghij", "aria2 1.34.0"),
        (b"M7-2-0--123456789012", "BitTorrent (mainline) 7.2.0"),
        (b"\x00\x01abcdefghijklmnopqr", "unknown (..abcdef)"),
        (b"M\xb2-\xb2-abcdefghijklmno", "unknown (M.-.-abc)"),  # '²' is no digit for int()
        (b"M7-\xb2-abcdefghijklmno", "BitTorrent (mainline) 7"),
        (b"short", "invalid"),
    ],
)
def test_client_name(peer_id: bytes, name: str) -> None:
    assert client_name(peer_id) == name
