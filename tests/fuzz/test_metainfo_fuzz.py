"""Mutated torrents and magnet links only ever raise our typed errors, and whatever loads keeps
its promises (safe paths, consistent piece space)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from torrent_engine.errors import MagnetError, MetainfoError
from torrent_engine.formats.bencode import BencodeError, decode, encode
from torrent_engine.formats.magnet import parse_magnet
from torrent_engine.formats.metainfo import Torrent

SAMPLE_BYTES = (Path(__file__).resolve().parents[2] / "examples" / "sample.torrent").read_bytes()
SAMPLE = decode(SAMPLE_BYTES)
assert isinstance(SAMPLE, dict)

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

leaf_values = (
    st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.sampled_from([0, 1, -1, 2, 16384, 32768, 2**40])
    | st.binary(max_size=40)
    | st.sampled_from([b"", b"..", b".", b"/", b"a/b", b"\x00", b"\xff\xfe", b"p", b"x" * 300])
)
bvalues = st.recursive(
    leaf_values,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from([b"", b"length", b"path", b"attr", b"pieces root", b"name", b"x"])
            | st.binary(max_size=6),
            children,
            max_size=4,
        )
    ),
    max_leaves=12,
)


def check_invariants(t: Torrent) -> None:
    """What every loaded torrent promises to the rest of the engine."""
    assert t.num_pieces > 0
    end = 0
    for f in t.files:
        assert f.length >= 0 and f.offset >= end
        assert f.path and all(c not in ("", ".", "..") and "/" not in c and "\x00" not in c for c in f.path)
        end = f.offset + f.length
    real = [f.path for f in t.files if not f.pad]
    assert len(set(real)) == len(real)
    assert sum(t.piece_size(i) for i in range(t.num_pieces)) <= t.total_length
    for i in range(t.num_pieces):
        h = t.expected_piece_hash_v2(i)
        assert (h is None) if not t.is_v2 else (h is None or len(h) == 32)
    if t.is_v1:
        assert sum(t.piece_size(i) for i in range(t.num_pieces)) == t.total_length


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path into a nested dict/list structure."""
    out: list[tuple[Any, ...]] = []
    if isinstance(node, dict):
        for k, v in node.items():
            out.append((*prefix, k))
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.append((*prefix, i))
            out.extend(_paths(v, (*prefix, i)))
    return out


ALL_PATHS = _paths(SAMPLE)


@FUZZ
@given(st.data())
def test_structured_mutations_raise_only_metainfo_error(data: st.DataObject) -> None:
    top = copy.deepcopy(SAMPLE)
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(ALL_PATHS))
        node: Any = top
        try:
            for k in path[:-1]:
                node = node[k]
            action = data.draw(st.sampled_from(["replace", "delete", "add"]))
            if action == "replace":
                node[path[-1]] = data.draw(bvalues)
            elif action == "delete":
                del node[path[-1]]
            elif isinstance(node, dict):
                node[data.draw(st.binary(max_size=8))] = data.draw(bvalues)
            elif isinstance(node, list):
                node.append(data.draw(bvalues))
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed this path
    try:
        raw = encode(top)
    except BencodeError:
        return  # the mutation built what bencode cannot express (an int dict key): no input
    try:
        t = Torrent.from_bytes(raw)
    except MetainfoError:
        return
    check_invariants(t)


@FUZZ
@given(st.data())
def test_byte_mutations_raise_only_typed_errors(data: st.DataObject) -> None:
    raw = bytearray(SAMPLE_BYTES)
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["flip", "delete", "insert", "truncate"]))
        pos = data.draw(st.integers(0, len(raw) - 1))
        if kind == "flip":
            raw[pos] = data.draw(st.integers(0, 255))
        elif kind == "delete":
            del raw[pos : pos + data.draw(st.integers(1, 8))]
        elif kind == "insert":
            raw[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
        else:
            del raw[pos:]
        if not raw:
            raw = bytearray(b"d")
    try:
        t = Torrent.from_bytes(bytes(raw))
    except (MetainfoError, BencodeError):
        return
    check_invariants(t)


@FUZZ
@given(st.binary(max_size=300))
def test_random_info_bytes_raise_only_typed_errors(info: bytes) -> None:
    try:
        Torrent.from_info_bytes(info)
    except (MetainfoError, BencodeError):
        pass


_magnet_piece = st.sampled_from(
    [
        "xt=urn:btih:",
        "xt=urn:btmh:1220",
        "dn=",
        "tr=",
        "ws=",
        "xl=",
        "x.pe=",
        "so=",
        "&",
        "=",
        "%",
        "%zz",
        ":",
    ]
)


@FUZZ
@given(st.lists(_magnet_piece | st.text(max_size=50), max_size=12))
def test_random_magnets_raise_only_magnet_error(parts: list[str]) -> None:
    try:
        m = parse_magnet("magnet:?" + "".join(parts))
    except MagnetError:
        return
    assert parse_magnet(m.to_uri()) == m
