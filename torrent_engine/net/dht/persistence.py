"""The DHT's state file: our node id and the routing table's contacts, bencoded (compact node
info, IPv4 and IPv6 apart), written atomically. Encoding and decoding are pure; reading and
writing are plain blocking calls for a worker thread."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ...errors import DHTError
from ...formats.bencode import decode, encode
from . import krpc
from .krpc import NodeInfo

__all__ = ["SavedState", "decode_state", "encode_state", "write_atomically"]


@dataclass(frozen=True, slots=True)
class SavedState:
    """What a state file holds: the node id it was saved with (None if absent or malformed) and
    the contacts of the table."""

    node_id: bytes | None
    nodes: list[NodeInfo]


def encode_state(node_id: bytes, nodes: list[NodeInfo]) -> bytes:
    """The state file's bytes for ``node_id`` and the table's ``nodes``."""
    v4 = [n for n in nodes if ":" not in n.host]
    v6 = [n for n in nodes if ":" in n.host]
    return encode({b"id": node_id, b"nodes": krpc.encode_compact_nodes(v4),
                   b"nodes6": krpc.encode_compact_nodes(v6)})


def decode_state(data: bytes) -> SavedState:
    """The state in ``data``; ``BencodeError``/``DHTError`` when it is not a state file."""
    state = decode(data)
    if not isinstance(state, dict):
        raise DHTError("state is not a dict")
    saved_id = state.get(b"id")
    nodes: list[NodeInfo] = []
    raw4 = state.get(b"nodes", b"")
    raw6 = state.get(b"nodes6", b"")
    if isinstance(raw4, bytes):
        nodes += krpc.decode_compact_nodes(raw4)
    if isinstance(raw6, bytes):
        nodes += krpc.decode_compact_nodes(raw6, v6=True)
    ok_id = isinstance(saved_id, bytes) and len(saved_id) == 20
    return SavedState(saved_id if ok_id else None, nodes)  # type: ignore[arg-type]


def write_atomically(path: Path, data: bytes) -> None:
    """Blocking: write ``data`` to ``path`` through a temporary file, fsync, rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
