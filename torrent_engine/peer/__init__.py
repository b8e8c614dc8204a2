"""The peer wire protocol: messages, the sans-I/O wire, MSE/PE, extensions, and the async shell."""

from __future__ import annotations

from .connection import EncryptionPolicy, PeerConnection, accept, connect
from .extensions import ExtensionHandshake, PexMessage
from .messages import (
    BLOCK_SIZE,
    AllowedFast,
    Bitfield,
    Cancel,
    Choke,
    Extended,
    Handshake,
    Have,
    HaveAll,
    HaveNone,
    Interested,
    KeepAlive,
    Message,
    NotInterested,
    Piece,
    Port,
    RejectRequest,
    Request,
    SuggestPiece,
    Unchoke,
    make_reserved,
)
from .peer_id import client_name, generate_peer_id
from .wire import PeerWire, allowed_fast_set, check_bitfield

__all__ = [
    "BLOCK_SIZE",
    "AllowedFast",
    "Bitfield",
    "Cancel",
    "Choke",
    "EncryptionPolicy",
    "Extended",
    "ExtensionHandshake",
    "Handshake",
    "Have",
    "HaveAll",
    "HaveNone",
    "Interested",
    "KeepAlive",
    "Message",
    "NotInterested",
    "PeerConnection",
    "PeerWire",
    "PexMessage",
    "Piece",
    "Port",
    "RejectRequest",
    "Request",
    "SuggestPiece",
    "Unchoke",
    "accept",
    "allowed_fast_set",
    "check_bitfield",
    "client_name",
    "connect",
    "generate_peer_id",
    "make_reserved",
]
