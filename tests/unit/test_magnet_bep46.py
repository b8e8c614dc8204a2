"""BEP 46 links: ``magnet:?xs=urn:btpk:<key hex>&s=<salt hex>``, from the BEP's test vectors, and
the typed errors of links that cannot be used."""

from __future__ import annotations

import pytest

from torrent_engine.errors import MagnetError
from torrent_engine.formats.magnet import (
    MutableMagnet,
    is_mutable_magnet,
    magnet_again,
    parse_magnet,
    parse_mutable_magnet,
)
from torrent_engine.net.dht import bep44

KEY_HEX = "8543d3e6115f0f98c944077a4493dcd543e49c739fd998550a1f614ab36ed63e"  # BEP 46 test 1 and 2


def test_vector_1_magnet_to_target_id() -> None:
    link = parse_mutable_magnet(f"magnet:?xs=urn:btpk:{KEY_HEX}")
    assert link.public_key == bytes.fromhex(KEY_HEX) and link.salt == b""
    target = bep44.mutable_target(link.public_key, link.salt)
    assert target.hex() == "cc3f9d90b572172053626f9980ce261a850d050b"


def test_vector_2_magnet_to_target_id_with_salt() -> None:
    link = parse_mutable_magnet(f"magnet:?xs=urn:btpk:{KEY_HEX}&s=6e")
    assert link.salt == b"n"
    target = bep44.mutable_target(link.public_key, link.salt)
    assert target.hex() == "59ee7c2cb9b4f7eb1986ee2d18fd2fdb8a56554f"


def test_round_trip_keeps_name_trackers_and_peers() -> None:
    link = MutableMagnet(bytes.fromhex(KEY_HEX), b"dumps", display_name="Archive dumps",
                         trackers=("udp://127.0.0.1:6969/announce",), peers=(("127.0.0.1", 6881),))
    uri = link.to_uri()
    assert uri.startswith(f"magnet:?xs=urn:btpk:{KEY_HEX}&s={b'dumps'.hex()}&dn=Archive%20dumps")
    assert parse_mutable_magnet(uri) == link
    assert is_mutable_magnet(uri)
    version = link.magnet_for(b"\x01" * 20)
    assert version.info_hash == b"\x01" * 20 and version.trackers == link.trackers
    assert version.display_name == "Archive dumps" and version.peers == link.peers


def test_upper_case_prefix_and_percent_encoding() -> None:
    link = parse_mutable_magnet(f"MAGNET:?XS=urn%3Abtpk%3A{KEY_HEX.upper()}&S=6E")
    assert link.public_key == bytes.fromhex(KEY_HEX) and link.salt == b"n"


def test_a_plain_magnet_is_not_mutable_and_a_btpk_link_is_not_a_plain_magnet() -> None:
    plain = "magnet:?xt=urn:btih:" + "ab" * 20
    assert not is_mutable_magnet(plain)
    assert not is_mutable_magnet("http://example.invalid/x.torrent")
    with pytest.raises(MagnetError, match="resolved over the DHT") as info:
        parse_magnet(f"magnet:?xs=urn:btpk:{KEY_HEX}")
    assert info.value.param == "xt"


@pytest.mark.parametrize(("uri", "param", "words"), [
    ("magnet:?dn=x", "xs", "no xs=urn:btpk"),
    ("magnet:?xs=http://example.invalid/a.torrent", "xs", "no xs=urn:btpk"),
    (f"magnet:?xs=urn:btpk:{KEY_HEX[:-2]}", "xs", "64 hex digits, got 62"),
    (f"magnet:?xs=urn:btpk:{KEY_HEX[:-2]}zz", "xs", "not hex"),
    (f"magnet:?xs=urn:btpk:{KEY_HEX}&xs=urn:btpk:{'00' * 32}", "xs", "two different"),
    (f"magnet:?xs=urn:btpk:{KEY_HEX}&s=6g", "s", "salt is not hex"),
    (f"magnet:?xs=urn:btpk:{KEY_HEX}&s=6e&s=6f", "s", "more than one salt"),
    (f"magnet:?xs=urn:btpk:{KEY_HEX}&s={'61' * 65}", "s", "longer than 64 bytes"),
    (f"magnet:?xs=urn:btpk:{KEY_HEX}&x.pe=nohost", "x.pe", "no port: expected HOST:PORT"),
])
def test_bad_links_name_the_parameter(uri: str, param: str, words: str) -> None:
    with pytest.raises(MagnetError, match=words) as info:
        parse_mutable_magnet(uri)
    assert info.value.param == param


def test_not_a_magnet() -> None:
    with pytest.raises(MagnetError, match="not a magnet URI"):
        parse_mutable_magnet("https://example.invalid/?xs=urn:btpk:" + KEY_HEX)


def test_magnet_again_of_a_plain_magnet_and_of_a_btpk_link() -> None:
    plain = "magnet:?xt=urn:btih:" + "ab" * 20 + "&dn=x"
    assert magnet_again(plain, b"\xff" * 20) == parse_magnet(plain)  # (its own hash, not the record's)
    link = f"magnet:?xs=urn:btpk:{KEY_HEX}&dn=dumps"
    again = magnet_again(link, b"\x01" * 20)
    assert again.info_hash == b"\x01" * 20 and again.display_name == "dumps"


def test_a_front_end_reads_a_plain_magnet_and_hands_a_btpk_link_on_checked() -> None:
    from torrent_engine.engine.addtorrent import AddTorrentError, MagnetLink, Parsed, read_link

    plain = read_link(MagnetLink("magnet:?xt=urn:btih:" + "ab" * 20))
    assert isinstance(plain, Parsed) and plain.torrent.info_hash == bytes.fromhex("ab" * 20)
    link = MagnetLink(f"magnet:?xs=urn:btpk:{KEY_HEX}&s=6e")
    assert read_link(link) is link  # (resolved over the DHT by the add)
    with pytest.raises(AddTorrentError, match="salt is not hex") as info:
        read_link(MagnetLink(f"magnet:?xs=urn:btpk:{KEY_HEX}&s=zz"))
    assert info.value.kind == "magnet"
