"""The validated, immutable :class:`Torrent`: identity, piece space, v2 piece hashes, and
reading and writing the .torrent file."""

from __future__ import annotations

import bisect
import dataclasses
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ...errors import BencodeError, MetainfoError
from ..bencode import decode, decode_with_spans, encode
from ..infohash import wire_info_hash
from ..magnet import Magnet
from ..merkle import HASH_SIZE
from .build import build
from .fields import MAX_TORRENT_FILE_SIZE
from .files import FileEntry
from .v2 import check_piece_layers


@dataclass(frozen=True)
class Torrent:
    """A validated torrent. Build it with :meth:`from_bytes`, :meth:`load` or :meth:`from_info_bytes`."""

    name: str
    info_bytes: bytes  # exact bencoded info dict as in the file
    info_hash_v1: bytes | None  # 20-byte SHA-1 (None for v2-only)
    info_hash_v2: bytes | None  # 32-byte SHA-256 (None for v1-only)
    piece_length: int
    piece_hashes: tuple[bytes, ...]  # v1 20-byte piece hashes (empty for v2-only)
    piece_layers: Mapping[bytes, bytes] = field(hash=False)  # v2: pieces root -> 32-byte hashes
    files: tuple[FileEntry, ...] = ()  # incl. pad files, in piece-space order
    total_length: int = 0  # size of the piece space (incl. pad / alignment)
    trackers: tuple[tuple[str, ...], ...] = ()  # BEP 12 tiers (announce alone = one tier)
    web_seeds: tuple[str, ...] = ()  # BEP 19
    private: bool = False  # BEP 27
    comment: str | None = None
    created_by: str | None = None
    creation_date: int | None = None
    # Derived lookup tables for the v2 piece space (first piece of each non-empty file).
    _piece_starts: tuple[int, ...] = field(default=(), init=False, repr=False, compare=False)
    _piece_files: tuple[int, ...] = field(default=(), init=False, repr=False, compare=False)
    _num_pieces: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        starts: list[int] = []
        owners: list[int] = []
        pl = self.piece_length
        count = len(self.piece_hashes)
        if self.info_hash_v2 is not None:
            count = 0
            for i, f in enumerate(self.files):
                if f.pad or f.length == 0:
                    continue
                starts.append(f.offset // pl)
                owners.append(i)
                count = max(count, f.offset // pl + -(-f.length // pl))
            if self.piece_hashes:
                count = len(self.piece_hashes)
        object.__setattr__(self, "_piece_starts", tuple(starts))
        object.__setattr__(self, "_piece_files", tuple(owners))
        object.__setattr__(self, "_num_pieces", count)

    # -- identity --------------------------------------------------------------------------

    @property
    def info_hash(self) -> bytes:
        """The 20 bytes used on the wire, trackers and DHT: v1 hash, else v2 truncated."""
        return wire_info_hash(self.info_hash_v1, self.info_hash_v2)

    @property
    def is_v1(self) -> bool:
        """Whether the torrent has a v1 info-hash (v1 or hybrid)."""
        return self.info_hash_v1 is not None

    @property
    def is_v2(self) -> bool:
        """Whether the torrent has a v2 info-hash (v2 or hybrid)."""
        return self.info_hash_v2 is not None

    @property
    def is_hybrid(self) -> bool:
        """Whether the torrent is both v1 and v2."""
        return self.is_v1 and self.is_v2

    @property
    def is_multi_file(self) -> bool:
        """Whether the torrent lays its files out in a folder named after it (a v1 ``files``
        list; a v2 tree of more than one file). A v2 torrent made from a folder of one file is
        not: BEP 52's tree of one file names no folder, so it holds that file alone."""
        return len(self.files) > 1 or len(self.files[0].path) > 1

    # -- piece space -----------------------------------------------------------------------

    @property
    def num_pieces(self) -> int:
        """How many pieces the torrent has."""
        return self._num_pieces

    @property
    def payload_size(self) -> int:
        """Bytes of real data (pad files excluded)."""
        return sum(f.length for f in self.files if not f.pad)

    def piece_size(self, index: int) -> int:
        """Bytes in piece ``index``: the last piece is short; in v2-only torrents a piece ends
        at its file's end."""
        if not 0 <= index < self._num_pieces:
            raise IndexError(f"piece index {index} out of range 0..{self._num_pieces - 1}")
        start = index * self.piece_length
        if self.piece_hashes:
            return min(self.piece_length, self.total_length - start)
        f = self.files[self._file_of_piece(index)]
        return min(self.piece_length, f.offset + f.length - start)

    def file_span(self, index: int) -> tuple[int, int]:
        """The first and the last piece holding bytes of file ``index`` (an empty file: the piece
        at its offset, as clients show its range)."""
        f = self.files[index]
        first = f.offset // self.piece_length
        return first, max(first, (f.offset + f.length - 1) // self.piece_length)

    def _file_of_piece(self, index: int) -> int:
        pos = bisect.bisect_right(self._piece_starts, index) - 1
        return self._piece_files[pos]

    def file_of_piece(self, index: int) -> FileEntry | None:
        """The v2 file that piece ``index`` belongs to (None for v1-only torrents)."""
        if not self.is_v2 or not 0 <= index < self._num_pieces:
            return None
        return self.files[self._file_of_piece(index)]

    @property
    def missing_piece_layers(self) -> tuple[int, ...]:
        """Indexes of the v2 files larger than one piece whose piece layer is not known yet (a
        .torrent without complete ``piece layers``, or metadata from a magnet): their piece
        hashes must come from peers (BEP 52 hash requests) before those pieces can be checked."""
        return tuple(i for i, f in enumerate(self.files)
                     if f.pieces_root is not None and f.length > self.piece_length
                     and f.pieces_root not in self.piece_layers)

    def expected_piece_hash_v2(self, index: int) -> bytes | None:
        """32-byte hash of piece ``index`` in the v2 tree (the pieces root for a file of one
        piece); None for v1-only torrents or when the piece layer is not known yet."""
        f = self.file_of_piece(index)
        if f is None or f.pieces_root is None:
            return None
        if f.length <= self.piece_length:
            return f.pieces_root
        layer = self.piece_layers.get(f.pieces_root)
        if layer is None:
            return None
        j = index - f.offset // self.piece_length
        h = layer[j * HASH_SIZE : (j + 1) * HASH_SIZE]
        return h if len(h) == HASH_SIZE else None

    # -- construction ----------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Torrent:
        """Read and validate a .torrent file (an unreadable file is a ``MetainfoError`` naming
        the path and why, as is one over the size cap)."""
        try:
            with open(path, "rb") as file:
                data = file.read(MAX_TORRENT_FILE_SIZE + 1)
        except OSError as exc:
            raise MetainfoError(f"cannot read {os.fspath(path)!r}: {exc.strerror or exc}", "(file)") from None
        if len(data) > MAX_TORRENT_FILE_SIZE:
            raise MetainfoError(f"{os.fspath(path)!r} is over the {MAX_TORRENT_FILE_SIZE} byte cap for a "
                                ".torrent file", "(file)")
        return cls.from_bytes(data)

    @classmethod
    def from_bytes(cls, data: bytes) -> Torrent:
        """Validate the bytes of a .torrent file."""
        # bytes after the top-level dict are ignored, as libtorrent's bdecode does
        top, spans = decode_with_spans(data, strict=False, allow_trailing=True)
        if not isinstance(top, dict):
            raise MetainfoError("a .torrent must be a bencoded dictionary", "(root)")
        if b"info" not in top or b"info" not in spans:
            raise MetainfoError("missing", "info")
        start, end = spans[b"info"]
        info_bytes = bytes(data[start:end])
        layers_raw = top.get(b"piece layers")
        return build(cls, info_bytes, top[b"info"], top=top, layers_raw=layers_raw)

    @classmethod
    def from_info_bytes(
        cls,
        info: bytes,
        trackers: Iterable[str | Sequence[str]] = (),
        web_seeds: Iterable[str] = (),
    ) -> Torrent:
        """A torrent from a bare info dict (BEP 9 metadata from a magnet download).

        ``trackers`` are tiers, or plain URLs (each its own tier). v2 piece layers are not part
        of the info dict; :meth:`expected_piece_hash_v2` returns None until they are known.
        """
        value = decode(info, strict=False)
        tiers: list[tuple[str, ...]] = []
        for t in trackers:
            tier = (t,) if isinstance(t, str) else tuple(t)
            if tier:
                tiers.append(tier)
        return build(cls, bytes(info), value, top={}, layers_raw=None, trackers=tuple(tiers),
                     web_seeds=tuple(web_seeds))

    def with_piece_layers(self, layers: Mapping[bytes, bytes]) -> Torrent:
        """A copy with v2 piece layers added (each checked against its file's pieces root)."""
        checked = check_piece_layers(layers, self.files, self.piece_length)
        return dataclasses.replace(self, piece_layers={**self.piece_layers, **checked})

    # -- output ----------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The .torrent file: the original info dict bytes plus our top-level fields."""
        top: dict[bytes, object] = {}
        if self.trackers:
            top[b"announce"] = self.trackers[0][0].encode()
            if len(self.trackers) > 1 or len(self.trackers[0]) > 1:
                top[b"announce-list"] = [[u.encode() for u in tier] for tier in self.trackers]
        if self.comment is not None:
            top[b"comment"] = self.comment.encode()
        if self.created_by is not None:
            top[b"created by"] = self.created_by.encode()
        if self.creation_date is not None:
            top[b"creation date"] = self.creation_date
        if self.piece_layers:
            top[b"piece layers"] = dict(self.piece_layers)
        if self.web_seeds:
            top[b"url-list"] = [u.encode() for u in self.web_seeds]
        top[b"info"] = None
        out = [b"d"]
        for key in sorted(top):
            out.append(encode(key))
            out.append(self.info_bytes if key == b"info" else encode(top[key]))
        out.append(b"e")
        return b"".join(out)

    def magnet_uri(self) -> str:
        """A magnet link for this torrent (BEP 9; btmh for v2)."""
        return Magnet(
            info_hash_v1=self.info_hash_v1,
            info_hash_v2=self.info_hash_v2,
            display_name=self.name,
            trackers=tuple(u for tier in self.trackers for u in tier),
            web_seeds=self.web_seeds,
        ).to_uri()


def load_saved_metainfo(data: bytes) -> Torrent:
    """A kept metainfo; one kept for a magnet link may lack v2 piece layers (they are not in the
    BEP 9 metadata), which ``Torrent.from_bytes`` refuses, so then the info dict is taken alone."""
    try:
        return Torrent.from_bytes(data)
    except MetainfoError as first:
        try:
            value, spans = decode_with_spans(data, strict=False)
        except BencodeError:
            raise first from None
        if not isinstance(value, dict) or b"info" not in spans:
            raise first from None
        start, end = spans[b"info"]
        tiers: list[list[str]] = []
        announce_list = value.get(b"announce-list")
        if isinstance(announce_list, list):
            for tier in announce_list:
                if isinstance(tier, list):
                    tiers.append([u.decode("utf-8", "replace") for u in tier if isinstance(u, bytes)])
        return Torrent.from_info_bytes(data[start:end], trackers=tiers)
