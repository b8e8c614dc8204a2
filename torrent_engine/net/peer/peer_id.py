"""Peer ids (BEP 20): ours in Azureus style, and a best-effort client name for a peer's id."""

from __future__ import annotations

import os
from collections.abc import Callable

from ...version import peer_id_prefix

__all__ = ["CLIENT_PREFIX", "client_name", "generate_peer_id"]

CLIENT_PREFIX = peer_id_prefix()  # BEP 20 Azureus style: -TE0100- for 0.1.0
_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"  # 64: unbiased & 63

# BEP 20 Azureus-style client codes of common clients.
AZUREUS_CLIENTS = {
    "AG": "Ares",
    "AZ": "Vuze",
    "BC": "BitComet",
    "BI": "BiglyBT",
    "BT": "BitTorrent",
    "DE": "Deluge",
    "FD": "Free Download Manager",
    "FW": "FrostWire",
    "KT": "KTorrent",
    "LT": "libtorrent (Rasterbar)",
    "lt": "libTorrent (rakshasa)",
    "PI": "PicoTorrent",
    "qB": "qBittorrent",
    "RZ": "RezTorrent",
    "SD": "Thunder",
    "TE": "torrent_engine",
    "TR": "Transmission",
    "UM": "µTorrent Mac",
    "UT": "µTorrent",
    "UW": "µTorrent Web",
    "WD": "WebTorrent Desktop",
    "WW": "WebTorrent",
    "XL": "Xunlei",
}
# Mainline-style prefixes: a code followed by a dashed version, e.g. aria2's "A2-1-34-0-".
_MAINLINE_CLIENTS = {"A2": "aria2", "M": "BitTorrent (mainline)"}


def generate_peer_id(randbytes: Callable[[int], bytes] = os.urandom) -> bytes:
    """``-TE0100-`` followed by 12 random printable characters (BEP 20)."""
    raw = randbytes(12)
    return CLIENT_PREFIX + bytes(_ALPHABET[b & 63] for b in raw)


def _azureus_version(code: str, digits: str) -> str:
    if code == "TR":  # Transmission: -TRMmmX-, e.g. -TR2940- is 2.94, -TR4060- is 4.06
        return f"{digits[0]}.{digits[1:3]}"
    parts = list(digits)
    while len(parts) > 2 and parts[-1] == "0":
        parts.pop()
    return ".".join(str(int(p, 36)) for p in parts)  # libtorrent uses letters for 10+


def client_name(peer_id: bytes) -> str:
    """A display name such as ``"Transmission 2.94"``; ``"unknown"`` plus the printable prefix
    when the id follows no known convention. Never raises."""
    if len(peer_id) != 20:
        return "invalid"
    text = peer_id[:8].decode("latin-1")
    if text[0] == "-" and text[7] == "-" and text[1:3].isalnum() and text[3:7].isalnum():
        code, digits = text[1:3], text[3:7]
        name = AZUREUS_CLIENTS.get(code, f"unknown ({code})")
        return f"{name} {_azureus_version(code, digits)}"
    head = peer_id[:10].decode("latin-1")
    for prefix, name in _MAINLINE_CLIENTS.items():
        rest = head[len(prefix) :].lstrip("-")
        if head.startswith(prefix) and rest[:1].isascii() and rest[:1].isdigit():
            version: list[str] = []
            for field in rest.split("-"):
                if not (field.isascii() and field.isdigit()):
                    break
                version.append(str(int(field)))
            return f"{name} {'.'.join(version)}"
    printable = "".join(c if 32 <= ord(c) < 127 else "." for c in head[:8])
    return f"unknown ({printable})"
