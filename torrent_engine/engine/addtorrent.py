"""What to add: the one typed request each front end (the API, the qBittorrent and Transmission
dialects, the CLI, a watched folder, a library caller) makes of the torrent it was handed, and
the one reading of it into a ``Torrent`` or a ``Magnet``.

``AddTorrent`` is a closed set of small frozen types: .torrent bytes, a magnet link, the URL of
a .torrent, a local .torrent file, or what a library caller parsed already. ``read_add_torrent``
turns all but a URL into a ``Torrent | Magnet`` (pure, but for a local file, which it reads: call
it in a worker thread then); a URL is fetched by the shell (``engine/resolve.py``) with its owner's proxy
and bind policy. Whatever was wrong is one ``AddTorrentError`` whose ``kind`` says which part.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

from ..errors import MagnetError, MetainfoError, TorrentEngineError
from ..formats.magnet import Magnet, is_mutable_magnet, parse_magnet, parse_mutable_magnet
from ..formats.metainfo import Torrent
from ..net.peer.extensions import DEFAULT_MAX_METADATA_SIZE

__all__ = ["TORRENT_FILE_LIMIT_LEAST", "TORRENT_FILE_LIMIT_MOST", "AddTorrent", "AddTorrentError",
           "MagnetLink", "Parsed", "TorrentBytes", "TorrentFile", "TorrentUrl", "add_torrent_of",
           "encoded_over_the_limit", "from_text", "over_the_limit", "read_add_torrent", "read_link",
           "recorded_source", "torrent_size"]

# The bounds of the .torrent file size limit (the job service's ``torrent_file_size_limit``,
# qBittorrent's preference of that name, 100 MiB by default there): at least 1 MiB, as
# qBittorrent's; at most the largest info dict a peer may hand us, which every door's cap is.
TORRENT_FILE_LIMIT_LEAST = 1024 * 1024
TORRENT_FILE_LIMIT_MOST = DEFAULT_MAX_METADATA_SIZE

# what was wrong: nothing given, .torrent data, a magnet link, a URL (or its fetch), a local file,
# a value of no source type at all
AddTorrentErrorKind = Literal["empty", "torrent", "magnet", "url", "file", "type"]


def over_the_limit(size: int, limit: int) -> str | None:
    """Why a .torrent of ``size`` bytes is refused under a limit of ``limit`` bytes (None: it
    is not): the one wording of every door."""
    if size <= limit:
        return None
    return (f"the .torrent is {size} bytes, over the .torrent file size limit of {limit} "
            "(torrent_file_size_limit)")


def encoded_over_the_limit(length: int, limit: int) -> str | None:
    """Why base64 text of ``length`` characters is refused before it is decoded, under a limit of
    ``limit`` bytes: longer than a .torrent within the limit makes (None: it may be within it;
    ``over_the_limit`` judges the bytes it decodes to). The base64 doors' one wording."""
    if length <= limit * 4 // 3 + 4:
        return None
    return (f"the .torrent's base64 is {length} characters, more than a .torrent within the .torrent "
            f"file size limit of {limit} bytes makes (torrent_file_size_limit)")


class AddTorrentError(TorrentEngineError, ValueError):
    """A source that cannot be added; ``kind`` says what was wrong, ``str()`` how (a bad .torrent
    or magnet link: the parser's own message, naming the field or the byte)."""

    def __init__(self, message: str, kind: AddTorrentErrorKind) -> None:
        super().__init__(message)
        self.reason = message
        self.kind: AddTorrentErrorKind = kind


@dataclass(frozen=True, slots=True)
class TorrentBytes:
    """A .torrent's bytes (an upload, a dialect's base64 ``metainfo`` decoded, a watched file)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class MagnetLink:
    """A magnet link as text (recorded as the job's source as given)."""

    uri: str


@dataclass(frozen=True, slots=True)
class TorrentUrl:
    """The http(s) URL of a .torrent, fetched by whoever adds it (its proxy and bind policy)."""

    url: str


@dataclass(frozen=True, slots=True)
class TorrentFile:
    """A .torrent file on this machine (the CLI, a library caller)."""

    path: str


@dataclass(frozen=True, slots=True)
class Parsed:
    """A torrent or magnet a library caller parsed already."""

    torrent: Torrent | Magnet


AddTorrent = TorrentBytes | MagnetLink | TorrentUrl | TorrentFile | Parsed
ADD_TORRENT_TYPES = (TorrentBytes, MagnetLink, TorrentUrl, TorrentFile, Parsed)


def _is_url(text: str) -> bool:
    return text[:7].lower() == "http://" or text[:8].lower() == "https://"


def from_text(text: str, *, files: bool = True) -> AddTorrent:
    """What a front end's text names: a magnet link, an http(s) URL, or (``files``) a path to a
    .torrent; ``AddTorrentError`` when it is empty, or a path where none is taken."""
    stripped = text.strip()
    if not stripped:
        raise AddTorrentError("is empty", "empty")
    if stripped[:7].lower() == "magnet:":
        return MagnetLink(stripped)
    if _is_url(stripped):
        return TorrentUrl(stripped)
    if not files:
        raise AddTorrentError(f"{stripped[:80]!r} is neither a magnet link nor an http(s) URL", "url")
    return TorrentFile(text)


def add_torrent_of(source: object) -> AddTorrent:
    """The request a library caller's ``source`` makes: an ``AddTorrent`` as it is, a parsed
    ``Torrent``/``Magnet``, .torrent bytes, or text (``from_text``) or a path-like."""
    if isinstance(source, ADD_TORRENT_TYPES):
        return source
    if isinstance(source, (Torrent, Magnet)):
        return Parsed(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return TorrentBytes(bytes(source))
    if isinstance(source, str):
        return from_text(source)
    if isinstance(source, os.PathLike):
        return TorrentFile(os.fspath(source))
    raise AddTorrentError("must be a magnet URI, a .torrent path or .torrent bytes", "type")


def read_add_torrent(add: AddTorrent) -> Torrent | Magnet:
    """The torrent or magnet ``add`` names (a ``TorrentFile`` is read: blocking). A URL must be
    fetched first (``resolve.resolve``): ``AddTorrentError`` of kind ``url`` here."""
    if isinstance(add, Parsed):
        return add.torrent
    if isinstance(add, MagnetLink):
        try:
            return parse_magnet(add.uri.strip())
        except (MagnetError, ValueError) as exc:
            raise AddTorrentError(str(exc), "magnet") from exc
    if isinstance(add, TorrentBytes):
        return _torrent(add.data)
    if isinstance(add, TorrentFile):
        try:
            return Torrent.load(add.path)
        except OSError as exc:
            raise AddTorrentError(f"cannot read {add.path!r}: {exc.strerror or exc}", "file") from exc
        except (TorrentEngineError, ValueError) as exc:
            if isinstance(exc, MetainfoError) and exc.field == "(file)":  # (unreadable: said with its path)
                raise AddTorrentError(exc.reason, "file") from exc
            # (the file named: of several added at once, which one is not valid)
            raise AddTorrentError(f"{add.path}: {exc}", "torrent") from exc
    raise AddTorrentError(f"{add.url[:80]} must be fetched before it is read", "url")


def torrent_size(add: AddTorrent) -> int:
    """The bytes of .torrent data ``add`` hands over (a local file's size, read from the disk:
    blocking; 0 for one that cannot be read, which ``read_add_torrent`` says; 0 for a magnet
    link, a URL, a parsed torrent)."""
    if isinstance(add, TorrentBytes):
        return len(add.data)
    if isinstance(add, TorrentFile):
        try:
            return os.stat(add.path).st_size
        except OSError:
            return 0
    return 0


def read_link(add: MagnetLink) -> Parsed | MagnetLink:
    """A front end's magnet link read at once (``Parsed``: a bad one is refused there), or a BEP 46
    ``xs=urn:btpk:`` link checked and handed on as it is: the add resolves it over the DHT."""
    if not is_mutable_magnet(add.uri):
        return Parsed(read_add_torrent(add))
    try:
        parse_mutable_magnet(add.uri)
    except (MagnetError, ValueError) as exc:
        raise AddTorrentError(str(exc), "magnet") from exc
    return add


def _torrent(data: bytes) -> Torrent:
    try:
        return Torrent.from_bytes(data)
    except (TorrentEngineError, ValueError) as exc:
        raise AddTorrentError(str(exc), "torrent") from exc


def recorded_source(add: AddTorrent, torrent: Torrent | Magnet) -> str:
    """The text a job records as its source: the magnet link as given, else ``"torrent"``."""
    if isinstance(add, MagnetLink):
        return add.uri.strip()
    if isinstance(torrent, Magnet):
        return torrent.to_uri()
    return "torrent"
