"""magnet: parsing every parameter we use, the errors for bad URIs, and round trips."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from torrent_engine.errors import MagnetError
from torrent_engine.formats.magnet import Magnet, parse_magnet
from torrent_engine.formats.metainfo import Torrent

H1 = bytes(range(20))
H2 = bytes(range(100, 132))
SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample.torrent"


def test_btih_hex_and_base32_give_the_same_hash() -> None:
    hexed = parse_magnet(f"magnet:?xt=urn:btih:{H1.hex().upper()}")
    b32 = parse_magnet(f"magnet:?xt=urn:btih:{base64.b32encode(H1).decode().lower()}")
    assert hexed.info_hash_v1 == b32.info_hash_v1 == H1
    assert hexed.info_hash == H1 and hexed.info_hash_v2 is None


def test_btmh_v2_only_truncates_for_the_wire() -> None:
    m = parse_magnet(f"magnet:?xt=urn:btmh:1220{H2.hex()}")
    assert m.info_hash_v1 is None and m.info_hash_v2 == H2 and m.info_hash == H2[:20]


def test_hybrid_with_every_parameter() -> None:
    uri = (
        f"magnet:?xt=urn:btih:{H1.hex()}&xt=urn:btmh:1220{H2.hex()}"
        "&dn=My+Show%20S01&xl=12345"
        "&tr=http%3A%2F%2Ft1%2Fannounce&tr.1=udp://t2:80&tr=http%3A%2F%2Ft1%2Fannounce"
        "&ws=http%3A%2F%2Fseed%2F&x.pe=10.0.0.1:6881&x.pe=%5B::1%5D:51413"
        "&so=0,2,4-6&foo=bar&xt=urn:ed2k:abcd"
    )
    m = parse_magnet(uri)
    assert m.info_hash_v1 == H1 and m.info_hash_v2 == H2
    assert m.display_name == "My Show S01"
    assert m.exact_length == 12345
    assert m.trackers == ("http://t1/announce", "udp://t2:80")
    assert m.web_seeds == ("http://seed/",)
    assert m.peers == (("10.0.0.1", 6881), ("::1", 51413))
    assert m.select_only == ((0, 0), (2, 2), (4, 6))
    assert [m.selected(i) for i in range(8)] == [True, False, True, False, True, True, True, False]
    assert parse_magnet(m.to_uri()) == m


def test_no_select_only_means_everything_selected() -> None:
    assert parse_magnet(f"magnet:?xt=urn:btih:{H1.hex()}").selected(99)


@pytest.mark.parametrize(
    ("uri", "param"),
    [
        ("http://example.com/x.torrent", ""),
        ("magnet:?dn=nothing", "xt"),
        ("magnet:?xt=urn:sha1:abcdef", "xt"),
        ("magnet:?xt=urn:btih:1234", "xt"),
        ("magnet:?xt=urn:btih:" + "zz" * 20, "xt"),
        ("magnet:?xt=urn:btih:" + "1" * 32, "xt"),
        (f"magnet:?xt=urn:btih:{H1.hex()}&xt=urn:btih:{bytes(20).hex()}", "xt"),
        ("magnet:?xt=urn:btmh:1114" + "00" * 20, "xt"),
        ("magnet:?xt=urn:btmh:1220" + "00" * 31, "xt"),
        ("magnet:?xt=urn:btmh:12zz", "xt"),
        (f"magnet:?xt=urn:btmh:1220{H2.hex()}&xt=urn:btmh:1220{bytes(32).hex()}", "xt"),
        (f"magnet:?xt=urn:btih:{H1.hex()}&xl=-5", "xl"),
        (f"magnet:?xt=urn:btih:{H1.hex()}&xl=1e9", "xl"),
        (f"magnet:?xt=urn:btih:{H1.hex()}&x.pe=nohost", "x.pe"),
        (f"magnet:?xt=urn:btih:{H1.hex()}&x.pe=1.2.3.4:0", "x.pe"),
        (f"magnet:?xt=urn:btih:{H1.hex()}&x.pe=1.2.3.4:70000", "x.pe"),
        (f"magnet:?xt=urn:btih:{H1.hex()}&x.pe=::1:80", "x.pe"),
        (f"magnet:?xt=urn:btih:{H1.hex()}&so=a", "so"),
        (f"magnet:?xt=urn:btih:{H1.hex()}&so=5-2", "so"),
        (f"magnet:?xt=urn:btih:{H1.hex()}&so=1-", "so"),
        (f"magnet:?xt=urn:btih:{H1.hex()}&so=" + ",".join(map(str, range(10_002))), "so"),
        (f"magnet:?xt=urn:btih:{H1.hex()}&dn", "dn"),
        # found by the fuzzer: non-ASCII base32 and non-ASCII digits must be MagnetError too
        ("magnet:?xt=urn:btih:" + "A" * 31 + "\x80", "xt"),
        (f"magnet:?xt=urn:btih:{H1.hex()}&xl=\u00b2", "xl"),
        (f"magnet:?xt=urn:btih:{H1.hex()}&so=\u00b2", "so"),
        (f"magnet:?xt=urn:btih:{H1.hex()}&so=1-\u0663", "so"),
        (f"magnet:?xt=urn:btih:{H1.hex()}&x.pe=1.2.3.4:\u00b9", "x.pe"),
    ],
    ids=lambda v: v[:60] if isinstance(v, str) else None,
)
def test_bad_uris_name_the_parameter(uri: str, param: str) -> None:
    with pytest.raises(MagnetError) as exc:
        parse_magnet(uri)
    assert exc.value.param == param


def test_magnet_needs_a_hash_of_the_right_size() -> None:
    with pytest.raises(MagnetError):
        Magnet()
    with pytest.raises(MagnetError):
        Magnet(info_hash_v1=b"short")


def test_torrent_magnet_uri_round_trips() -> None:
    t = Torrent.load(SAMPLE)
    m = parse_magnet(t.magnet_uri())
    assert m.info_hash_v1 == t.info_hash_v1 and m.info_hash_v2 == t.info_hash_v2
    assert m.info_hash == t.info_hash
    assert m.display_name == t.name
    assert m.trackers == tuple(u for tier in t.trackers for u in tier)
    assert m.web_seeds == t.web_seeds


_text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=30)
_url = st.builds(lambda s: "http://h/" + s, _text)


@given(
    v1=st.none() | st.binary(min_size=20, max_size=20),
    v2=st.none() | st.binary(min_size=32, max_size=32),
    name=st.none() | _text,
    trackers=st.lists(_url, max_size=4, unique=True),
    seeds=st.lists(_url, max_size=3, unique=True),
    peers=st.lists(
        st.tuples(st.sampled_from(["1.2.3.4", "::1", "host.example", "fe80::2"]), st.integers(1, 65535)),
        max_size=3,
        unique=True,
    ),
    length=st.none() | st.integers(0, 2**62),
    ranges=st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 50)), max_size=4),
)
def test_to_uri_then_parse_is_identity(
    v1: bytes | None,
    v2: bytes | None,
    name: str | None,
    trackers: list[str],
    seeds: list[str],
    peers: list[tuple[str, int]],
    length: int | None,
    ranges: list[tuple[int, int]],
) -> None:
    if v1 is None and v2 is None:
        v1 = H1
    m = Magnet(
        info_hash_v1=v1,
        info_hash_v2=v2,
        display_name=name,
        trackers=tuple(t.strip() for t in trackers if t.strip() == t),
        web_seeds=tuple(s for s in seeds if s.strip() == s),
        peers=tuple(peers),
        exact_length=length,
        select_only=tuple((lo, lo + span) for lo, span in ranges),
    )
    assert parse_magnet(m.to_uri()) == m
