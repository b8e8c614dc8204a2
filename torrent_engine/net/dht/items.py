"""BEP 44 over a running DHT node: get and put of immutable and mutable items.

The node does the lookups (``DhtNode.item_lookup``) and the stores (``DhtNode.put_to``); this
module checks what comes back (hashes, signatures, sizes) and builds what goes out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ...errors import BencodeError, DHTError
from ...formats.bencode import BValue, encode
from . import bep44, krpc

if TYPE_CHECKING:
    from .node import DhtNode


def _check_value(value: BValue) -> None:
    if len(encode(value)) > bep44.MAX_VALUE_SIZE:
        raise DHTError("value larger than 1000 bytes (BEP 44)")


async def get_immutable(node: DhtNode, target: bytes) -> BValue | None:
    """BEP 44 get of an immutable item; the value is checked against its hash."""

    def ok(r: krpc.Response) -> bool:
        try:
            return r.value is not None and bep44.immutable_target(r.value) == target
        except (BencodeError, DHTError):
            return False

    _, found = await node.item_lookup(target, ok)
    return found[0].value if found else None


async def put_immutable(node: DhtNode, value: BValue) -> tuple[bytes, int]:
    """BEP 44 put of an immutable item. Returns (target, number of nodes that stored it)."""
    _check_value(value)
    target = bep44.immutable_target(value)
    lookup, _ = await node.item_lookup(target, lambda r: False)
    stored = await node.put_to(lookup, lambda token: krpc.PutItem(
        tid=b"", node_id=node.node_id, token=token, value=value))
    return target, stored


async def get_mutable(node: DhtNode, public_key: bytes, salt: bytes = b"") -> tuple[BValue, int] | None:
    """BEP 44 get of a mutable item: the verified value with the highest seq, and that seq."""
    item = await get_mutable_item(node, public_key, salt)
    return None if item is None else (item.value, item.seq or 0)


async def get_mutable_item(node: DhtNode, public_key: bytes, salt: bytes = b"") -> bep44.Item | None:
    """As ``get_mutable``, the whole signed item: what ``put_signed`` stores again."""

    def ok(r: krpc.Response) -> bool:
        return (r.key == public_key and r.signature is not None and r.seq is not None
                and r.value is not None and bep44.verify(public_key, r.signature, r.value, r.seq, salt))

    _, found = await node.item_lookup(bep44.mutable_target(public_key, salt), ok)
    if not found:
        return None
    best = max(found, key=lambda r: r.seq or 0)
    assert best.value is not None and best.seq is not None
    return bep44.Item(best.value, public_key, best.signature, best.seq, salt)


async def put_signed(node: DhtNode, item: bep44.Item) -> int:
    """Put a mutable item someone else signed again, as it is (BEP 44: whoever uses an item keeps
    it alive); returns how many nodes stored it."""
    if item.key is None or item.signature is None or item.seq is None:
        raise DHTError("only a signed mutable item can be put again")
    key, signature, seq, salt, value = item.key, item.signature, item.seq, item.salt, item.value
    lookup, _ = await node.item_lookup(item.target, lambda r: False)
    return await node.put_to(lookup, lambda token: krpc.PutItem(
        tid=b"", node_id=node.node_id, token=token, value=value, key=key, signature=signature, seq=seq,
        salt=salt))


async def put_mutable(node: DhtNode, private_key: Ed25519PrivateKey, value: BValue, *, seq: int | None = None,
                      salt: bytes = b"", cas: int | None = None) -> tuple[bytes, int, int]:
    """BEP 44 put of a mutable item. Without ``seq``, uses one more than the highest seen.
    Returns (target, seq used, number of nodes that stored it)."""
    if len(salt) > bep44.MAX_SALT_SIZE:
        raise DHTError("salt longer than 64 bytes (BEP 44)")
    _check_value(value)
    key = bep44.public_key_bytes(private_key)
    target = bep44.mutable_target(key, salt)
    lookup, found = await node.item_lookup(target, lambda r: r.seq is not None)
    if seq is None:
        seen = [r.seq for r in found if r.seq is not None]
        seq = max(seen) + 1 if seen else 1
    sig = bep44.sign(private_key, value, seq, salt)
    used = seq
    stored = await node.put_to(lookup, lambda token: krpc.PutItem(
        tid=b"", node_id=node.node_id, token=token, value=value, key=key, signature=sig, seq=used,
        salt=salt, cas=cas))
    return target, seq, stored
