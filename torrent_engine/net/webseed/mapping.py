"""BEP 19 web seeds, sans-I/O: which URL and byte range of which file hold a run of pieces, and
the HTTP/1.1 range request that asks for one such range.

Pure functions of the metainfo and a URL: no socket, no clock. ``plan_run`` never names a pad
file (BEP 47) or a v2 alignment gap: those bytes are zeros, already in the run's buffer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote

from ...errors import WebSeedError
from ...formats.bitfield import Bitfield
from ...formats.layout import FileMap
from ...formats.metainfo import Torrent
from ..httpclient.url import split_http_url

__all__ = [
    "FileRange",
    "Origin",
    "Run",
    "file_url",
    "parse_url",
    "pieces_without",
    "plan_run",
    "range_request",
]

# Characters a URL path keeps as they are: RFC 3986 unreserved, sub-delims, ':' '@', '/' and
# '%' (a base URL from the metainfo is taken as already encoded; only what cannot go on the wire
# -- spaces, non-ASCII, control bytes -- is encoded).
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"


@dataclass(frozen=True, slots=True)
class FileRange:
    """``length`` bytes at ``file_offset`` of file ``file_index`` (of ``file_size`` bytes), asked
    of ``url``; they belong at ``target`` in the run's buffer."""

    url: str
    file_index: int
    file_offset: int
    length: int
    file_size: int
    target: int


@dataclass(frozen=True, slots=True)
class Run:
    """Consecutive pieces ``first`` .. ``last`` as one buffer of ``size`` bytes (pad bytes
    included, as zeros) and the file ranges that fill it, in buffer order."""

    first: int
    last: int
    size: int
    ranges: tuple[FileRange, ...]
    piece_length: int

    def piece_span(self, index: int, piece_size: int) -> tuple[int, int]:
        """Where piece ``index`` lies in the run's buffer: (start, end)."""
        start = (index - self.first) * self.piece_length
        return start, start + piece_size


@dataclass(frozen=True, slots=True)
class Origin:
    """Where to connect for a URL and what to send in the request line."""

    tls: bool
    host: str
    port: int
    target: str  # path and query, percent-encoded
    host_header: str

    @property
    def key(self) -> tuple[bool, str, int]:
        """What a keep-alive connection can be reused for."""
        return (self.tls, self.host.lower(), self.port)


def file_url(base_url: str, torrent: Torrent, file_index: int) -> str:
    """The URL of one file of the torrent on the web seed ``base_url`` (BEP 19).

    Single-file: the URL is the file, unless it ends in '/', when the torrent's name is appended
    (BEP 19; libtorrent and aria2 do the same). Multi-file: the URL is the root folder; the
    name and the file's path are appended, each component percent-encoded, after a '/' that is
    added when the URL lacks it (as libtorrent does).
    """
    if not torrent.is_multi_file:  # (BEP 19 appends name and path to a folder's URL)
        return base_url + quote(torrent.name, safe="") if base_url.endswith("/") else base_url
    root = base_url if base_url.endswith("/") else base_url + "/"
    return root + "/".join(quote(part, safe="") for part in torrent.files[file_index].path)


def plan_run(torrent: Torrent, base_url: str, first: int, last: int) -> Run:
    """The file ranges holding pieces ``first`` .. ``last`` (consecutive), pad files left out."""
    if not 0 <= first <= last < torrent.num_pieces:
        raise ValueError(f"pieces {first}..{last} outside 0..{torrent.num_pieces - 1}")
    pl = torrent.piece_length
    start = first * pl
    size = last * pl + torrent.piece_size(last) - start
    ranges: list[FileRange] = []
    pos = 0
    for s in FileMap(torrent).slices_at(start, size):
        if not s.pad and s.length:
            f = torrent.files[s.file_index]
            ranges.append(FileRange(url=file_url(base_url, torrent, s.file_index), file_index=s.file_index,
                                    file_offset=s.file_offset, length=s.length, file_size=f.length,
                                    target=pos))
        pos += s.length
    return Run(first=first, last=last, size=size, ranges=tuple(ranges), piece_length=pl)


def pieces_without(torrent: Torrent, missing_files: Iterable[int]) -> Bitfield:
    """The pieces a web seed lacking ``missing_files`` can serve: those holding no byte of them."""
    have = Bitfield.full(torrent.num_pieces)
    files = FileMap(torrent)
    for index in missing_files:
        for piece in files.file_pieces(index):
            have.discard(piece)
    return have


def parse_url(url: str) -> Origin:
    """Split a web seed URL into what a connection needs; ``WebSeedError`` for anything that is
    not a usable http(s) URL (BEP 19: a client ignores protocols it does not know)."""
    try:
        where = split_http_url(url)
    except ValueError as exc:
        raise WebSeedError(str(exc), url) from None
    target = quote(where.path, safe=_PATH_SAFE)
    if where.query:
        target += "?" + quote(where.query, safe=_PATH_SAFE + "?")
    return Origin(tls=where.tls, host=where.host, port=where.port, target=target,
                  host_header=where.host_header)


def range_request(origin: Origin, start: int, length: int, user_agent: str) -> bytes:
    """A keep-alive HTTP/1.1 GET for ``length`` bytes at ``start`` (no compression: a byte range
    of a compressed body is not a byte range of the file)."""
    if start < 0 or length <= 0:
        raise ValueError(f"bad range {start}+{length}")
    return (
        f"GET {origin.target} HTTP/1.1\r\n"
        f"Host: {origin.host_header}\r\n"
        f"User-Agent: {user_agent}\r\n"
        f"Range: bytes={start}-{start + length - 1}\r\n"
        "Accept-Encoding: identity\r\n"
        "Connection: keep-alive\r\n"
        "\r\n"
    ).encode("ascii")
