"""Peer wire messages (BEP 3, BEP 6, BEP 10) as small frozen dataclasses, and their encoding.

Parsing lives in ``wire.py``; every class here knows how to turn itself into bytes
(``to_bytes()``), which is what ``PeerWire.send`` returns.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

__all__ = [
    "piece_header",
    "encode_requests",
    "make_piece",
    "make_request",
    "BLOCK_SIZE",
    "DHT_BIT",
    "EXTENSION_BIT",
    "FAST_BIT",
    "HASH_SIZE",
    "MAX_HASH_REQUEST_LENGTH",
    "MAX_PROOF_LAYERS",
    "V2_UPGRADE_BIT",
    "HANDSHAKE_LENGTH",
    "MAX_MESSAGE_LENGTH",
    "PROTOCOL",
    "PROTOCOL_HEADER",
    "AllowedFast",
    "Bitfield",
    "Cancel",
    "Choke",
    "Extended",
    "HashReject",
    "HashRequest",
    "Handshake",
    "Hashes",
    "Have",
    "HaveAll",
    "HaveNone",
    "Interested",
    "KeepAlive",
    "Message",
    "MessageId",
    "NotInterested",
    "Piece",
    "Port",
    "RejectRequest",
    "Request",
    "SuggestPiece",
    "Unchoke",
    "has_bit",
    "make_reserved",
]

PROTOCOL = b"BitTorrent protocol"  # BEP 3: pstr
PROTOCOL_HEADER = bytes([len(PROTOCOL)]) + PROTOCOL  # BEP 3: pstrlen + pstr, 20 bytes
HANDSHAKE_LENGTH = 68  # BEP 3: 1 + 19 + 8 reserved + 20 info_hash + 20 peer_id
BLOCK_SIZE = 16 * 1024  # BEP 3: the block size every client requests
MAX_MESSAGE_LENGTH = 1 + 8 + BLOCK_SIZE  # BEP 3: a piece message: id, index, begin, 16 KiB block

# Reserved handshake bits as (byte index, mask); byte 0 is the first reserved byte.
EXTENSION_BIT = (5, 0x10)  # BEP 10: extension protocol, reserved[5] & 0x10
FAST_BIT = (7, 0x04)  # BEP 6: fast extension, reserved[7] & 0x04
DHT_BIT = (7, 0x01)  # BEP 5: DHT, reserved[7] & 0x01 (the peer sends PORT)
V2_UPGRADE_BIT = (7, 0x10)  # BEP 52: hybrid torrent, the initiator also supports v2
HASH_SIZE = 32  # BEP 52: SHA-256 merkle hashes
MAX_HASH_REQUEST_LENGTH = 512  # BEP 52: "Length SHOULD NOT be greater than 512"
MAX_PROOF_LAYERS = 64  # our bound: a merkle tree of 2**64 leaves is beyond any torrent


def make_reserved(*, extension: bool = True, fast: bool = True, dht: bool = False) -> bytes:
    """The 8 reserved handshake bytes announcing the given extensions."""
    reserved = bytearray(8)
    for enabled, (byte, mask) in ((extension, EXTENSION_BIT), (fast, FAST_BIT), (dht, DHT_BIT)):
        if enabled:
            reserved[byte] |= mask
    return bytes(reserved)


def has_bit(reserved: bytes, bit: tuple[int, int]) -> bool:
    """Whether the reserved bytes of a handshake carry ``bit`` (one of the *_BIT constants)."""
    byte, mask = bit
    return bool(reserved[byte] & mask)


class MessageId:
    """Message ids (the byte after the length prefix)."""

    CHOKE = 0  # BEP 3
    UNCHOKE = 1  # BEP 3
    INTERESTED = 2  # BEP 3
    NOT_INTERESTED = 3  # BEP 3
    HAVE = 4  # BEP 3
    BITFIELD = 5  # BEP 3
    REQUEST = 6  # BEP 3
    PIECE = 7  # BEP 3
    CANCEL = 8  # BEP 3
    PORT = 9  # BEP 5
    SUGGEST_PIECE = 0x0D  # BEP 6
    HAVE_ALL = 0x0E  # BEP 6
    HAVE_NONE = 0x0F  # BEP 6
    REJECT_REQUEST = 0x10  # BEP 6
    ALLOWED_FAST = 0x11  # BEP 6
    EXTENDED = 20  # BEP 10
    HASH_REQUEST = 21  # BEP 52
    HASHES = 22  # BEP 52
    HASH_REJECT = 23  # BEP 52


_LEN = struct.Struct(">I")
_LEN_ID = struct.Struct(">IB")
_LEN_ID_I = struct.Struct(">IBI")
_LEN_ID_III = struct.Struct(">IBIII")
_LEN_ID_II = struct.Struct(">IBII")


@dataclass(frozen=True, slots=True)
class Handshake:
    """BEP 3 handshake. ``reserved`` is 8 bytes (see ``make_reserved``)."""

    reserved: bytes
    info_hash: bytes
    peer_id: bytes

    def __post_init__(self) -> None:
        if len(self.reserved) != 8 or len(self.info_hash) != 20 or len(self.peer_id) != 20:
            raise ValueError("handshake needs 8 reserved bytes, a 20-byte info_hash and peer_id")

    @property
    def extension(self) -> bool:
        """Whether the extension protocol bit (BEP 10) is set."""
        return has_bit(self.reserved, EXTENSION_BIT)

    @property
    def fast(self) -> bool:
        """Whether the Fast extension bit (BEP 6) is set."""
        return has_bit(self.reserved, FAST_BIT)

    @property
    def dht(self) -> bool:
        """Whether the DHT bit (BEP 5) is set."""
        return has_bit(self.reserved, DHT_BIT)

    def to_bytes(self) -> bytes:
        """The 68-byte handshake."""
        return PROTOCOL_HEADER + self.reserved + self.info_hash + self.peer_id


@dataclass(frozen=True, slots=True)
class KeepAlive:
    """BEP 3: a zero-length message."""

    def to_bytes(self) -> bytes:
        """The message on the wire."""
        return b"\x00\x00\x00\x00"


@dataclass(frozen=True, slots=True)
class _NoPayload:
    msg_id: ClassVar[int]

    def to_bytes(self) -> bytes:
        return _LEN_ID.pack(1, self.msg_id)


@dataclass(frozen=True, slots=True)
class Choke(_NoPayload):
    """``choke``: the sender will not serve our requests."""

    msg_id: ClassVar[int] = MessageId.CHOKE


@dataclass(frozen=True, slots=True)
class Unchoke(_NoPayload):
    """``unchoke``: the sender will serve our requests."""

    msg_id: ClassVar[int] = MessageId.UNCHOKE


@dataclass(frozen=True, slots=True)
class Interested(_NoPayload):
    """``interested``: the sender wants pieces we have."""

    msg_id: ClassVar[int] = MessageId.INTERESTED


@dataclass(frozen=True, slots=True)
class NotInterested(_NoPayload):
    """``not interested``: the sender wants nothing we have."""

    msg_id: ClassVar[int] = MessageId.NOT_INTERESTED


@dataclass(frozen=True, slots=True)
class HaveAll(_NoPayload):
    """BEP 6: the sender has every piece (replaces the bitfield)."""

    msg_id: ClassVar[int] = MessageId.HAVE_ALL


@dataclass(frozen=True, slots=True)
class HaveNone(_NoPayload):
    """BEP 6: the sender has no piece (replaces the bitfield)."""

    msg_id: ClassVar[int] = MessageId.HAVE_NONE


@dataclass(frozen=True, slots=True)
class _IndexMessage:
    msg_id: ClassVar[int]
    index: int

    def to_bytes(self) -> bytes:
        return _LEN_ID_I.pack(5, self.msg_id, self.index)


@dataclass(frozen=True, slots=True)
class Have(_IndexMessage):
    """``have``: the sender has piece ``index``."""

    msg_id: ClassVar[int] = MessageId.HAVE


@dataclass(frozen=True, slots=True)
class SuggestPiece(_IndexMessage):
    """BEP 6: advisory, 'you might like to download this piece'."""

    msg_id: ClassVar[int] = MessageId.SUGGEST_PIECE


@dataclass(frozen=True, slots=True)
class AllowedFast(_IndexMessage):
    """BEP 6: the receiver may request this piece even while choked."""

    msg_id: ClassVar[int] = MessageId.ALLOWED_FAST


@dataclass(frozen=True, slots=True)
class Bitfield:
    """BEP 3: piece ``i`` is bit ``7 - i % 8`` of byte ``i // 8``; spare bits are zero."""

    bits: bytes

    def to_bytes(self) -> bytes:
        """The message on the wire."""
        return _LEN_ID.pack(1 + len(self.bits), MessageId.BITFIELD) + self.bits

    def has(self, index: int) -> bool:
        """Whether the bitfield has piece ``index``."""
        byte = index >> 3
        return byte < len(self.bits) and bool(self.bits[byte] & (0x80 >> (index & 7)))

    @classmethod
    def from_indexes(cls, indexes: Iterable[int], num_pieces: int) -> Bitfield:
        """Bitfield of ``num_pieces`` with the pieces in the iterable ``indexes`` set."""
        bits = bytearray((num_pieces + 7) // 8)
        for i in indexes:
            if not 0 <= i < num_pieces:
                raise ValueError(f"piece index {i} out of range")
            bits[i >> 3] |= 0x80 >> (i & 7)
        return cls(bytes(bits))


@dataclass(frozen=True, slots=True)
class _BlockMessage:
    msg_id: ClassVar[int]
    index: int
    begin: int
    length: int

    def to_bytes(self) -> bytes:
        return _LEN_ID_III.pack(13, self.msg_id, self.index, self.begin, self.length)


_new = object.__new__  # (make_request, make_piece)


def piece_header(index: int, begin: int, length: int) -> bytes:
    """The 13 bytes in front of a ``piece`` message's block of ``length`` bytes."""
    return _LEN_ID_II.pack(9 + length, MessageId.PIECE, index, begin)


def encode_requests(blocks: Iterable[tuple[int, int, int]]) -> bytes:
    """``request`` messages for ``(index, begin, length)`` triples, as one run of bytes."""
    pack = _LEN_ID_III.pack
    return b"".join([pack(13, MessageId.REQUEST, i, b, n) for i, b, n in blocks])


@dataclass(frozen=True, slots=True)
class Request(_BlockMessage):
    """``request``: send a block of a piece."""

    msg_id: ClassVar[int] = MessageId.REQUEST


# (the slots are _BlockMessage's: Request adds none)
_request_index, _request_begin, _request_length = (
    vars(_BlockMessage)[name].__set__ for name in ("index", "begin", "length"))


def make_request(index: int, begin: int, length: int) -> Request:
    """``Request(index, begin, length)`` without the frozen dataclass's ``__init__`` (as
    ``make_piece``): the parser makes one a block a leecher asks for."""
    request: Request = _new(Request)
    _request_index(request, index)
    _request_begin(request, begin)
    _request_length(request, length)
    return request


@dataclass(frozen=True, slots=True)
class Cancel(_BlockMessage):
    """``cancel``: a block request is withdrawn."""

    msg_id: ClassVar[int] = MessageId.CANCEL


@dataclass(frozen=True, slots=True)
class RejectRequest(_BlockMessage):
    """BEP 6: the answer to a request that will not be served."""

    msg_id: ClassVar[int] = MessageId.REJECT_REQUEST


@dataclass(frozen=True, slots=True)
class Piece:
    """BEP 3: a block of data. From the wire, ``block`` is a read-only memoryview over the
    received bytes (no copy); ``bytes(block)`` gives a compact copy when it must be kept."""

    index: int
    begin: int
    block: bytes | memoryview

    def header(self) -> bytes:
        """The 13 bytes in front of the block (length, id, index, begin)."""
        return _LEN_ID_II.pack(9 + len(self.block), MessageId.PIECE, self.index, self.begin)

    def to_bytes(self) -> bytes:
        """The message on the wire."""
        return self.header() + self.block


# (the slots' own setters: what the frozen ``__setattr__`` would refuse, ``__init__`` does so)
_piece_index, _piece_begin, _piece_block = (vars(Piece)[name].__set__ for name in ("index", "begin", "block"))


def make_piece(index: int, begin: int, block: bytes | memoryview) -> Piece:
    """``Piece(index, begin, block)`` without the frozen dataclass's ``__init__`` (a Python frame
    and one ``object.__setattr__`` a field): the parser makes one a block, and this costs 0.4 µs
    against 1.1 (bench/RESULTS.md). The same frozen ``Piece``, equal to the one ``Piece()`` makes."""
    piece: Piece = _new(Piece)
    _piece_index(piece, index)
    _piece_begin(piece, begin)
    _piece_block(piece, block)
    return piece


@dataclass(frozen=True, slots=True)
class Port:
    """BEP 5: the sender's DHT port."""

    port: int

    def to_bytes(self) -> bytes:
        """The message on the wire."""
        return _LEN_ID.pack(3, MessageId.PORT) + self.port.to_bytes(2, "big")


@dataclass(frozen=True, slots=True)
class Extended:
    """BEP 10: ``ext_id`` 0 is the extension handshake, others the ids the receiver chose in
    its handshake's ``m`` dictionary. ``payload`` is the raw bytes after the ext id."""

    ext_id: int
    payload: bytes

    def to_bytes(self) -> bytes:
        """The message on the wire."""
        return _LEN_ID.pack(2 + len(self.payload), MessageId.EXTENDED) + bytes([self.ext_id]) + self.payload


_HASH_HEADER = struct.Struct(">IB32sIIII")


@dataclass(frozen=True, slots=True)
class _HashMessage:
    """BEP 52: ``length`` hashes of the layer ``base_layer`` levels above the leaves, starting
    at hash ``index``, of the file whose merkle root is ``pieces_root``, plus uncle hashes
    for ``proof_layers`` layers."""

    msg_id: ClassVar[int]
    pieces_root: bytes
    base_layer: int
    index: int
    length: int
    proof_layers: int

    def _header(self, extra: int) -> bytes:
        return _HASH_HEADER.pack(
            49 + extra,
            self.msg_id,
            self.pieces_root,
            self.base_layer,
            self.index,
            self.length,
            self.proof_layers,
        )

    def to_bytes(self) -> bytes:
        return self._header(0)


@dataclass(frozen=True, slots=True)
class HashRequest(_HashMessage):
    """``hash request`` (BEP 52): merkle hashes of a file's tree."""

    msg_id: ClassVar[int] = MessageId.HASH_REQUEST


@dataclass(frozen=True, slots=True)
class HashReject(_HashMessage):
    """``hash reject`` (BEP 52): the requested hashes will not be sent."""

    msg_id: ClassVar[int] = MessageId.HASH_REJECT


@dataclass(frozen=True, slots=True)
class Hashes(_HashMessage):
    """BEP 52: the answer to a HashRequest; ``hashes`` is the concatenated 32-byte hashes, the
    base layer first, then the uncle hashes from the lowest proof layer up."""

    msg_id: ClassVar[int] = MessageId.HASHES
    hashes: bytes = b""

    def to_bytes(self) -> bytes:
        """The message on the wire."""
        return self._header(len(self.hashes)) + self.hashes


Message = (
    Handshake
    | KeepAlive
    | Choke
    | Unchoke
    | Interested
    | NotInterested
    | Have
    | Bitfield
    | Request
    | Piece
    | Cancel
    | Port
    | HaveAll
    | HaveNone
    | SuggestPiece
    | RejectRequest
    | AllowedFast
    | Extended
    | HashRequest
    | Hashes
    | HashReject
)

# Messages only legal when both sides set the fast bit (BEP 6).
FAST_MESSAGES = (HaveAll, HaveNone, SuggestPiece, RejectRequest, AllowedFast)
