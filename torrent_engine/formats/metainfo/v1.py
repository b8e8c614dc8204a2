"""The v1 view of an info dict (BEP 3, 47): the file list (or single file) and the SHA-1
piece hashes."""

from __future__ import annotations

from ...errors import MetainfoError
from ..bencode import BValue
from .fields import MAX_FILES, MAX_LENGTH, SHA1_SIZE, read_length
from .files import (
    BITCOMET_PAD,
    PAD_ATTR,
    SYMLINK_ATTR,
    RawFile,
    read_attr,
    read_symlink,
    sanitize_path,
    stored_length,
)


def v1_files(info: dict[bytes, BValue]) -> tuple[list[RawFile], bool]:
    """The v1 file list and whether the torrent is multi-file."""
    if b"files" in info:
        files_v = info[b"files"]
        if not isinstance(files_v, list):
            raise MetainfoError("not a list", "info.files")
        if not files_v:
            raise MetainfoError("empty file list", "info.files")
        if len(files_v) > MAX_FILES:
            raise MetainfoError(f"more than {MAX_FILES} files", "info.files")
        out: list[RawFile] = []
        for i, fd in enumerate(files_v):
            if not isinstance(fd, dict):
                raise MetainfoError("not a dictionary", f"info.files[{i}]")
            attr = read_attr(fd) if b"attr" in fd else ""
            length = fd.get(b"length")
            if length is None and SYMLINK_ATTR in attr:
                length = 0  # BEP 47: a symlink holds no data, so it may give no length (libtorrent)
            elif type(length) is not int or not 0 <= length <= MAX_LENGTH:
                length = read_length(fd, f"info.files[{i}].length")  # raises, naming the fault
            path_v = fd.get(b"path.utf-8")
            if not isinstance(path_v, list):
                path_v = fd.get(b"path")
            if (not isinstance(path_v, list) or not path_v) and PAD_ATTR in attr:
                path_v = [b".pad", str(length).encode()]  # a pad file needs no path (libtorrent)
            if not isinstance(path_v, list) or not path_v:
                raise MetainfoError("missing, empty or not a list", f"info.files[{i}].path")
            path = sanitize_path(path_v, lambda i=i: f"info.files[{i}].path")  # type: ignore[misc]
            if PAD_ATTR not in attr and any(BITCOMET_PAD in p for p in path):
                attr += PAD_ATTR  # BitComet's pad files carry no attribute, only this name
            out.append(RawFile(path, stored_length(length, attr), attr, read_symlink(fd, attr)))
        return out, True
    if b"length" in info:
        length = read_length(info, "info.length")
        attr = read_attr(info)
        return [RawFile((), stored_length(length, attr), attr, read_symlink(info, attr))], False
    raise MetainfoError("neither 'length' nor 'files' present", "info.length")


def v1_piece_hashes(info: dict[bytes, BValue], num_pieces: int) -> tuple[bytes, ...]:
    """The 20-byte SHA-1 of each piece from ``pieces``: exactly one per piece of the data."""
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
    return tuple(pieces[i : i + SHA1_SIZE] for i in range(0, len(pieces), SHA1_SIZE))
