"""The peer wire protocol: messages, the sans-I/O wire, MSE/PE, extensions, and the async shell.

The names below load on first use, so importing a core (``torrent_engine.net.peer.wire``) loads
neither the async shells (``connection``, ``handshake``) nor anyio."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..._lazy import lazy_names

if TYPE_CHECKING:
    from .connection import EncryptionPolicy, PeerConnection
    from .extensions import ExtensionHandshake, PexMessage
    from .handshake import accept, connect
    from .messages import (
        BLOCK_SIZE,
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

_WHERE = {
    "AllowedFast": "messages",
    "BLOCK_SIZE": "messages",
    "Bitfield": "messages",
    "Cancel": "messages",
    "Choke": "messages",
    "EncryptionPolicy": "connection",
    "Extended": "messages",
    "ExtensionHandshake": "extensions",
    "Handshake": "messages",
    "HashReject": "messages",
    "HashRequest": "messages",
    "Hashes": "messages",
    "Have": "messages",
    "HaveAll": "messages",
    "HaveNone": "messages",
    "Interested": "messages",
    "KeepAlive": "messages",
    "Message": "messages",
    "NotInterested": "messages",
    "PeerConnection": "connection",
    "PeerWire": "wire",
    "PexMessage": "extensions",
    "Piece": "messages",
    "Port": "messages",
    "RejectRequest": "messages",
    "Request": "messages",
    "SuggestPiece": "messages",
    "Unchoke": "messages",
    "accept": "handshake",
    "allowed_fast_set": "wire",
    "check_bitfield": "wire",
    "client_name": "peer_id",
    "connect": "handshake",
    "generate_peer_id": "peer_id",
    "make_reserved": "messages",
}

__all__ = [
    "AllowedFast",
    "BLOCK_SIZE",
    "Bitfield",
    "Cancel",
    "Choke",
    "EncryptionPolicy",
    "Extended",
    "ExtensionHandshake",
    "Handshake",
    "HashReject",
    "HashRequest",
    "Hashes",
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


__getattr__, __dir__ = lazy_names(__name__, _WHERE)
