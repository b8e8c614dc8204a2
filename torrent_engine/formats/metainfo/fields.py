"""The limits a .torrent is held to, and typed readers of its untrusted bencoded fields.

A reader raises :class:`MetainfoError` naming the field when a required field is missing or of
the wrong type; optional fields of the wrong type read as absent, as libtorrent reads them.
"""

from __future__ import annotations

from ...errors import MetainfoError
from ..bencode import DEFAULT_MAX_SIZE, BValue
from ..merkle import BLOCK_SIZE

MIN_PIECE_LENGTH = BLOCK_SIZE  # BEP 52: a power of two and at least 16 KiB (v2 and hybrid)
# The largest piece libtorrent 2.1 loads: 512 MiB less one block (its own test set's
# large_piece_size.torrent has exactly this; 512 MiB is "invalid or missing 'piece length'",
# probed with its Python bindings, tests/interop/test_metainfo_libtorrent.py). A v1-only
# torrent's pieces may be any length in 1..MAX_PIECE_LENGTH (BEP 3 asks no more; nor does
# libtorrent): its last block in each piece is then shorter than 16 KiB; v2 and hybrid pieces
# are powers of two, so 256 MiB at most. A piece this large is never assembled in memory (past
# Config.piece_buffer_bytes its blocks go to disk as they come), but checking one from disk and
# serving one to peers read it whole: see docs/metainfo.md.
MAX_PIECE_LENGTH = 512 * 1024 * 1024 - BLOCK_SIZE
MAX_PIECES = 0x200000  # libtorrent's load_torrent_limits.max_pieces default
MAX_FILES = 1_000_000  # far above any real torrent, far below what exhausts memory
MAX_TORRENT_FILE_SIZE = DEFAULT_MAX_SIZE  # what the bencode decoder takes at most
MAX_LENGTH = 2**62  # no file is this large; keeps every offset sum far from overflow elsewhere
SHA1_SIZE = 20  # BEP 3: one SHA-1 per piece in ``pieces``
META_VERSION = 2  # BEP 52


def text(raw: bytes) -> str:
    """``raw`` as text; invalid UTF-8 is replaced, never an error."""
    return raw.decode("utf-8", errors="replace")


def get_int(d: dict[bytes, BValue], key: bytes, fieldname: str) -> int:
    """The required integer ``d[key]``."""
    if key not in d:
        raise MetainfoError("missing", fieldname)
    v = d[key]
    if not isinstance(v, int):
        raise MetainfoError("not an integer", fieldname)
    return v


def read_length(d: dict[bytes, BValue], fieldname: str) -> int:
    """The required file length ``d[b"length"]``: an integer, not negative, not absurd."""
    n = get_int(d, b"length", fieldname)
    if n < 0:
        raise MetainfoError(f"negative length {n}", fieldname)
    if n > MAX_LENGTH:
        raise MetainfoError(f"absurd length {n}", fieldname)
    return n


def utf8_field(d: dict[bytes, BValue], key: bytes) -> bytes | None:
    """``key.utf-8`` if it is a byte string, else ``key``, else None (BEP 3 extension)."""
    alt = d.get(key + b".utf-8")
    if isinstance(alt, bytes):
        return alt
    v = d.get(key)
    return v if isinstance(v, bytes) else None
