"""BEP 44: arbitrary data in the DHT. Targets, signing buffers, Ed25519 signatures and the
store a node keeps for ``put`` requests (sans-I/O: time is handed in).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ...errors import DHTError
from ...formats.bencode import BValue, encode
from . import krpc

__all__ = [
    "Item",
    "ItemStore",
    "immutable_target",
    "mutable_target",
    "public_key_bytes",
    "sign",
    "signing_buffer",
    "verify",
]

MAX_VALUE_SIZE = 1000  # BEP 44: bencoded 'v' may be refused above 1000 bytes
MAX_SALT_SIZE = 64  # BEP 44
MAX_SEQ = 0x7FFFFFFFFFFFFFFF  # BEP 44: seq SHOULD not exceed MAX_INT64
ITEM_TTL = 2 * 60 * 60  # BEP 44: items may expire after 2 hours


def immutable_target(value: BValue) -> bytes:
    """SHA-1 of the bencoded value."""
    return hashlib.sha1(encode(value)).digest()


def mutable_target(public_key: bytes, salt: bytes = b"") -> bytes:
    """SHA-1 of the public key followed by the salt."""
    return hashlib.sha1(public_key + salt).digest()


def signing_buffer(value: BValue, seq: int, salt: bytes = b"") -> bytes:
    """``(4:salt<len>:<salt>)3:seqi<seq>e1:v<bencoded v>`` as BEP 44 prescribes."""
    prefix = b"4:salt%d:%s" % (len(salt), salt) if salt else b""
    return prefix + b"3:seqi%de1:v" % seq + encode(value)


def public_key_bytes(private_key: Ed25519PrivateKey) -> bytes:
    """The raw 32-byte ed25519 public key of ``private_key``."""
    return private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def sign(private_key: Ed25519PrivateKey, value: BValue, seq: int, salt: bytes = b"") -> bytes:
    """The BEP 44 signature of a mutable item (``value``, ``seq``, ``salt``)."""
    return private_key.sign(signing_buffer(value, seq, salt))


def verify(public_key: bytes, signature: bytes, value: BValue, seq: int, salt: bytes = b"") -> bool:
    """Whether ``signature`` is ``public_key``'s valid BEP 44 signature of the item; False on any fault."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, signing_buffer(value, seq, salt))
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True, slots=True)
class Item:
    """A stored item: immutable when ``key`` is None."""

    value: BValue
    key: bytes | None = None
    signature: bytes | None = None
    seq: int | None = None
    salt: bytes = b""
    expires: float = 0.0

    @property
    def target(self) -> bytes:
        """The item's DHT target: SHA-1 of the value (immutable) or of key + salt (mutable)."""
        if self.key is None:
            return immutable_target(self.value)
        return mutable_target(self.key, self.salt)


class ItemStore:
    """Items by target, checked on the way in; ``put`` returns None or a (code, message) error."""

    def __init__(self, *, max_items: int = 2000) -> None:
        self.max_items = max_items
        self._items: dict[bytes, Item] = {}

    def __len__(self) -> int:
        return len(self._items)

    def get(self, target: bytes, now: float) -> Item | None:
        """The stored item of ``target``, or None (expired items are dropped)."""
        item = self._items.get(target)
        if item is not None and item.expires <= now:
            del self._items[target]
            return None
        return item

    def put(self, put: krpc.PutItem, now: float) -> tuple[bytes, tuple[int, str] | None]:
        """Validate and store a put request. Returns (target, error-or-None)."""
        try:
            encoded = encode(put.value)
        except (DHTError, ValueError) as exc:
            return b"", (krpc.ERROR_PROTOCOL, f"invalid value: {exc}")
        if len(encoded) > MAX_VALUE_SIZE:
            return b"", (krpc.ERROR_MESSAGE_TOO_BIG, "message (v field) too big")
        if put.key is None:
            target = hashlib.sha1(encoded).digest()
            self._store(Item(put.value, expires=now + ITEM_TTL), target, now)
            return target, None
        if len(put.salt) > MAX_SALT_SIZE:
            return b"", (krpc.ERROR_SALT_TOO_BIG, "salt (salt field) too big")
        seq = put.seq if put.seq is not None else 0
        if not 0 <= seq <= MAX_SEQ:
            return b"", (krpc.ERROR_PROTOCOL, "sequence number out of range")
        target = mutable_target(put.key, put.salt)
        if put.signature is None or not verify(put.key, put.signature, put.value, seq, put.salt):
            return target, (krpc.ERROR_INVALID_SIGNATURE, "invalid signature")
        current = self.get(target, now)
        if current is not None and current.seq is not None:
            if put.cas is not None and put.cas != current.seq:
                return target, (
                    krpc.ERROR_CAS_MISMATCH,
                    "the CAS hash mismatched, re-read value and try again",
                )
            if seq < current.seq:
                return target, (krpc.ERROR_SEQ_TOO_LOW, "sequence number less than current")
            if seq == current.seq and encode(current.value) != encoded:
                return target, (krpc.ERROR_SEQ_TOO_LOW, "sequence number not greater than current")
        item = Item(put.value, put.key, put.signature, seq, put.salt, now + ITEM_TTL)
        self._store(item, target, now)
        return target, None

    def _store(self, item: Item, target: bytes, now: float) -> None:
        if target not in self._items and len(self._items) >= self.max_items:
            for t in [t for t, i in self._items.items() if i.expires <= now]:
                del self._items[t]
            if len(self._items) >= self.max_items:
                del self._items[min(self._items, key=lambda t: self._items[t].expires)]
        self._items[target] = item
