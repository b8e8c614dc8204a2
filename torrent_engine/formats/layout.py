"""The piece space of a torrent and how it maps onto files (sans-I/O).

``TorrentLayout`` is the part of ``metainfo.Torrent`` that the picker, storage and verify use;
the real ``Torrent`` satisfies it, and tests can pass any object with the same shape.
``FileMap`` turns (piece, begin, length) into file slices across file boundaries.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ..errors import StorageError

__all__ = ["FileLike", "FileMap", "FileSlice", "TorrentLayout"]


class FileLike(Protocol):
    """One entry of ``Torrent.files`` (see ``metainfo.FileEntry``)."""

    @property
    def path(self) -> tuple[str, ...]:
        """The file's path components, relative to the torrent's folder."""

    @property
    def length(self) -> int:
        """The file's size in bytes."""

    @property
    def offset(self) -> int:
        """Where the file starts in the torrent's byte space."""

    @property
    def pad(self) -> bool:
        """Whether the file is a BEP 47 pad file (never written)."""

    @property
    def attr(self) -> str:
        """The BEP 47 attributes (``x`` executable, ``h`` hidden, ``p`` pad, ``l`` symlink)."""


class TorrentLayout(Protocol):
    """What the picker and storage need to know about a torrent."""

    @property
    def piece_length(self) -> int:
        """The nominal piece size in bytes."""

    @property
    def total_length(self) -> int:
        """The torrent's size in bytes, pad files included."""

    @property
    def num_pieces(self) -> int:
        """How many pieces the torrent has."""

    @property
    def files(self) -> Sequence[FileLike]:
        """The torrent's files in order."""

    def piece_size(self, index: int) -> int:
        """The size of piece ``index`` (the last one, and in v2 each file's last one, may be shorter)."""


@dataclass(frozen=True, slots=True)
class FileSlice:
    """``length`` bytes at ``file_offset`` of ``files[file_index]``.

    ``pad`` slices (BEP 47 pad files, or a v2 alignment gap with ``file_index == -1``) are
    never written and read as zeros.
    """

    file_index: int
    file_offset: int
    length: int
    pad: bool


class FileMap:
    """Maps byte ranges of pieces onto files.

    Invariants: files are in piece-space order (``offset`` non-decreasing) and do not overlap;
    empty files occupy no piece-space and are never part of a slice; a lookup is O(log F + k)
    for F files and k slices returned.
    """

    def __init__(self, torrent: TorrentLayout) -> None:
        self.torrent = torrent
        self.piece_length = torrent.piece_length
        self.num_pieces = torrent.num_pieces
        self.files: Sequence[FileLike] = torrent.files
        # Non-empty files only, by start offset (bisect finds the file holding an offset).
        self._indexes = [i for i, f in enumerate(self.files) if f.length > 0]
        self._starts = [self.files[i].offset for i in self._indexes]

    def piece_offset(self, index: int) -> int:
        """Where piece ``index`` starts in the piece space (v2 files start on piece boundaries)."""
        return index * self.piece_length

    def check_range(self, index: int, begin: int, length: int) -> None:
        """``StorageError`` unless [begin, begin + length) lies inside piece ``index``."""
        if not 0 <= index < self.num_pieces:
            raise StorageError(f"piece index {index} out of range (0..{self.num_pieces - 1})")
        size = self.torrent.piece_size(index)
        if begin < 0 or length < 0 or begin + length > size:
            raise StorageError(f"range {begin}+{length} outside piece {index} of {size} bytes")

    def slices(self, index: int, begin: int, length: int) -> list[FileSlice]:
        """The file slices covering ``length`` bytes at ``begin`` in piece ``index``, in order."""
        self.check_range(index, begin, length)
        return self.slices_at(self.piece_offset(index) + begin, length)

    def slices_at(self, offset: int, length: int) -> list[FileSlice]:
        """The file slices covering ``length`` bytes at ``offset`` of the piece space."""
        out: list[FileSlice] = []
        pos = max(bisect.bisect_right(self._starts, offset) - 1, 0)
        end = offset + length
        while offset < end:
            if pos < len(self._indexes):
                f = self.files[self._indexes[pos]]
                if offset >= f.offset + f.length:
                    pos += 1
                    continue
                if offset >= f.offset:
                    n = min(end, f.offset + f.length) - offset
                    out.append(FileSlice(self._indexes[pos], offset - f.offset, n, f.pad))
                    offset += n
                    pos += 1
                    continue
                gap_end = min(end, f.offset)
            else:
                gap_end = end
            # A gap between files (v2 alignment) reads as zeros up to the next file.
            out.append(FileSlice(-1, 0, gap_end - offset, True))
            offset = gap_end
        return out

    def file_pieces(self, file_index: int) -> range:
        """The pieces that hold bytes of file ``file_index`` (empty range for an empty file)."""
        f = self.files[file_index]
        if f.length == 0:
            return range(0)
        first = f.offset // self.piece_length
        last = (f.offset + f.length - 1) // self.piece_length
        return range(first, min(last, self.num_pieces - 1) + 1)

    def file_at(self, offset: int) -> int:
        """Index of the non-empty file holding piece-space byte ``offset``, or -1 in a gap."""
        pos = bisect.bisect_right(self._starts, offset) - 1
        if pos < 0:
            return -1
        i = self._indexes[pos]
        f = self.files[i]
        return i if offset < f.offset + f.length else -1
