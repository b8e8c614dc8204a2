"""The .torrent file (BEP 3, 12, 19, 27, 47, 52): a validated, immutable :class:`Torrent`.

Everything read from a .torrent is untrusted. Required fields are checked and a fault raises
:class:`MetainfoError` naming the field; optional fields of the wrong type are ignored, as
libtorrent does. File paths are sanitized so that none can leave the save path. The info-hash
is computed over the exact bytes of the ``info`` dict in the file, never over a re-encoding.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .bencode import DEFAULT_MAX_SIZE, BValue, decode, decode_with_spans, encode
from .errors import BencodeError, MetainfoError
from .merkle import BLOCK_SIZE, HASH_SIZE, root_from_piece_layer

__all__ = [
    "MAX_FILES",
    "MAX_PIECES",
    "MAX_PIECE_LENGTH",
    "MIN_PIECE_LENGTH",
    "FileEntry",
    "MetainfoError",
    "Torrent",
    "sanitize_component",
]

MIN_PIECE_LENGTH = BLOCK_SIZE  # BEP 52: a power of two and at least 16 KiB
# libtorrent 2.1 loads pieces up to 256 MiB (512 MiB is "invalid piece length"); v1 torrents
# with pieces that are not a power of two or under 16 KiB are practically extinct and refused.
MAX_PIECE_LENGTH = 256 * 1024 * 1024
MAX_PIECES = 0x200000  # libtorrent's load_torrent_limits.max_pieces default
MAX_FILES = 1_000_000  # far above any real torrent, far below what exhausts memory
MAX_COMPONENT_BYTES = 240  # libtorrent truncates longer path elements (filesystems allow 255)
MAX_TORRENT_FILE_SIZE = DEFAULT_MAX_SIZE  # what the bencode decoder takes at most
MAX_LENGTH = 2**62  # no file is this large; keeps every offset sum far from overflow elsewhere
SHA1_SIZE = 20  # BEP 3: one SHA-1 per piece in ``pieces``
META_VERSION = 2  # BEP 52
PAD_ATTR = "p"  # BEP 47
SYMLINK_ATTR = "l"  # BEP 47
_BITCOMET_PAD = "_____padding_file_"  # BitComet's name for pad files (no 'attr'), as libtorrent reads it


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One file of a torrent, placed in the piece space."""

    path: tuple[str, ...]  # sanitized components relative to the save path; multi-file
    # torrents start with the torrent's (sanitized) name
    length: int
    offset: int  # start in the piece space (v1/hybrid: concatenation incl. pad files;
    # v2-only: every file starts at a piece boundary)
    pad: bool = False  # BEP 47 pad file: never written to disk, reads as zeros
    attr: str = ""  # BEP 47 attributes ("p", "x", "h", "l")
    symlink: tuple[str, ...] | None = None  # BEP 47 symlink target, relative to the torrent root
    pieces_root: bytes | None = None  # BEP 52 merkle root of the file (None for v1/empty)

    @property
    def executable(self) -> bool:
        """Whether the file is marked executable (BEP 47 ``x``)."""
        return "x" in self.attr

    @property
    def hidden(self) -> bool:
        """Whether the file is marked hidden (BEP 47 ``h``)."""
        return "h" in self.attr


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
        if self.info_hash_v1 is not None:
            return self.info_hash_v1
        assert self.info_hash_v2 is not None
        return self.info_hash_v2[:20]

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
        return _build(
            info_bytes,
            top[b"info"],
            top=top,
            layers_raw=layers_raw,
            require_layers=False,  # libtorrent: missing layers are fetched from peers (BEP 52)
        )

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
        return _build(
            bytes(info),
            value,
            top={},
            layers_raw=None,
            require_layers=False,
            trackers=tuple(tiers),
            web_seeds=tuple(web_seeds),
        )

    def with_piece_layers(self, layers: Mapping[bytes, bytes]) -> Torrent:
        """A copy with v2 piece layers added (each checked against its file's pieces root)."""
        checked = _check_piece_layers(layers, self.files, self.piece_length, require=False)
        merged = dict(self.piece_layers)
        merged.update(checked)
        return _replace_layers(self, merged)

    # -- output ----------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The .torrent file: the original info dict bytes plus our top-level fields."""
        top: dict[bytes, Any] = {}
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
        from .magnet import Magnet

        return Magnet(
            info_hash_v1=self.info_hash_v1,
            info_hash_v2=self.info_hash_v2,
            display_name=self.name,
            trackers=tuple(u for tier in self.trackers for u in tier),
            web_seeds=self.web_seeds,
        ).to_uri()


# ---------------------------------------------------------------------------------------------
# Validation


def _replace_layers(t: Torrent, layers: Mapping[bytes, bytes]) -> Torrent:
    return Torrent(
        name=t.name,
        info_bytes=t.info_bytes,
        info_hash_v1=t.info_hash_v1,
        info_hash_v2=t.info_hash_v2,
        piece_length=t.piece_length,
        piece_hashes=t.piece_hashes,
        piece_layers=dict(layers),
        files=t.files,
        total_length=t.total_length,
        trackers=t.trackers,
        web_seeds=t.web_seeds,
        private=t.private,
        comment=t.comment,
        created_by=t.created_by,
        creation_date=t.creation_date,
    )


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def _get_int(d: dict[bytes, BValue], key: bytes, fieldname: str) -> int:
    if key not in d:
        raise MetainfoError("missing", fieldname)
    v = d[key]
    if not isinstance(v, int):
        raise MetainfoError("not an integer", fieldname)
    return v


def _length(d: dict[bytes, BValue], fieldname: str) -> int:
    n = _get_int(d, b"length", fieldname)
    if n < 0:
        raise MetainfoError(f"negative length {n}", fieldname)
    if n > MAX_LENGTH:
        raise MetainfoError(f"absurd length {n}", fieldname)
    return n


def _utf8_field(d: dict[bytes, BValue], key: bytes) -> bytes | None:
    """``key.utf-8`` if it is a byte string, else ``key``, else None (BEP 3 extension)."""
    alt = d.get(key + b".utf-8")
    if isinstance(alt, bytes):
        return alt
    v = d.get(key)
    return v if isinstance(v, bytes) else None


_CONTROL: dict[int, str | None] = {c: "_" for c in range(1, 32)}
_CONTROL.update({ord("/"): None, ord("\\"): None, 0: None})
_UNSAFE = re.compile("[\x00-\x1f/\\\\]")


@functools.lru_cache(maxsize=4096)  # directory names repeat across many files
def sanitize_component(raw: bytes) -> str:
    """One path element made safe, the way libtorrent 2 does it.

    Separators and NUL are removed; other control characters and invalid UTF-8 become ``_``;
    an element that is then empty, ``.`` or ``..`` becomes ``_``; longer than 240 bytes is
    truncated keeping a short extension. Beyond libtorrent (which keeps it on POSIX), a
    Windows drive letter such as ``C:`` becomes ``C_``.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("utf-8", errors="replace").replace("\ufffd", "_")
    if _UNSAFE.search(text):
        text = text.translate(_CONTROL)
    if text in ("", ".", ".."):
        return "_"
    if len(text) == 2 and text[1] == ":" and text[0].isalpha():
        text = text[0] + "_"
    if len(text) * 4 > MAX_COMPONENT_BYTES and len(text.encode()) > MAX_COMPONENT_BYTES:
        stem, dot, ext = text.rpartition(".")
        if not dot or not stem or len(ext.encode()) > 10:
            stem, ext = text, ""
        stem = stem.encode()[:MAX_COMPONENT_BYTES].decode("utf-8", errors="ignore")
        text = f"{stem}.{ext}" if ext else stem
    return text


def _sanitize_path(parts: list[BValue], fieldname: Callable[[], str]) -> tuple[str, ...]:
    """Sanitized path elements; ``fieldname`` is only built when there is an error to report."""
    try:
        return tuple(map(sanitize_component, parts))  # type: ignore[arg-type]
    except (TypeError, AttributeError):  # an element that is not a byte string
        bad = next(i for i, p in enumerate(parts) if not isinstance(p, bytes))
        raise MetainfoError("path element is not a string", f"{fieldname()}[{bad}]") from None


def _attr(d: dict[bytes, BValue]) -> str:
    v = d.get(b"attr")
    if not isinstance(v, bytes):
        return ""
    return "".join(sorted({c for c in v.decode("ascii", errors="ignore") if c in "pxhl"}))


def _symlink(d: dict[bytes, BValue], attr: str) -> tuple[str, ...] | None:
    if "l" not in attr:
        return None
    v = d.get(b"symlink path")
    if not isinstance(v, list) or not all(isinstance(p, bytes) for p in v):
        return None
    return tuple(sanitize_component(p) for p in v if isinstance(p, bytes))


@dataclass(slots=True)
class _RawFile:
    path: tuple[str, ...]  # sanitized, relative to the torrent root (name not yet prepended)
    length: int
    attr: str
    symlink: tuple[str, ...] | None
    pieces_root: bytes | None = None

    @property
    def pad(self) -> bool:
        return PAD_ATTR in self.attr


def _stored_length(length: int, attr: str) -> int:
    """BEP 47: a symlink entry holds no data, whatever length it claims (as libtorrent reads it:
    size 0, so it takes no room in the piece space)."""
    return 0 if SYMLINK_ATTR in attr else length


def _v1_files(info: dict[bytes, BValue]) -> tuple[list[_RawFile], bool]:
    """The v1 file list and whether the torrent is multi-file."""
    if b"files" in info:
        files_v = info[b"files"]
        if not isinstance(files_v, list):
            raise MetainfoError("not a list", "info.files")
        if not files_v:
            raise MetainfoError("empty file list", "info.files")
        if len(files_v) > MAX_FILES:
            raise MetainfoError(f"more than {MAX_FILES} files", "info.files")
        out: list[_RawFile] = []
        for i, fd in enumerate(files_v):
            if not isinstance(fd, dict):
                raise MetainfoError("not a dictionary", f"info.files[{i}]")
            length = fd.get(b"length")
            if type(length) is not int or not 0 <= length <= MAX_LENGTH:
                length = _length(fd, f"info.files[{i}].length")  # raises, naming the fault
            path_v = fd.get(b"path.utf-8")
            if not isinstance(path_v, list):
                path_v = fd.get(b"path")
            attr = _attr(fd) if b"attr" in fd else ""
            if (not isinstance(path_v, list) or not path_v) and PAD_ATTR in attr:
                path_v = [b".pad", str(length).encode()]  # a pad file needs no path (libtorrent)
            if not isinstance(path_v, list) or not path_v:
                raise MetainfoError("missing, empty or not a list", f"info.files[{i}].path")
            path = _sanitize_path(path_v, lambda i=i: f"info.files[{i}].path")  # type: ignore[misc]
            if PAD_ATTR not in attr and any(_BITCOMET_PAD in p for p in path):
                attr += PAD_ATTR  # BitComet's pad files carry no attribute, only this name
            out.append(_RawFile(path, _stored_length(length, attr), attr, _symlink(fd, attr)))
        return out, True
    if b"length" in info:
        length = _length(info, "info.length")
        attr = _attr(info)
        return [_RawFile((), _stored_length(length, attr), attr, _symlink(info, attr))], False
    raise MetainfoError("neither 'length' nor 'files' present", "info.length")


def _v2_files(info: dict[bytes, BValue]) -> list[_RawFile]:
    tree = info.get(b"file tree")
    if not isinstance(tree, dict):
        raise MetainfoError("missing or not a dictionary", "info.file tree")
    if b"" in tree:
        raise MetainfoError("the root of the file tree must not be a file", "info.file tree")
    out: list[_RawFile] = []
    # Iterative walk in dict order (sorted in valid torrents): depth is already bounded by
    # the decoder, and an explicit stack keeps the order without recursion.
    pending: list[tuple[tuple[bytes, ...], BValue]] = [((), tree)]
    while pending:
        raw_path, node = pending.pop()
        fname = "info.file tree/" + "/".join(_text(p) for p in raw_path)
        if not isinstance(node, dict):
            raise MetainfoError("not a dictionary", fname)
        if b"" in node and raw_path:
            if len(node) != 1:
                raise MetainfoError("a file entry must not have siblings", fname)
            fd = node[b""]
            if not isinstance(fd, dict):
                raise MetainfoError("file entry is not a dictionary", fname)
            length = _length(fd, f"{fname}.length")
            root = fd.get(b"pieces root")
            attr = _attr(fd)
            if PAD_ATTR in attr:  # BEP 47/52: v2 aligns files itself; libtorrent refuses it too
                raise MetainfoError("a file in a v2 file tree must not be a pad file", f"{fname}.attr")
            if length > 0 and SYMLINK_ATTR not in attr:
                if not isinstance(root, bytes) or len(root) != HASH_SIZE:
                    raise MetainfoError("missing or not 32 bytes", f"{fname}.pieces root")
                if not any(root):
                    raise MetainfoError("all zeros (no root hash)", f"{fname}.pieces root")
            else:
                root = None
            path = _sanitize_path(list(raw_path), lambda fname=fname: fname)  # type: ignore[misc]
            if SYMLINK_ATTR in attr:
                length, root = 0, None
            out.append(_RawFile(path, length, attr, _symlink(fd, attr), root))
            if len(out) > MAX_FILES:
                raise MetainfoError(f"more than {MAX_FILES} files", "info.file tree")
            continue
        if not node and raw_path:
            continue  # an empty directory holds no files (libtorrent skips it too)
        for key in reversed(list(node)):
            pending.append((raw_path + (key,), node[key]))
    if not out:
        raise MetainfoError("no files", "info.file tree")
    return out


def _check_piece_layers(
    layers_raw: object, files: Sequence[FileEntry], piece_length: int, require: bool
) -> dict[bytes, bytes]:
    needed = {f.pieces_root: f.length for f in files if f.pieces_root is not None and f.length > piece_length}
    if layers_raw is None:
        if require and needed:
            raise MetainfoError("missing", "piece layers")
        return {}
    if not isinstance(layers_raw, dict):
        raise MetainfoError("not a dictionary", "piece layers")
    for root, layer in layers_raw.items():  # every layer must belong to a file (libtorrent)
        if len(root) != HASH_SIZE or not isinstance(layer, bytes) or len(layer) % HASH_SIZE:
            raise MetainfoError("a key is not 32 bytes or a layer not a multiple of 32 bytes",
                                "piece layers")
        if root not in needed:
            raise MetainfoError("not the pieces root of any file larger than one piece",
                                f"piece layers[{root.hex()}]")
    out: dict[bytes, bytes] = {}
    for root, length in needed.items():
        layer = layers_raw.get(root)
        fname = f"piece layers[{root.hex()}]"
        if layer is None:
            if require:
                raise MetainfoError("missing for a file larger than one piece", fname)
            continue
        if not isinstance(layer, bytes):
            raise MetainfoError("not a string", fname)
        count = -(-length // piece_length)
        if len(layer) != count * HASH_SIZE:
            raise MetainfoError(f"{len(layer)} bytes, expected {count * HASH_SIZE}", fname)
        hashes = [layer[i : i + HASH_SIZE] for i in range(0, len(layer), HASH_SIZE)]
        if root_from_piece_layer(hashes, piece_length) != root:
            raise MetainfoError("does not hash to the file's pieces root", fname)
        out[root] = layer
    return out


def _unique_paths(files: list[_RawFile]) -> None:
    """Rename files whose sanitized paths collide (``a.txt`` -> ``a.1.txt``), like libtorrent.

    Directories win: a file whose path is also a directory of another file is the one renamed.
    Pad files are never on disk and are skipped.
    """
    real = [f for f in files if not f.pad]
    dirs = {f.path[:depth] for f in real for depth in range(1, len(f.path))}
    taken: set[tuple[str, ...]] = set()

    def bump(name: str, n: int) -> str:
        stem, dot, ext = name.rpartition(".")
        if dot and stem:
            return f"{stem}.{n}.{ext}"
        return f"{name}.{n}"

    for f in real:
        cand = f.path
        n = 0
        while cand in taken or cand in dirs:
            n += 1
            cand = f.path[:-1] + (bump(f.path[-1], n),)
        f.path = cand
        taken.add(cand)


def _trackers(top: Mapping[bytes, BValue]) -> tuple[tuple[str, ...], ...]:
    tiers: list[tuple[str, ...]] = []
    seen: set[str] = set()
    al = top.get(b"announce-list")
    if isinstance(al, list):
        for tier_v in al:
            if not isinstance(tier_v, list):
                continue
            tier: list[str] = []
            for u in tier_v:
                if isinstance(u, bytes):
                    url = _text(u).strip()
                    if url and url not in seen:
                        seen.add(url)
                        tier.append(url)
            if tier:
                tiers.append(tuple(tier))
    if not tiers:  # BEP 12: announce is used only when announce-list is absent or empty
        a = top.get(b"announce")
        if isinstance(a, bytes) and (url := _text(a).strip()):
            tiers.append((url,))
    return tuple(tiers)


def _web_seeds(top: Mapping[bytes, BValue]) -> tuple[str, ...]:
    ul = top.get(b"url-list")
    items = [ul] if isinstance(ul, bytes) else ul if isinstance(ul, list) else []
    out: list[str] = []
    for u in items:
        if isinstance(u, bytes) and (url := _text(u).strip()) and url not in out:
            out.append(url)
    return tuple(out)


def _build(
    info_bytes: bytes,
    info_v: BValue,
    *,
    top: Mapping[bytes, BValue],
    layers_raw: object,
    require_layers: bool,
    trackers: tuple[tuple[str, ...], ...] | None = None,
    web_seeds: tuple[str, ...] | None = None,
) -> Torrent:
    if not isinstance(info_v, dict):
        raise MetainfoError("not a dictionary", "info")
    info = info_v

    # BEP 52: check the version first, so a newer format gets a clear message
    meta_version: int | None = None
    if b"meta version" in info:
        mv = info[b"meta version"]
        if not isinstance(mv, int):
            raise MetainfoError("not an integer", "info.meta version")
        if mv != META_VERSION:
            raise MetainfoError(f"unsupported meta version {mv}", "info.meta version")
        meta_version = mv
    has_v1 = b"pieces" in info
    has_v2 = meta_version == META_VERSION
    if has_v2:  # libtorrent refuses a v2 info dict that is not canonical bencoding
        try:
            decode(info_bytes, strict=True)
        except BencodeError as exc:
            raise MetainfoError(f"a v2 info dict must be canonical bencoding: {exc.reason}", "info") from None
    if b"file tree" in info and not has_v2:
        raise MetainfoError("'file tree' present without 'meta version' 2", "info.meta version")
    if not has_v1 and not has_v2:
        raise MetainfoError("missing", "info.pieces")

    pl = _get_int(info, b"piece length", "info.piece length")
    if pl < MIN_PIECE_LENGTH or pl > MAX_PIECE_LENGTH or pl & (pl - 1):
        raise MetainfoError(
            f"{pl} is not a power of two in {MIN_PIECE_LENGTH}..{MAX_PIECE_LENGTH}", "info.piece length"
        )

    name_raw = _utf8_field(info, b"name")
    if name_raw is None:
        raise MetainfoError("missing or not a string", "info.name")
    info_hash_v1 = hashlib.sha1(info_bytes).digest() if has_v1 else None
    info_hash_v2 = hashlib.sha256(info_bytes).digest() if has_v2 else None
    name = sanitize_component(name_raw)
    if name_raw.replace(b"/", b"").replace(b"\\", b"") in (b"", b".", b".."):
        name = (info_hash_v1 or (info_hash_v2 or b"")[:20]).hex()  # as libtorrent does

    v1_files: list[_RawFile] | None = None
    multi = False
    if has_v1:
        v1_files, multi = _v1_files(info)
    v2_files = _v2_files(info) if has_v2 else None

    if v2_files is not None and v1_files is not None:
        _check_hybrid(v1_files, v2_files, multi, name, pl)

    # Turn raw files into placed FileEntry objects.
    raw: list[_RawFile]
    if v1_files is not None:
        raw = v1_files
        if not multi:
            raw[0].path = (name,)
        else:
            for f in raw:
                f.path = (name, *f.path)
    else:
        assert v2_files is not None
        raw = v2_files
        multi = len(raw) > 1 or len(raw[0].path) > 1
        if multi:
            for f in raw:
                f.path = (name, *f.path)

    _unique_paths(raw)

    files: list[FileEntry] = []
    pos = 0
    total = 0
    for f in raw:
        if v1_files is None and pos % pl:  # v2-only: files start on a piece boundary
            pos += pl - pos % pl
        files.append(
            FileEntry(
                path=f.path,
                length=f.length,
                offset=pos,
                pad=f.pad,
                attr=f.attr,
                symlink=f.symlink,
                pieces_root=f.pieces_root,
            )
        )
        pos += f.length
        if f.length:
            total = pos
    if total == 0:
        raise MetainfoError("the torrent holds no data", "info.files" if multi else "info.length")
    if all(f.pad or f.length == 0 for f in files):
        raise MetainfoError("the torrent holds no data: it has only pad files", "info.files")

    piece_hashes: tuple[bytes, ...] = ()
    num_pieces = -(-total // pl)
    if num_pieces > MAX_PIECES:
        raise MetainfoError(f"{num_pieces} pieces, more than {MAX_PIECES}", "info.piece length")
    if has_v1:
        pieces = info[b"pieces"]
        if not isinstance(pieces, bytes):
            raise MetainfoError("not a string", "info.pieces")
        if len(pieces) % SHA1_SIZE:
            raise MetainfoError(f"length {len(pieces)} is not a multiple of 20", "info.pieces")
        if len(pieces) // SHA1_SIZE != num_pieces:
            raise MetainfoError(
                f"{len(pieces) // SHA1_SIZE} piece hashes for {num_pieces} pieces of the data",
                "info.pieces",
            )
        piece_hashes = tuple(pieces[i : i + SHA1_SIZE] for i in range(0, len(pieces), SHA1_SIZE))

    layers: dict[bytes, bytes] = {}
    if has_v2:
        layers = _check_piece_layers(layers_raw, files, pl, require=require_layers)

    private_v = info.get(b"private")
    comment = _utf8_field(dict(top), b"comment") if top else None
    created_by = top.get(b"created by") if top else None
    date = top.get(b"creation date") if top else None
    return Torrent(
        name=name,
        info_bytes=info_bytes,
        info_hash_v1=info_hash_v1,
        info_hash_v2=info_hash_v2,
        piece_length=pl,
        piece_hashes=piece_hashes,
        piece_layers=layers,
        files=tuple(files),
        total_length=total,
        trackers=trackers if trackers is not None else _trackers(top),
        web_seeds=web_seeds if web_seeds is not None else _web_seeds(top),
        private=private_v == 1,  # BEP 27
        comment=_text(comment) if comment is not None else None,
        created_by=_text(created_by) if isinstance(created_by, bytes) else None,
        creation_date=date if isinstance(date, int) and date >= 0 else None,
    )


def _check_hybrid(v1: list[_RawFile], v2: list[_RawFile], multi: bool, name: str, pl: int) -> None:
    """BEP 52 upgrade path: the v1 and v2 views must describe the same files, same order,
    same piece alignment (v1 reaching it with BEP 47 pad files)."""
    field_name = "info.files" if multi else "info.length"
    real_v1 = [f for f in v1 if not f.pad]
    if len(real_v1) != len(v2):
        raise MetainfoError(f"hybrid: {len(real_v1)} v1 files but {len(v2)} v2 files", field_name)
    v2_multi = len(v2) > 1 or len(v2[0].path) > 1
    # A folder holding one file: libtorrent writes a v1 file list under `name` and a v2 file
    # tree of just that file, and reads it by the v1 view (name/file). So do we.
    one_file_folder = multi and not v2_multi and len(real_v1) == 1 and real_v1[0].path == v2[0].path
    if v2_multi != multi and not one_file_folder:
        raise MetainfoError("hybrid: single-file in one view, multi-file in the other", field_name)
    pos = 0
    v2_pos = 0  # where the v2 layout puts the next file: the previous file's end, aligned up
    j = 0
    for f in v1:
        if f.pad:
            pos += f.length
            continue
        g = v2[j]
        v2_pos += -v2_pos % pl
        v2_path = g.path if multi else (name,)
        v1_path = f.path if multi else (name,)
        if v1_path != v2_path or f.length != g.length:
            raise MetainfoError(
                f"hybrid: v1 file {'/'.join(v1_path)!r} ({f.length} bytes) does not match "
                f"v2 file {'/'.join(g.path)!r} ({g.length} bytes)",
                field_name,
            )
        if f.length and pos != v2_pos:
            raise MetainfoError(
                f"hybrid: v1 file {'/'.join(v1_path)!r} starts at {pos}, not on the piece boundary "
                f"{v2_pos} where v2 puts it",
                field_name,
            )
        f.pieces_root = g.pieces_root
        pos += f.length
        if f.length:
            v2_pos = pos
        j += 1
    if -(-pos // pl) != -(-v2_pos // pl):
        raise MetainfoError("hybrid: trailing pad files add pieces that v2 does not have", field_name)
