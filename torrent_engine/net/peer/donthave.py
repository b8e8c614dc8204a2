"""BEP 54 ``lt_donthave``: the message codec, sans-I/O. A peer that had a piece and has it no
more (its data changed on disk and no longer verifies) says so, and its peers stop asking for it:
a HAVE cannot be taken back otherwise, and a leecher told only by rejects asks again at once.
"""

from __future__ import annotations

import struct

from ...errors import PeerProtocolError

__all__ = ["EXTENSION_NAME", "decode_donthave", "encode_donthave"]

EXTENSION_NAME = "lt_donthave"  # BEP 54: the name in the BEP 10 handshake's "m"
_INDEX = struct.Struct(">I")  # BEP 54: the payload is the piece index, 4 bytes big-endian


def encode_donthave(index: int) -> bytes:
    """The payload saying we no longer have piece ``index``."""
    return _INDEX.pack(index)


def decode_donthave(payload: bytes, num_pieces: int) -> int:
    """The piece index of an ``lt_donthave`` payload; ``PeerProtocolError`` when malformed or
    out of the torrent's ``num_pieces``."""
    if len(payload) != _INDEX.size:
        raise PeerProtocolError(f"lt_donthave message of {len(payload)} bytes (4 expected)")
    (index,) = _INDEX.unpack(payload)
    if index >= num_pieces:
        raise PeerProtocolError(f"lt_donthave for piece {index} of a torrent of {num_pieces}")
    return int(index)
