"""bencode against bencode.py (the reference) on canonical input, and never anything but
BencodeError on random or mutated input."""

from __future__ import annotations

import bencodepy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from torrent_engine.formats.bencode import BencodeError, decode, encode

ints = st.integers(min_value=-(2**63), max_value=2**63 - 1)
values = st.recursive(
    ints | st.binary(max_size=64),
    lambda children: st.lists(children, max_size=6)
    | st.dictionaries(st.binary(max_size=12), children, max_size=6),
    max_leaves=40,
)


@given(values)
def test_encode_matches_reference(value: object) -> None:
    assert encode(value) == bencodepy.encode(value)


@given(values)
def test_decode_matches_reference_on_canonical_input(value: object) -> None:
    data = bencodepy.encode(value)
    assert decode(data) == bencodepy.decode(data)
    assert encode(decode(data)) == data


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=512))
def test_random_bytes_only_raise_bencode_error(data: bytes) -> None:
    try:
        decode(data)
    except BencodeError:
        pass


@given(values, st.data())
def test_mutated_input_only_raises_bencode_error(value: object, data: st.DataObject) -> None:
    raw = bytearray(encode(value))
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        pos = data.draw(st.integers(0, len(raw)))
        if op == "flip" and pos < len(raw):
            raw[pos] = data.draw(st.sampled_from(b"0123456789:-iledx\x00\xff"))
        elif op == "insert":
            raw[pos:pos] = data.draw(st.sampled_from([b"i", b"l", b"d", b"e", b"0", b":", b"9"]))
        elif op == "delete" and pos < len(raw):
            del raw[pos]
        else:
            del raw[pos:]
    try:
        result = decode(bytes(raw))
    except BencodeError:
        return
    # Whatever decodes must be canonical: re-encoding gives the same bytes back.
    assert encode(result) == bytes(raw)
