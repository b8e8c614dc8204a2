"""The engine's version, defined once: the package, the HTTP User-Agent, the BEP 10 ``v`` and
the BEP 20 peer id prefix all come from here. A leaf module: it imports nothing."""

from __future__ import annotations

__version__ = "0.1.0"
CLIENT_VERSION = f"torrent_engine {__version__}"  # BEP 10 extension handshake 'v'
USER_AGENT = f"torrent_engine/{__version__}"  # HTTP trackers and web seeds


def peer_id_prefix(version: str = __version__) -> bytes:
    """BEP 20 Azureus style: '-', client code 'TE', four version digits, '-' (0.1.0 -> -TE0100-)."""
    digits = [int(part) for part in version.split(".")[:4]]
    digits += [0] * (4 - len(digits))
    if any(not 0 <= d <= 9 for d in digits):
        raise ValueError(f"version {version!r} does not fit four peer id digits")
    return ("-TE" + "".join(str(d) for d in digits) + "-").encode("ascii")
