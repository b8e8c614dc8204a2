"""Which files of a torrent are complete, told as each completes (its owner names a file on disk
by whether it is: the job service's incomplete-file suffix, as qBittorrent's ``.!qB``). Pure: the
session hands it each verified piece."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ..formats.bitfield import Bitfield
from ..formats.layout import FileMap, TorrentLayout

__all__ = ["FileWatch"]


class FileWatch:
    """Files ``indexes`` of ``torrent`` watched for completion: ``done(i)`` once every piece file
    ``i`` touches is verified (an empty file or a pad file is complete from the start)."""

    def __init__(self, torrent: TorrentLayout, have: Bitfield, indexes: Iterable[int],
                 done: Callable[[int], None]) -> None:
        self._done = done
        spans = FileMap(torrent)
        self._missing: dict[int, set[int]] = {}  # file -> its pieces not verified yet
        self._files_of: dict[int, list[int]] = {}  # piece -> the watched files it completes a part of
        self.complete: list[int] = []  # (those complete when watched: not told through ``done``)
        for index in dict.fromkeys(indexes):
            if not 0 <= index < len(torrent.files):
                raise IndexError(f"no file {index}")
            missing = {p for p in spans.file_pieces(index) if p not in have}
            if not missing or torrent.files[index].pad:
                self.complete.append(index)
                continue
            self._missing[index] = missing
            for piece in missing:
                self._files_of.setdefault(piece, []).append(index)

    @property
    def waiting(self) -> frozenset[int]:
        """The watched files not complete yet."""
        return frozenset(self._missing)

    def piece_passed(self, index: int) -> None:
        """Piece ``index`` is verified: each watched file it was the last missing piece of is done."""
        files = self._files_of.pop(index, None)
        if not files:
            return
        for f in files:
            missing = self._missing[f]
            missing.discard(index)
            if not missing:
                del self._missing[f]
                self._done(f)
