"""The .torrent file (BEP 3, 12, 19, 27, 47, 52): a validated, immutable :class:`Torrent`.

Everything read from a .torrent is untrusted. Required fields are checked and a fault raises
:class:`MetainfoError` naming the field; optional fields of the wrong type are ignored, as
libtorrent does. File paths are sanitized so that none can leave the save path. The info-hash
is computed over the exact bytes of the ``info`` dict in the file, never over a re-encoding.

``torrent`` holds :class:`Torrent` (and reads and writes the file); ``build`` makes one from a
decoded info dict, over ``v1`` (the file list, SHA-1 piece hashes), ``v2`` (meta version, file
tree, piece layers) and ``hybrid`` (both views agree); ``files`` holds :class:`FileEntry` and
path sanitizing; ``fields`` the limits and typed readers of bencoded fields.
"""

from __future__ import annotations

from ...errors import MetainfoError
from .fields import (
    MAX_FILES,
    MAX_LENGTH,
    MAX_PIECE_LENGTH,
    MAX_PIECES,
    MAX_TORRENT_FILE_SIZE,
    META_VERSION,
    MIN_PIECE_LENGTH,
    SHA1_SIZE,
)
from .files import MAX_COMPONENT_BYTES, PAD_ATTR, SYMLINK_ATTR, FileEntry, sanitize_component
from .torrent import Torrent, load_saved_metainfo

__all__ = [
    "MAX_COMPONENT_BYTES",
    "MAX_FILES",
    "MAX_LENGTH",
    "MAX_PIECES",
    "MAX_PIECE_LENGTH",
    "MAX_TORRENT_FILE_SIZE",
    "META_VERSION",
    "MIN_PIECE_LENGTH",
    "PAD_ATTR",
    "SHA1_SIZE",
    "SYMLINK_ATTR",
    "FileEntry",
    "MetainfoError",
    "Torrent",
    "load_saved_metainfo",
    "sanitize_component",
]
