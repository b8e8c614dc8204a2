"""Building a :class:`Torrent` from a decoded info dict and the file's top-level fields: which
views the info dict has, the files placed in the piece space, the trackers and web seeds."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, TypeVar

from ...errors import MetainfoError
from ..bencode import BValue
from ..infohash import wire_info_hash
from .fields import MAX_PIECE_LENGTH, MAX_PIECES, MIN_PIECE_LENGTH, get_int, text, utf8_field
from .files import FileEntry, RawFile, sanitize_component, unique_paths
from .hybrid import check_hybrid
from .v1 import v1_files, v1_piece_hashes
from .v2 import check_piece_layers, is_v2, v2_files

if TYPE_CHECKING:
    from .torrent import Torrent

T = TypeVar("T", bound="Torrent")


def build(
    cls: type[T],
    info_bytes: bytes,
    info_v: BValue,
    *,
    top: Mapping[bytes, BValue],
    layers_raw: object,
    trackers: tuple[tuple[str, ...], ...] | None = None,
    web_seeds: tuple[str, ...] | None = None,
) -> T:
    """A validated ``cls`` from the exact bytes of an info dict, its decoded value, the file's
    top-level dict (``top``; empty for bare BEP 9 metadata) and its ``piece layers``.
    ``trackers`` and ``web_seeds``, when given, stand in for those of ``top``."""
    if not isinstance(info_v, dict):
        raise MetainfoError("not a dictionary", "info")
    info = info_v
    has_v2 = is_v2(info, info_bytes)
    has_v1 = b"pieces" in info
    if not has_v1 and not has_v2:
        raise MetainfoError("missing", "info.pieces")

    pl = get_int(info, b"piece length", "info.piece length")
    if has_v2 and (pl < MIN_PIECE_LENGTH or pl > MAX_PIECE_LENGTH or pl & (pl - 1)):
        raise MetainfoError(  # BEP 52: the merkle trees of v2 need it
            f"{pl} is not a power of two in {MIN_PIECE_LENGTH}..{MAX_PIECE_LENGTH}", "info.piece length"
        )
    if not 0 < pl <= MAX_PIECE_LENGTH:  # BEP 3 asks no more of v1 (nor does libtorrent)
        raise MetainfoError(f"{pl} is not in 1..{MAX_PIECE_LENGTH}", "info.piece length")

    name_raw = utf8_field(info, b"name")
    if name_raw is None:
        raise MetainfoError("missing or not a string", "info.name")
    info_hash_v1 = hashlib.sha1(info_bytes).digest() if has_v1 else None
    info_hash_v2 = hashlib.sha256(info_bytes).digest() if has_v2 else None
    name = sanitize_component(name_raw)
    if name_raw.replace(b"/", b"").replace(b"\\", b"") in (b"", b".", b".."):
        name = wire_info_hash(info_hash_v1, info_hash_v2).hex()  # as libtorrent does

    v1: list[RawFile] | None = None
    multi = False
    if has_v1:
        v1, multi = v1_files(info)
    v2 = v2_files(info) if has_v2 else None
    if v2 is not None and v1 is not None:
        check_hybrid(v1, v2, multi, name, pl)

    raw: list[RawFile]
    if v1 is not None:
        raw = v1
        if not multi:
            raw[0].path = (name,)
        else:
            for f in raw:
                f.path = (name, *f.path)
    else:
        assert v2 is not None
        raw = v2
        multi = len(raw) > 1 or len(raw[0].path) > 1
        if multi:
            for f in raw:
                f.path = (name, *f.path)
    unique_paths(raw)
    files, total = _place(raw, pl, v2_only=v1 is None)
    if total == 0:
        raise MetainfoError("the torrent holds no data", "info.files" if multi else "info.length")
    if all(f.pad or f.length == 0 for f in files):
        raise MetainfoError("the torrent holds no data: it has only pad files", "info.files")

    num_pieces = -(-total // pl)
    if num_pieces > MAX_PIECES:
        raise MetainfoError(f"{num_pieces} pieces, more than {MAX_PIECES}", "info.piece length")
    piece_hashes = v1_piece_hashes(info, num_pieces) if has_v1 else ()
    layers = check_piece_layers(layers_raw, files, pl) if has_v2 else {}

    comment = utf8_field(dict(top), b"comment") if top else None
    created_by = top.get(b"created by") if top else None
    date = top.get(b"creation date") if top else None
    return cls(
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
        private=info.get(b"private") == 1,  # BEP 27
        comment=text(comment) if comment is not None else None,
        created_by=text(created_by) if isinstance(created_by, bytes) else None,
        creation_date=date if isinstance(date, int) and date >= 0 else None,
    )


def _place(raw: list[RawFile], pl: int, v2_only: bool) -> tuple[list[FileEntry], int]:
    """The files placed in the piece space, and its size (up to the end of the last file with
    data). v1 and hybrid files follow each other (pad files align them); v2-only files each start
    on a piece boundary."""
    files: list[FileEntry] = []
    pos = 0
    total = 0
    for f in raw:
        if v2_only and pos % pl:
            pos += pl - pos % pl
        files.append(FileEntry(path=f.path, length=f.length, offset=pos, pad=f.pad, attr=f.attr,
                               symlink=f.symlink, pieces_root=f.pieces_root))
        pos += f.length
        if f.length:
            total = pos
    return files, total


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
                    url = text(u).strip()
                    if url and url not in seen:
                        seen.add(url)
                        tier.append(url)
            if tier:
                tiers.append(tuple(tier))
    if not tiers:  # BEP 12: announce is used only when announce-list is absent or empty
        a = top.get(b"announce")
        if isinstance(a, bytes) and (url := text(a).strip()):
            tiers.append((url,))
    return tuple(tiers)


def _web_seeds(top: Mapping[bytes, BValue]) -> tuple[str, ...]:
    ul = top.get(b"url-list")
    items = [ul] if isinstance(ul, bytes) else ul if isinstance(ul, list) else []
    out: list[str] = []
    for u in items:
        if isinstance(u, bytes) and (url := text(u).strip()) and url not in out:
            out.append(url)
    return tuple(out)
