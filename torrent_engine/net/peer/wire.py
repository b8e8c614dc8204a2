"""Sans-I/O peer wire protocol (BEP 3, BEP 6 fast extension, BEP 10 framing).

``PeerWire`` takes received bytes in (``receive_data``) and hands validated messages out
(``next_event``); it turns messages into bytes (``send``). It owns no socket, clock or random
source. Anything a peer sends that breaks the protocol raises ``PeerProtocolError`` with the
reason, as soon as the offending header is seen (an oversized length is refused before its
body is buffered).
"""

from __future__ import annotations

import hashlib
import ipaddress
import struct
from collections.abc import Callable, Iterator

from ...errors import PeerProtocolError
from .buffer import ReceiveBuffer
from .messages import (
    BLOCK_SIZE,
    FAST_MESSAGES,
    HANDSHAKE_LENGTH,
    HASH_SIZE,
    MAX_HASH_REQUEST_LENGTH,
    MAX_MESSAGE_LENGTH,
    MAX_PROOF_LAYERS,
    PROTOCOL_HEADER,
    AllowedFast,
    Bitfield,
    Cancel,
    Choke,
    Extended,
    Handshake,
    Hashes,
    HashReject,
    HashRequest,
    Have,
    HaveAll,
    HaveNone,
    Interested,
    KeepAlive,
    Message,
    MessageId,
    NotInterested,
    Piece,
    Port,
    RejectRequest,
    Request,
    SuggestPiece,
    Unchoke,
    make_piece,
    make_request,
    make_reserved,
)

__all__ = [
    "DEFAULT_MAX_BITFIELD_LENGTH",
    "DEFAULT_MAX_EXTENDED_LENGTH",
    "PeerWire",
    "allowed_fast_set",
    "check_bitfield",
]

DEFAULT_MAX_EXTENDED_LENGTH = 1 << 20  # our cap on one BEP 10 message (ut_metadata pieces are 16 KiB)
DEFAULT_MAX_BITFIELD_LENGTH = 1 << 18  # cap while the piece count is unknown (magnet): 2M pieces
ALLOWED_FAST_K = 10  # BEP 6: "We currently set k to 10"

_HEADER = struct.Struct(">IB")
_U32 = struct.Struct(">I")
_HASH_FIELDS = struct.Struct(">32sIIII")
_MAX_HASHES_LENGTH = 1 + _HASH_FIELDS.size + (MAX_HASH_REQUEST_LENGTH + MAX_PROOF_LAYERS) * HASH_SIZE
_II = struct.Struct(">II")
_III = struct.Struct(">III")

_SIMPLE: dict[int, Message] = {
    MessageId.CHOKE: Choke(),
    MessageId.UNCHOKE: Unchoke(),
    MessageId.INTERESTED: Interested(),
    MessageId.NOT_INTERESTED: NotInterested(),
    MessageId.HAVE_ALL: HaveAll(),
    MessageId.HAVE_NONE: HaveNone(),
}
# Exact payload lengths (after the id byte) of fixed-size messages.
_FIXED_LENGTH = {
    MessageId.CHOKE: 0,
    MessageId.UNCHOKE: 0,
    MessageId.INTERESTED: 0,
    MessageId.NOT_INTERESTED: 0,
    MessageId.HAVE: 4,
    MessageId.REQUEST: 12,
    MessageId.CANCEL: 12,
    MessageId.PORT: 2,
    MessageId.SUGGEST_PIECE: 4,
    MessageId.HAVE_ALL: 0,
    MessageId.HAVE_NONE: 0,
    MessageId.REJECT_REQUEST: 12,
    MessageId.ALLOWED_FAST: 4,
    MessageId.HASH_REQUEST: 48,
    MessageId.HASH_REJECT: 48,
}
_FAST_IDS = frozenset(
    {
        MessageId.SUGGEST_PIECE,
        MessageId.HAVE_ALL,
        MessageId.HAVE_NONE,
        MessageId.REJECT_REQUEST,
        MessageId.ALLOWED_FAST,
    }
)
_KEEPALIVE = KeepAlive()
_SKIP: Message = KeepAlive()  # identity marker for "ignored message, parse on"


def check_bitfield(bits: bytes | memoryview, num_pieces: int) -> None:
    """Raise ``PeerProtocolError`` unless ``bits`` is a valid bitfield for ``num_pieces``
    (BEP 3: exactly ceil(n/8) bytes, spare bits cleared)."""
    expected = (num_pieces + 7) // 8
    if len(bits) != expected:
        raise PeerProtocolError(f"bitfield of {len(bits)} bytes, expected {expected} for {num_pieces} pieces")
    spare = expected * 8 - num_pieces
    if spare and bits[-1] & ((1 << spare) - 1):
        raise PeerProtocolError("bitfield has spare bits set")


def allowed_fast_set(ip: str, info_hash: bytes, num_pieces: int, k: int = ALLOWED_FAST_K) -> list[int]:
    """BEP 6 canonical allowed-fast set of the peer at IPv4 address ``ip``, in generation order.

    ``k`` is capped at ``num_pieces``. BEP 6 has no provision for IPv6; for an IPv6 address
    (other than an IPv4-mapped one) the set is empty."""
    if num_pieces <= 0:
        return []
    addr = ipaddress.ip_address(ip)
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is None:
            return []
        addr = addr.ipv4_mapped
    k = min(k, num_pieces)
    x = _U32.pack(int(addr) & 0xFFFFFF00) + info_hash  # BEP 6 steps (1), (2)
    result: list[int] = []
    seen: set[int] = set()
    while len(result) < k:
        x = hashlib.sha1(x).digest()  # BEP 6 step (3)
        for i in range(5):
            if len(result) >= k:
                break
            index = _U32.unpack_from(x, i * 4)[0] % num_pieces
            if index not in seen:
                seen.add(index)
                result.append(index)
    return result


class PeerWire:
    """One peer connection's protocol state, without I/O.

    The first event is always the peer's ``Handshake``; if ``info_hash`` was given, a handshake
    for another torrent is refused, otherwise (an incoming connection) the peer's info-hash is
    adopted. ``reserved`` are our handshake bits; the fast and extension protocols are on when
    both sides set them (``fast``, ``extension``, ``dht`` after the peer's handshake).

    ``num_pieces``/``piece_size`` may be ``None`` while the metadata is unknown (BEP 9); then
    indexes and bitfield lengths cannot be checked (use ``check_bitfield`` once it is known),
    and ``set_metadata`` turns the checks on.
    """

    def __init__(
        self,
        *,
        info_hash: bytes | None,
        peer_id: bytes,
        reserved: bytes | None = None,
        num_pieces: int | None = None,
        piece_size: Callable[[int], int] | None = None,
        max_extended_length: int = DEFAULT_MAX_EXTENDED_LENGTH,
        max_bitfield_length: int = DEFAULT_MAX_BITFIELD_LENGTH,
    ) -> None:
        if info_hash is not None and len(info_hash) != 20:
            raise ValueError("info_hash must be 20 bytes")
        if len(peer_id) != 20:
            raise ValueError("peer_id must be 20 bytes")
        self.info_hash = info_hash
        self.peer_id = peer_id
        self.reserved = make_reserved() if reserved is None else reserved
        if len(self.reserved) != 8:
            raise ValueError("reserved must be 8 bytes")
        self.num_pieces: int | None = None
        self.piece_size: Callable[[int], int] | None = None
        self.set_metadata(num_pieces, piece_size)
        self.max_extended_length = max_extended_length
        self.max_bitfield_length = max_bitfield_length
        self.peer_handshake: Handshake | None = None
        self.handshake_sent = False
        self.fast = False
        self.extension = False
        self.dht = False
        self._buffer = ReceiveBuffer()
        self._error: PeerProtocolError | None = None
        self.unknown_messages = 0

    # -- configuration ---------------------------------------------------------------------

    def set_metadata(self, num_pieces: int | None, piece_size: Callable[[int], int] | None = None) -> None:
        """Set (or change) the torrent's piece count and piece-size function."""
        if num_pieces is not None and num_pieces < 0:
            raise ValueError("num_pieces must be >= 0")
        self.num_pieces = num_pieces
        self.piece_size = piece_size

    # -- sending ---------------------------------------------------------------------------

    def handshake(self) -> bytes:
        """Our handshake bytes (needs the info-hash: given, or adopted from the peer's handshake)."""
        if self.info_hash is None:
            raise ValueError("the info-hash is not known yet")
        return self.send(Handshake(self.reserved, self.info_hash, self.peer_id))

    def send(self, msg: Message) -> bytes:
        """The bytes for ``msg``. Sending a BEP 6 message without the fast extension, or a
        BEP 10 message without the extension protocol, is a programming error (ValueError)."""
        if isinstance(msg, Handshake):
            self.handshake_sent = True
            return msg.to_bytes()
        if isinstance(msg, FAST_MESSAGES) and not self.fast:
            raise ValueError(f"{type(msg).__name__} needs the fast extension (BEP 6), not negotiated")
        if isinstance(msg, Extended) and not self.extension:
            raise ValueError("extension messages need BEP 10, not negotiated")
        return msg.to_bytes()

    # -- receiving -------------------------------------------------------------------------

    @property
    def buffered(self) -> int:
        """Bytes received but not yet parsed into messages."""
        return len(self._buffer)

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feed bytes received from the peer."""
        self._buffer.feed(data)

    def take_buffered(self) -> bytes:
        """Remove and return the bytes received but not parsed yet (to hand the stream over to
        ``parse_batch``'s caller, which then owns the receive buffer)."""
        return self._buffer.take_all()

    def parse_batch(self, data: memoryview, start: int, end: int, out: list[Message]) -> tuple[int, int]:
        """Parse every complete message in ``data[start:end]`` into ``out``, in one pass.

        For a caller that owns the receive buffer (after the handshake): ``Piece`` blocks are
        slices of ``data``, so they stay valid only while the caller leaves those bytes alone.
        Returns ``(pos, need)``: parsing stopped at ``pos``, and the incomplete message there
        needs ``need`` bytes in all (``need`` is checked against the limits before it is
        returned, so a buffer that large may be allocated). Protocol errors raise
        ``PeerProtocolError`` (and stay raised, as from ``next_event``); messages parsed before
        the bad one are in ``out``."""
        if self._error is not None:
            raise self._error
        if self.peer_handshake is None:
            raise ValueError("parse_batch before the peer's handshake")
        header = _HEADER.unpack_from
        pair = _II.unpack_from
        triple = _III.unpack_from
        num_pieces = self.num_pieces
        piece_size = self.piece_size
        append = out.append
        pos = start
        sized, size = -1, 0  # the last piece whose size was asked (its blocks come together)
        try:
            while True:
                left = end - pos
                if left < 5:
                    if left == 4 and _U32.unpack_from(data, pos)[0] == 0:
                        append(_KEEPALIVE)
                        pos += 4
                        continue
                    return pos, 5
                length, msg_id = header(data, pos)
                if length == 0:
                    append(_KEEPALIVE)
                    pos += 4
                    continue
                if length > MAX_MESSAGE_LENGTH:
                    self._check_large(length, msg_id)
                total = 4 + length
                if left < total:
                    return pos, total
                if msg_id == 7:  # MessageId.PIECE, inline: the one message that comes by the thousand
                    if length < 10:
                        raise PeerProtocolError(f"piece message of {length} bytes has no block")
                    index, begin = pair(data, pos + 5)
                    if num_pieces is not None:
                        if index >= num_pieces:
                            raise PeerProtocolError(f"piece index {index} out of range ({num_pieces} pieces)")
                        if piece_size is not None:
                            if index != sized:
                                sized, size = index, piece_size(index)
                            if begin + length - 9 > size:
                                raise PeerProtocolError(
                                    f"block {index}:{begin}+{length - 9} beyond the piece's end")
                    append(make_piece(index, begin, data[pos + 13:pos + total]))
                elif msg_id == 6 and length == 13:  # MessageId.REQUEST, inline: a leecher's, one a block
                    index, begin, n = triple(data, pos + 5)
                    if num_pieces is None or piece_size is None or index >= num_pieces or \
                            not 0 < n <= BLOCK_SIZE:
                        self._check_block("request", index, begin, n)  # (raises, or has no size to check)
                    else:
                        if index != sized:
                            sized, size = index, piece_size(index)
                        if begin + n > size:
                            self._check_block("request", index, begin, n)  # (raises)
                    append(make_request(index, begin, n))
                else:
                    msg = self._decode(msg_id, data[pos:pos + total], length - 1)
                    if msg is not _SKIP:
                        append(msg)
                pos += total
        except PeerProtocolError as exc:
            self._error = exc
            raise

    def events(self) -> Iterator[Message]:
        """All complete messages buffered so far."""
        while (msg := self.next_event()) is not None:
            yield msg

    def next_event(self) -> Message | None:
        """The next complete message, or ``None`` when more bytes are needed."""
        if self._error is not None:
            raise self._error
        try:
            if self.peer_handshake is None:
                return self._parse_handshake()
            while True:
                msg = self._parse_message()
                if msg is not _SKIP:
                    return msg
        except PeerProtocolError as exc:
            self._error = exc
            raise

    def _parse_handshake(self) -> Handshake | None:
        buf = self._buffer
        have = len(buf)
        if have == 0:
            return None
        prefix = bytes(buf.peek(min(have, len(PROTOCOL_HEADER))))
        if not PROTOCOL_HEADER.startswith(prefix):
            raise PeerProtocolError("not a BitTorrent handshake")
        if have < HANDSHAKE_LENGTH:
            return None
        raw = bytes(buf.take(HANDSHAKE_LENGTH))
        hs = Handshake(raw[20:28], raw[28:48], raw[48:68])
        if self.info_hash is None:
            self.info_hash = hs.info_hash
        elif hs.info_hash != self.info_hash:
            raise PeerProtocolError(f"handshake for another torrent ({hs.info_hash.hex()})")
        self.peer_handshake = hs
        ours = Handshake(self.reserved, self.info_hash, self.peer_id)
        self.fast = ours.fast and hs.fast
        self.extension = ours.extension and hs.extension
        self.dht = ours.dht and hs.dht
        return hs

    def _parse_message(self) -> Message | None:
        buf = self._buffer
        have = len(buf)
        if have < 4:
            return None
        head = buf.head()
        if len(head) >= 5:
            length, msg_id = _HEADER.unpack_from(head)
        else:
            length = _U32.unpack_from(buf.peek(4))[0]
            if length == 0:
                buf.take(4)
                return _KEEPALIVE
            if have < 5:
                return None
            msg_id = buf.peek(5)[4]
        if length == 0:
            buf.take(4)
            return _KEEPALIVE
        if length > MAX_MESSAGE_LENGTH:
            self._check_large(length, msg_id)
        if have < 4 + length:
            return None
        data = buf.take(4 + length)
        if msg_id == MessageId.PIECE:
            return self._piece(data, length)
        return self._decode(msg_id, data, length - 1)

    def _check_large(self, length: int, msg_id: int) -> None:
        if msg_id == MessageId.BITFIELD:
            if self.num_pieces is not None:
                if length - 1 == (self.num_pieces + 7) // 8:
                    return
                raise PeerProtocolError(
                    f"bitfield of {length - 1} bytes, expected {(self.num_pieces + 7) // 8}"
                )
            if length - 1 <= self.max_bitfield_length:
                return
            raise PeerProtocolError(f"bitfield of {length - 1} bytes exceeds the cap")
        if msg_id == MessageId.EXTENDED and self.extension and length - 2 <= self.max_extended_length:
            return
        if msg_id == MessageId.HASHES and length <= _MAX_HASHES_LENGTH:
            return
        raise PeerProtocolError(f"message of {length} bytes (id {msg_id}) exceeds the limit")

    def _piece(self, data: memoryview, length: int) -> Piece:
        if length < 10:
            raise PeerProtocolError(f"piece message of {length} bytes has no block")
        index, begin = _II.unpack_from(data, 5)
        block = data[13:]
        num_pieces = self.num_pieces
        if num_pieces is not None:
            if index >= num_pieces:
                raise PeerProtocolError(f"piece index {index} out of range ({num_pieces} pieces)")
            if self.piece_size is not None and begin + length - 9 > self.piece_size(index):
                raise PeerProtocolError(f"block {index}:{begin}+{length - 9} beyond the piece's end")
        return Piece(index, begin, block)

    def check_message(self, msg: Message) -> None:
        """``PeerProtocolError`` unless ``msg``, parsed before ``set_metadata``, fits the torrent's
        pieces (index in range, block inside its piece, bitfield of the right size): what the
        parser checks itself once the metadata is known."""
        if isinstance(msg, (Have, SuggestPiece, AllowedFast)):
            self._check_index(msg.index)
        elif isinstance(msg, Request):
            self._check_block("request", msg.index, msg.begin, msg.length)
        elif isinstance(msg, Cancel):
            self._check_block("cancel", msg.index, msg.begin, msg.length)
        elif isinstance(msg, RejectRequest):
            self._check_block("reject", msg.index, msg.begin, msg.length)
        elif isinstance(msg, Piece):
            self._check_index(msg.index)
            if self.piece_size is not None and self.num_pieces is not None:
                if msg.begin + len(msg.block) > self.piece_size(msg.index):
                    raise PeerProtocolError(
                        f"block {msg.index}:{msg.begin}+{len(msg.block)} beyond the piece's end")
        elif isinstance(msg, Bitfield) and self.num_pieces is not None:
            check_bitfield(msg.bits, self.num_pieces)

    def _check_index(self, index: int) -> None:
        if self.num_pieces is not None and index >= self.num_pieces:
            raise PeerProtocolError(f"piece index {index} out of range ({self.num_pieces} pieces)")

    def _check_block(self, kind: str, index: int, begin: int, length: int) -> None:
        self._check_index(index)
        if not 0 < length <= BLOCK_SIZE:
            raise PeerProtocolError(f"{kind} of {length} bytes (must be 1..{BLOCK_SIZE})")
        if self.piece_size is not None and self.num_pieces is not None:
            if begin + length > self.piece_size(index):
                raise PeerProtocolError(f"{kind} {index}:{begin}+{length} beyond the piece's end")

    def _hash_message(self, msg_id: int, data: memoryview, size: int) -> Message:
        if size < _HASH_FIELDS.size:
            raise PeerProtocolError(f"BEP 52 message id {msg_id} of {size} payload bytes is too short")
        root, base_layer, index, length, proof_layers = _HASH_FIELDS.unpack_from(data, 5)
        if not 2 <= length <= MAX_HASH_REQUEST_LENGTH or length & (length - 1):
            raise PeerProtocolError(f"hash request length {length} is not a power of two in 2..512")
        if index % length:
            raise PeerProtocolError(f"hash request index {index} is not a multiple of its length {length}")
        if proof_layers > MAX_PROOF_LAYERS:
            raise PeerProtocolError(f"hash request with {proof_layers} proof layers")
        if msg_id == MessageId.HASH_REQUEST:
            return HashRequest(root, base_layer, index, length, proof_layers)
        if msg_id == MessageId.HASH_REJECT:
            return HashReject(root, base_layer, index, length, proof_layers)
        hashes = bytes(data[5 + _HASH_FIELDS.size :])
        count, rest = divmod(len(hashes), HASH_SIZE)
        if rest or not length <= count <= length + proof_layers:
            raise PeerProtocolError(f"hashes message with {len(hashes)} bytes of hashes for length {length}")
        return Hashes(root, base_layer, index, length, proof_layers, hashes)

    def _decode(self, msg_id: int, data: memoryview, size: int) -> Message:
        """Decode a non-piece message; ``size`` is the payload length after the id byte."""
        if msg_id in _FAST_IDS and not self.fast:
            raise PeerProtocolError(f"fast-extension message {msg_id} without BEP 6 negotiated")
        fixed = _FIXED_LENGTH.get(msg_id)
        if fixed is not None and fixed != size:
            raise PeerProtocolError(f"message id {msg_id} with {size} payload bytes, expected {fixed}")
        simple = _SIMPLE.get(msg_id)
        if simple is not None:
            return simple
        if msg_id in (MessageId.HAVE, MessageId.SUGGEST_PIECE, MessageId.ALLOWED_FAST):
            index = _U32.unpack_from(data, 5)[0]
            self._check_index(index)
            if msg_id == MessageId.HAVE:
                return Have(index)
            if msg_id == MessageId.SUGGEST_PIECE:
                return SuggestPiece(index)
            return AllowedFast(index)
        if msg_id in (MessageId.REQUEST, MessageId.CANCEL, MessageId.REJECT_REQUEST):
            index, begin, length = _III.unpack_from(data, 5)
            if msg_id == MessageId.REQUEST:
                self._check_block("request", index, begin, length)
                return Request(index, begin, length)
            if msg_id == MessageId.CANCEL:
                self._check_block("cancel", index, begin, length)
                return Cancel(index, begin, length)
            self._check_block("reject", index, begin, length)
            return RejectRequest(index, begin, length)
        if msg_id == MessageId.BITFIELD:
            bits = bytes(data[5:])
            if self.num_pieces is not None:
                check_bitfield(bits, self.num_pieces)
            elif len(bits) > self.max_bitfield_length:
                raise PeerProtocolError(f"bitfield of {len(bits)} bytes exceeds the cap")
            return Bitfield(bits)
        if msg_id == MessageId.PORT:
            return Port(int.from_bytes(data[5:7], "big"))
        if msg_id == MessageId.EXTENDED:
            if not self.extension:
                raise PeerProtocolError("extension message without BEP 10 negotiated")
            if size < 1:
                raise PeerProtocolError("extension message without an extended id")
            if size - 1 > self.max_extended_length:
                raise PeerProtocolError(f"extension message of {size - 1} bytes exceeds the cap")
            return Extended(data[5], bytes(data[6:]))
        if msg_id in (MessageId.HASH_REQUEST, MessageId.HASH_REJECT, MessageId.HASHES):
            return self._hash_message(msg_id, data, size)
        # BEP 3: unknown ids are ignored (within the length bound checked above).
        self.unknown_messages += 1
        return _SKIP
