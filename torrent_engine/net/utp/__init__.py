"""uTP (BEP 29): a sans-I/O core (packet codec, state table, LEDBAT) and its async shell."""

from __future__ import annotations

from .connection import PACKET_SIZE, UtpConnection
from .packet import Packet, PacketType, decode, encode, looks_like_utp
from .state import State, UtpStateError

__all__ = ["PACKET_SIZE", "Packet", "PacketType", "State", "UtpConnection", "UtpStateError", "decode",
           "encode", "looks_like_utp"]
