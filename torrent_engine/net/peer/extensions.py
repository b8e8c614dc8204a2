"""Payload codecs of the extension protocol (BEP 10): the extension handshake, ut_metadata
(BEP 9) and ut_pex (BEP 11). Sans-I/O: payload bytes (after the extended id) in and out.

Peers are untrusted: every size is bounded, malformed payloads raise ``PeerProtocolError``;
optional handshake fields of the wrong type are ignored, as BEP 10 asks of unknown content.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ...errors import BencodeError, PeerProtocolError
from ...formats import compact
from ...formats.bencode import BValue, decode, encode
from ...formats.infohash import names_info

__all__ = [
    "DEFAULT_MAX_METADATA_SIZE",
    "DEFAULT_REQQ",
    "EXTENSION_HANDSHAKE_ID",
    "METADATA_PIECE_SIZE",
    "PEX_ENCRYPTION",
    "PEX_INTERVAL",
    "PEX_MAX_ENTRIES",
    "PEX_HOLEPUNCH",
    "PEX_REACHABLE",
    "PEX_SEED",
    "PEX_UTP",
    "UT_METADATA",
    "UT_PEX",
    "ExtensionHandshake",
    "MetadataAssembler",
    "MetadataData",
    "MetadataMessage",
    "MetadataReject",
    "MetadataRequest",
    "PexMessage",
    "PexState",
    "decode_compact_peers",
    "decode_metadata_message",
    "encode_compact_peers",
    "encode_metadata_message",
    "metadata_piece",
    "metadata_piece_count",
]

EXTENSION_HANDSHAKE_ID = 0  # BEP 10: extended message id 0 is the handshake
UT_METADATA = "ut_metadata"  # BEP 9
UT_PEX = "ut_pex"  # BEP 11
DEFAULT_REQQ = 250  # BEP 10: libtorrent's default number of outstanding requests
METADATA_PIECE_SIZE = 16 * 1024  # BEP 9: metadata is exchanged in 16 KiB pieces
DEFAULT_MAX_METADATA_SIZE = 32 * 1024 * 1024  # our cap on an info dict announced by a peer
MAX_PEX_PEERS = 1000  # our cap per list; BEP 11 asks for at most 50 after the first message
PEX_MAX_ENTRIES = 50  # BEP 11: added (and dropped) v4+v6 contacts per message after the first
PEX_INTERVAL = 60.0  # BEP 11: at most one PEX message per minute

PEX_ENCRYPTION = 0x01  # BEP 11 flag: prefers encryption
PEX_SEED = 0x02  # BEP 11 flag: seed / upload_only
PEX_UTP = 0x04  # BEP 11 flag: supports uTP
PEX_HOLEPUNCH = 0x08  # BEP 11 flag: supports ut_holepunch
PEX_REACHABLE = 0x10  # BEP 11 flag: outgoing connection, peer is reachable

_MAX_DEPTH = 16


def _decode_dict(payload: bytes, what: str) -> dict[bytes, BValue]:
    try:
        value = decode(payload, strict=False, max_depth=_MAX_DEPTH)
    except BencodeError as exc:
        raise PeerProtocolError(f"malformed {what}: {exc}") from None
    if not isinstance(value, dict):
        raise PeerProtocolError(f"{what} is not a bencoded dictionary")
    return value


def _compact_ip(raw: BValue) -> str | None:
    if isinstance(raw, bytes) and len(raw) in (4, 16):
        return str(compact.parse_ip(raw))
    return None


def _text(raw: BValue) -> str | None:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else None


def _int(raw: BValue) -> int | None:
    return raw if isinstance(raw, int) else None


@dataclass(frozen=True)
class ExtensionHandshake:
    """BEP 10 handshake. ``m`` maps extension names to the ids *we* want to receive them
    with (0 = disabled). ``yourip``/``ipv4``/``ipv6`` are textual addresses."""

    m: Mapping[str, int] = field(default_factory=dict)
    v: str | None = None  # BEP 10: client name and version
    p: int | None = None  # BEP 10: local TCP listen port
    reqq: int | None = None  # BEP 10: outstanding requests the sender supports
    yourip: str | None = None  # BEP 10: the receiver's address as the sender sees it
    ipv4: str | None = None  # BEP 10
    ipv6: str | None = None  # BEP 10
    metadata_size: int | None = None  # BEP 9: size of the info dictionary
    upload_only: bool = False  # BEP 21: the sender is a seed or partial seed
    encryption: bool = False  # "e": the sender prefers MSE (libtorrent, BEP 11 flag 0x01)

    def encode(self) -> bytes:
        """The handshake as an extended-message payload (bencoded)."""
        d: dict[bytes, BValue] = {b"m": {name.encode(): ext_id for name, ext_id in self.m.items()}}
        if self.v is not None:
            d[b"v"] = self.v.encode()
        if self.p is not None:
            d[b"p"] = self.p
        if self.reqq is not None:
            d[b"reqq"] = self.reqq
        if self.yourip is not None:
            d[b"yourip"] = compact.parse_ip(self.yourip).packed
        if self.ipv4 is not None:
            d[b"ipv4"] = ipaddress.IPv4Address(self.ipv4).packed
        if self.ipv6 is not None:
            d[b"ipv6"] = ipaddress.IPv6Address(self.ipv6).packed
        if self.metadata_size is not None:
            d[b"metadata_size"] = self.metadata_size
        if self.upload_only:
            d[b"upload_only"] = 1
        if self.encryption:
            d[b"e"] = 1
        return encode(d)

    @classmethod
    def decode(
        cls, payload: bytes, *, max_metadata_size: int = DEFAULT_MAX_METADATA_SIZE
    ) -> ExtensionHandshake:
        """Parse a peer's extension handshake; ``PeerProtocolError`` when malformed."""
        d = _decode_dict(payload, "extension handshake")
        m: dict[str, int] = {}
        raw_m = d.get(b"m", {})
        if not isinstance(raw_m, dict):
            raise PeerProtocolError("extension handshake 'm' is not a dictionary")
        for name, ext_id in raw_m.items():
            if not isinstance(ext_id, int):
                continue  # BEP 10: ignore what we cannot understand
            if not 0 <= ext_id <= 255:
                raise PeerProtocolError(f"extension {name!r} has id {ext_id}, not a byte")
            m[name.decode("utf-8", "replace")] = ext_id
        port = _int(d.get(b"p", b""))
        reqq = _int(d.get(b"reqq", b""))
        size = _int(d.get(b"metadata_size", b""))
        if size is not None and not 0 < size <= max_metadata_size:
            raise PeerProtocolError(f"metadata_size {size} outside 1..{max_metadata_size}")
        ipv4 = _compact_ip(d.get(b"ipv4", b""))
        ipv6 = _compact_ip(d.get(b"ipv6", b""))
        return cls(
            m=m,
            v=_text(d.get(b"v", 0)),
            p=port if port is not None and 0 < port < 65536 else None,
            reqq=reqq if reqq is not None and reqq > 0 else None,
            yourip=_compact_ip(d.get(b"yourip", b"")),
            ipv4=ipv4 if ipv4 is not None and ":" not in ipv4 else None,
            ipv6=ipv6 if ipv6 is not None and ":" in ipv6 else None,
            metadata_size=size,
            upload_only=bool(_int(d.get(b"upload_only", b""))),
            encryption=bool(_int(d.get(b"e", b""))),
        )


# -- BEP 9 ut_metadata ---------------------------------------------------------------------


@dataclass(frozen=True)
class MetadataRequest:
    """``ut_metadata`` request for one piece of the info dict (BEP 9)."""

    piece: int


@dataclass(frozen=True)
class MetadataData:
    """``ut_metadata`` data: one piece of the info dict of ``total_size`` bytes (BEP 9)."""

    piece: int
    total_size: int
    data: bytes


@dataclass(frozen=True)
class MetadataReject:
    """``ut_metadata`` reject: the peer will not send the piece (BEP 9)."""

    piece: int


MetadataMessage = MetadataRequest | MetadataData | MetadataReject


def metadata_piece_count(metadata_size: int) -> int:
    """How many 16 KiB pieces an info dict of ``metadata_size`` bytes has (BEP 9)."""
    return (metadata_size + METADATA_PIECE_SIZE - 1) // METADATA_PIECE_SIZE


def metadata_piece(info_bytes: bytes, piece: int) -> bytes:
    """Piece ``piece`` of the metadata (the bencoded info dictionary)."""
    if not 0 <= piece < metadata_piece_count(len(info_bytes)):
        raise ValueError(f"metadata piece {piece} out of range")
    return info_bytes[piece * METADATA_PIECE_SIZE : (piece + 1) * METADATA_PIECE_SIZE]


class MetadataAssembler:
    """Collects the pieces of a torrent's metadata (BEP 9) and checks them against the info-hash.

    ``info_hash`` is what the magnet link names: 20 bytes (v1 SHA-1 of the info dict, or a v2
    SHA-256 truncated as on the wire) or 32 (v2 SHA-256). ``size`` comes from a peer's
    ``metadata_size`` and is bounded. ``add`` returns the info dict once every piece is in and
    the hash matches; on a mismatch every piece is dropped (``failed`` counts it) so the caller
    asks again, preferably elsewhere."""

    def __init__(self, info_hash: bytes, size: int, *, max_size: int = DEFAULT_MAX_METADATA_SIZE) -> None:
        if len(info_hash) not in (20, 32):
            raise ValueError("info_hash must be 20 (v1) or 32 (v2) bytes")
        if not 0 < size <= max_size:
            raise PeerProtocolError(f"metadata_size {size} outside 1..{max_size}")
        self.info_hash = info_hash
        self.size = size
        self.num_pieces = metadata_piece_count(size)
        self._pieces: dict[int, bytes] = {}
        self.failed = 0

    def missing(self) -> list[int]:
        """Pieces not received yet, in order."""
        return [i for i in range(self.num_pieces) if i not in self._pieces]

    def add(self, msg: MetadataData) -> bytes | None:
        """Take one data message; the verified info dict when it completes the metadata."""
        if msg.total_size != self.size:
            raise PeerProtocolError(f"ut_metadata total_size {msg.total_size}, expected {self.size}")
        if msg.piece >= self.num_pieces:
            raise PeerProtocolError(f"ut_metadata piece {msg.piece} out of range")
        expected = min(METADATA_PIECE_SIZE, self.size - msg.piece * METADATA_PIECE_SIZE)
        if len(msg.data) != expected:
            raise PeerProtocolError(
                f"ut_metadata piece {msg.piece} has {len(msg.data)} bytes, expected {expected}"
            )
        self._pieces[msg.piece] = msg.data
        if len(self._pieces) < self.num_pieces:
            return None
        info = b"".join(self._pieces[i] for i in range(self.num_pieces))
        if self._matches(info):
            return info
        self._pieces.clear()
        self.failed += 1
        return None

    def _matches(self, info: bytes) -> bool:
        return names_info(self.info_hash, info)


def encode_metadata_message(msg: MetadataMessage) -> bytes:
    """A ``ut_metadata`` message as an extended-message payload."""
    if isinstance(msg, MetadataRequest):
        return encode({b"msg_type": 0, b"piece": msg.piece})
    if isinstance(msg, MetadataData):
        return encode({b"msg_type": 1, b"piece": msg.piece, b"total_size": msg.total_size}) + msg.data
    return encode({b"msg_type": 2, b"piece": msg.piece})


def _dict_end(data: bytes) -> int:
    """Offset just past the bencoded dictionary at the start of ``data`` (BEP 9 data messages
    carry raw bytes after it). A token walk with every length checked; no values are built."""
    n = len(data)
    if not n or data[0] != 0x64:  # 'd'
        raise PeerProtocolError("ut_metadata message does not start with a dictionary")
    pos = 0
    depth = 0
    while pos < n:
        c = data[pos]
        if c in (0x64, 0x6C):  # 'd', 'l'
            depth += 1
            if depth > _MAX_DEPTH:
                raise PeerProtocolError("ut_metadata dictionary nested too deeply")
            pos += 1
        elif c == 0x65:  # 'e'
            depth -= 1
            pos += 1
            if depth == 0:
                return pos
        elif c == 0x69:  # 'i'
            end = data.find(b"e", pos, pos + 24)
            if end < 0:
                break
            pos = end + 1
        elif 0x30 <= c <= 0x39:
            colon = data.find(b":", pos, pos + 12)
            if colon < 0 or not data[pos:colon].isdigit():
                break
            pos = colon + 1 + int(data[pos:colon])
        else:
            break
    raise PeerProtocolError("malformed ut_metadata dictionary")


def decode_metadata_message(
    payload: bytes, *, max_metadata_size: int = DEFAULT_MAX_METADATA_SIZE
) -> MetadataMessage | None:
    """Decode a ut_metadata payload; ``None`` for an unknown msg_type (BEP 9: ignore it)."""
    end = _dict_end(payload)
    d = _decode_dict(payload[:end], "ut_metadata message")
    msg_type = d.get(b"msg_type")
    piece = d.get(b"piece")
    if not isinstance(msg_type, int) or not isinstance(piece, int):
        raise PeerProtocolError("ut_metadata message without integer msg_type and piece")
    if not 0 <= piece < metadata_piece_count(max_metadata_size):
        raise PeerProtocolError(f"ut_metadata piece {piece} out of range")
    tail = payload[end:]
    if msg_type == 1:
        total = d.get(b"total_size")
        if not isinstance(total, int) or not 0 < total <= max_metadata_size:
            raise PeerProtocolError(f"ut_metadata total_size {total!r} outside 1..{max_metadata_size}")
        if piece >= metadata_piece_count(total):
            raise PeerProtocolError(f"ut_metadata piece {piece} beyond total_size {total}")
        expected = min(METADATA_PIECE_SIZE, total - piece * METADATA_PIECE_SIZE)
        if len(tail) != expected:
            raise PeerProtocolError(f"ut_metadata piece {piece} has {len(tail)} bytes, expected {expected}")
        return MetadataData(piece, total, bytes(tail))
    if tail:
        raise PeerProtocolError("ut_metadata request/reject with trailing data")
    if msg_type == 0:
        return MetadataRequest(piece)
    if msg_type == 2:
        return MetadataReject(piece)
    return None


# -- BEP 11 ut_pex -------------------------------------------------------------------------


def encode_compact_peers(peers: Sequence[tuple[str, int]], *, ipv6: bool) -> bytes:
    """BEP 23 / BEP 7 compact form: 4 (or 16) address bytes + 2 port bytes per peer."""
    return compact.encode_peers(peers, ipv6=ipv6)


def decode_compact_peers(data: bytes, *, ipv6: bool, max_peers: int = MAX_PEX_PEERS) -> list[tuple[str, int]]:
    """A PEX peer list by the rules of :mod:`torrent_engine.formats.compact` (port 0 dropped,
    IPv4-mapped as IPv4); a partial entry or more than ``max_peers`` entries is an error."""
    size = compact.peer_entry_size(ipv6)
    if len(data) % size:
        raise PeerProtocolError(f"compact peer list of {len(data)} bytes is not a multiple of {size}")
    if len(data) // size > max_peers:
        raise PeerProtocolError(f"{len(data) // size} peers in one list, more than {max_peers}")
    return compact.decode_peers(data, ipv6=ipv6)


@dataclass(frozen=True)
class PexMessage:
    """BEP 11 ut_pex payload. ``*_flags`` hold one flag byte per added peer (PEX_* bits)."""

    added: tuple[tuple[str, int], ...] = ()
    added_flags: tuple[int, ...] = ()
    added6: tuple[tuple[str, int], ...] = ()
    added6_flags: tuple[int, ...] = ()
    dropped: tuple[tuple[str, int], ...] = ()
    dropped6: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        for peers, flags in ((self.added, self.added_flags), (self.added6, self.added6_flags)):
            if flags and len(flags) != len(peers):
                raise ValueError("one flag byte per added peer, or none")

    def encode(self) -> bytes:
        """The message as a ``ut_pex`` payload (bencoded)."""
        d: dict[bytes, BValue] = {
            b"added": encode_compact_peers(self.added, ipv6=False),
            b"added6": encode_compact_peers(self.added6, ipv6=True),
            b"dropped": encode_compact_peers(self.dropped, ipv6=False),  # BEP 11: IPv4 compact
            b"dropped6": encode_compact_peers(self.dropped6, ipv6=True),
        }
        if self.added:
            d[b"added.f"] = bytes(self.added_flags or (0,) * len(self.added))
        if self.added6:
            d[b"added6.f"] = bytes(self.added6_flags or (0,) * len(self.added6))
        return encode(d)

    @classmethod
    def decode(cls, payload: bytes, *, max_peers: int = MAX_PEX_PEERS) -> PexMessage:
        """Decode a ut_pex payload. Flag strings of the wrong length are ignored (all flags 0)."""
        d = _decode_dict(payload, "ut_pex message")

        def peers(key: bytes, ipv6: bool) -> tuple[tuple[str, int], ...]:
            raw = d.get(key, b"")
            if not isinstance(raw, bytes):
                raise PeerProtocolError(f"ut_pex {key.decode()} is not a string")
            return tuple(decode_compact_peers(raw, ipv6=ipv6, max_peers=max_peers))

        def flags(key: bytes, count: int) -> tuple[int, ...]:
            raw = d.get(key, b"")
            if isinstance(raw, bytes) and len(raw) == count:
                return tuple(raw)
            return (0,) * count

        added = peers(b"added", False)
        added6 = peers(b"added6", True)
        return cls(
            added=added,
            added_flags=flags(b"added.f", len(added)),
            added6=added6,
            added6_flags=flags(b"added6.f", len(added6)),
            dropped=peers(b"dropped", False),
            dropped6=peers(b"dropped6", True),
        )


class PexState:
    """What we have told one peer about our connections (BEP 11), so each message is a diff.

    Call ``update`` at most once per ``PEX_INTERVAL`` with the peers we are connected to now
    (address -> PEX_* flags, the recipient itself excluded); it returns the message to send, or
    ``None`` when nothing changed. After the first message, at most 50 added and 50 dropped
    contacts go out per message (the rest wait for the next one); a contact is never both
    added and dropped in one message, and never added twice."""

    def __init__(self, *, max_entries: int = PEX_MAX_ENTRIES) -> None:
        self._told: set[tuple[str, int]] = set()
        self._first = True
        self.max_entries = max_entries

    def update(self, connected: Mapping[tuple[str, int], int]) -> PexMessage | None:
        """The message telling the peer what changed since the last one, or None when nothing did."""
        added = sorted(set(connected) - self._told)
        dropped = sorted(self._told - set(connected))
        if not self._first:
            added, dropped = added[: self.max_entries], dropped[: self.max_entries]
        if not added and not dropped:
            return None
        self._first = False
        self._told.update(added)
        self._told.difference_update(dropped)

        def v6(addr: tuple[str, int]) -> bool:
            return ":" in addr[0]

        return PexMessage(
            added=tuple(a for a in added if not v6(a)),
            added_flags=tuple(connected[a] for a in added if not v6(a)),
            added6=tuple(a for a in added if v6(a)),
            added6_flags=tuple(connected[a] for a in added if v6(a)),
            dropped=tuple(a for a in dropped if not v6(a)),
            dropped6=tuple(a for a in dropped if v6(a)),
        )
