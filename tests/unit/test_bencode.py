"""bencode: valid forms, every rejection rule with its offset, spans, encoder."""

from __future__ import annotations

import pytest

from torrent_engine.formats.bencode import BencodeError, decode, decode_with_spans, encode


@pytest.mark.parametrize(
    ("data", "value"),
    [
        (b"i0e", 0),
        (b"i-42e", -42),
        (b"i9223372036854775807e", 2**63 - 1),
        (b"i-9223372036854775808e", -(2**63)),
        (b"0:", b""),
        (b"4:spam", b"spam"),
        (b"le", []),
        (b"de", {}),
        (b"l4:spami42ee", [b"spam", 42]),
        (b"d3:bar4:spam3:fooi42ee", {b"bar": b"spam", b"foo": 42}),
        (b"d1:ad1:bl0:eee", {b"a": {b"b": [b""]}}),
    ],
)
def test_decodes_valid_input(data: bytes, value: object) -> None:
    assert decode(data) == value
    assert encode(value) == data


@pytest.mark.parametrize(
    ("data", "offset", "reason"),
    [
        (b"i03e", 0, "leading zero"),
        (b"i-0e", 0, "negative zero"),
        (b"i-03e", 0, "leading zero"),
        (b"ie", 0, "empty"),
        (b"i-e", 0, "empty"),
        (b"i1.5e", 0, "not decimal"),
        (b"i12", 0, "not terminated"),
        (b"i9223372036854775808e", 0, "64-bit"),
        (b"i-9223372036854775809e", 0, "64-bit"),
        (b"03:abc", 0, "leading zero"),
        (b"5:abc", 0, "past the end"),
        (b"l5:abce", 1, "past the end"),
        (b"3abc", 0, "not terminated"),
        (b"-3:abc", 0, "unexpected byte"),
        (b"99999999999999999999:x", 0, "too large"),
        (b"i1ei2e", 3, "trailing data"),
        (b"4:spamx", 6, "trailing data"),
        (b"di1ei2ee", 1, "not a byte string"),
        (b"dlei2ee", 1, "not a byte string"),
        (b"d1:bi1e1:ai2ee", 7, "sorted order"),
        (b"d1:ai1e1:ai2ee", 7, "duplicate"),
        (b"d1:ae", 4, "without a value"),
        (b"d1:a", 4, "end of input"),
        (b"d1:ai1e", 7, "end of input"),
        (b"l", 1, "end of input"),
        (b"e", 0, "outside"),
        (b"", 0, "empty input"),
        (b"x", 0, "unexpected byte"),
    ],
)
def test_rejects_malformed_input_with_offset(data: bytes, offset: int, reason: str) -> None:
    with pytest.raises(BencodeError) as info:
        decode(data)
    assert info.value.offset == offset
    assert reason in info.value.reason


def test_lenient_mode_tolerates_unsorted_keys_but_not_duplicates() -> None:
    assert decode(b"d1:bi1e1:ai2ee", strict=False) == {b"a": 2, b"b": 1}
    with pytest.raises(BencodeError, match="duplicate"):
        decode(b"d1:bi1e1:ai2e1:bi3ee", strict=False)


def test_nesting_limit_gives_error_not_recursion_error() -> None:
    deep = b"l" * 100_000 + b"e" * 100_000
    with pytest.raises(BencodeError, match="nesting deeper than 100") as info:
        decode(deep)
    assert info.value.offset == 100
    assert decode(b"l" * 100 + b"e" * 100, max_depth=100) is not None
    with pytest.raises(BencodeError):
        decode(b"l" * 11 + b"e" * 11, max_depth=10)


def test_size_limit() -> None:
    with pytest.raises(BencodeError, match="limit"):
        decode(b"4:spam", max_size=5)
    assert decode(b"4:spam", max_size=6) == b"spam"


def test_huge_declared_length_allocates_nothing() -> None:
    with pytest.raises(BencodeError, match="past the end"):
        decode(b"999999999999:x")


def test_accepts_bytearray_and_memoryview_rejects_str() -> None:
    assert decode(bytearray(b"i1e")) == 1
    assert decode(memoryview(b"le")) == []
    with pytest.raises(TypeError):
        decode("i1e")  # type: ignore[arg-type]


def test_spans_give_exact_bytes_of_top_level_values() -> None:
    # Unsorted keys inside "info" would change under re-encoding; the span keeps them.
    info = b"d4:name1:x6:lengthi3ee"
    data = b"d8:announce3:url4:info" + info + b"5:otheri7ee"
    value, spans = decode_with_spans(data, strict=False)
    assert isinstance(value, dict)
    start, end = spans[b"info"]
    assert data[start:end] == info
    assert encode(value[b"info"]) != info
    s, e = spans[b"other"]
    assert data[s:e] == b"i7e"
    s, e = spans[b"announce"]
    assert data[s:e] == b"3:url"


def test_spans_of_non_dict_are_empty() -> None:
    assert decode_with_spans(b"l1:ae") == ([b"a"], {})


def test_encoder_sorts_keys_and_accepts_str() -> None:
    assert encode({"b": 1, b"a": "x"}) == b"d1:a1:x1:bi1ee"
    assert encode((1, [2])) == b"li1eli2eee"
    assert encode("é") == b"2:\xc3\xa9"


@pytest.mark.parametrize("bad", [True, None, 1.5, {1: 2}, {"a": {"b": object()}}])
def test_encoder_rejects_unencodable_values(bad: object) -> None:
    with pytest.raises(BencodeError):
        encode(bad)


def test_encoder_rejects_keys_colliding_after_encoding() -> None:
    with pytest.raises(BencodeError, match="duplicate"):
        encode({"a": 1, b"a": 2})


def test_encoder_error_names_the_path() -> None:
    with pytest.raises(BencodeError, match="/info/files"):
        encode({"info": {"files": 1.0}})


@pytest.mark.timeout(5)
@pytest.mark.parametrize("data", [b"l10", b"d1:a10", b"l1", b"d10"])
def test_string_length_without_colon_is_an_error_not_a_loop(data: bytes) -> None:
    # Regression: a length with no ':' after it once looked numeric to the fast path.
    with pytest.raises(BencodeError, match="not terminated"):
        decode(data)


def test_encoder_nesting_limit() -> None:
    deep: list[object] = []
    for _ in range(200):
        deep = [deep]
    with pytest.raises(BencodeError, match="nesting deeper"):
        encode(deep)


@pytest.mark.parametrize("size", [2047, 2048, 5000, 100_000])
def test_long_strings_in_every_position(size: int) -> None:
    # Short length prefixes take a table fast path; longer ones the general path.
    blob = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    value = {blob: [blob, {b"k": blob}], b"a": blob}
    data = encode(value)
    assert decode(data) == value
    assert decode(encode([blob, blob])) == [blob, blob]


def test_a_decode_leaves_no_cycle_for_the_garbage_collector() -> None:
    # (the nested parsers called each other through their cells: 20 objects a decode that only
    # the collector freed, nearly all it found while 10 000 torrents were added)
    import gc

    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        blob = encode({b"a": [1, [2, {b"x": b"y"}]], b"b": b"zz", b"c": {b"d": -3}})
        for _ in range(10):
            assert decode(blob) == {b"a": [1, [2, {b"x": b"y"}]], b"b": b"zz", b"c": {b"d": -3}}
            with pytest.raises(BencodeError):
                decode(b"d1:ai1e")  # (an error on the way out too)
        gc.collect()
        left = [o for o in gc.garbage if "_decode.<locals>" in getattr(o, "__qualname__", "")]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert left == []
