"""Finding a torrent's files among files held elsewhere, by their content: the same data under
other names or in another layout (the files of one torrent cross-seeded as another's, a library
renamed). A file is found in a file of its size whose pieces that lie wholly in it verify against
the torrent — SHA-1 for v1, the piece layers for v2, both for hybrid — so a v1 torrent's files are
found too, where v2 deduplication (``policy.dedup``) needs pieces roots. ``verify --find-in``'s.

Blocking: run ``find_files`` (or ``find_among``, handed the candidates) in a worker thread. It
reads, never writes; ``place_file`` (``storage.dedup``) then makes a found file the torrent's.
``find_among``'s ``most`` verifies a few of a file's pieces, spread over it, rather than all: a
choice among candidates that a check of the torrent then confirms piece by piece (the job
service's deduplication, ``jobs/disk/dedup.py``).

A file that no piece lies wholly in (smaller than a piece, or sharing each of its pieces with
its neighbours in a v1 torrent) is told by the pieces it shares with files found, or at their
place already; files that share pieces only with each other are told together, their candidates'
combinations tried on a piece they share (``JOINT_MOST`` at most); one that still cannot be told
says so.
"""

from __future__ import annotations

import itertools
import math
import os
import stat
import threading
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..formats.layout import FileMap
from ..formats.metainfo import Torrent
from .verify import piece_ok

__all__ = ["JOINT_MOST", "SPENT", "Found", "WrongReads", "alone", "find_among", "find_files", "holds",
           "own_pieces", "sizes_under", "spread"]

JOINT_MOST = 64  # combinations of candidates tried on one piece for files told only together
SPENT = "not looked for: the look read its most on files that did not hold theirs"  # (``WrongReads``)


@dataclass(frozen=True, slots=True)
class Found:
    """Where file ``index`` of the torrent was found (``source``), or why not (``why``)."""

    index: int
    source: Path | None
    why: str = ""


def own_pieces(spans: FileMap, index: int, known: Container[int] = ()) -> list[int]:
    """The pieces of file ``index`` whose other bytes are pad (zeros) or of the files ``known``
    (found, or at their place already), in order: those its bytes can verify with theirs."""
    return [piece for piece in spans.file_pieces(index)
            if all(s.pad or s.file_index == index or s.file_index in known
                   for s in spans.slices(piece, 0, spans.torrent.piece_size(piece)))]


def alone(spans: FileMap, index: int) -> bool:
    """Whether every piece that holds bytes of file ``index`` holds no other file's (pad files
    aside): the pieces its own bytes verify, and the only ones a download writes into it. A file
    made a hard link of another is linked only so: a piece it shares fails its check while its
    neighbour is missing, and its download would be written into the other file."""
    return own_pieces(spans, index) == list(spans.file_pieces(index))


def spread(pieces: Sequence[int], most: int | None) -> Sequence[int]:
    """``pieces``, or ``most`` of them spread evenly over them, the first and the last among
    them (``most`` None: every one; ``ValueError`` under 1: no piece would vouch for a file)."""
    if most is not None and most < 1:
        raise ValueError(f"most must be at least 1, not {most}")
    if most is None or len(pieces) <= most:
        return pieces
    if most == 1:
        return [pieces[0]]
    step = (len(pieces) - 1) / (most - 1)
    return [pieces[round(k * step)] for k in range(most)]


def holds(torrent: Torrent, spans: FileMap, pieces: Sequence[int], sources: Mapping[int, Path],
          stop: threading.Event | None = None, spend: WrongReads | None = None) -> bool:
    """Whether every one of ``pieces`` verifies with each file of it read from its ``sources``
    (False at the first that does not, or when a file cannot be read); each piece read is taken
    from ``spend``, when given."""
    fds: dict[int, int] = {}
    try:
        for piece in pieces:
            if stop is not None and stop.is_set():
                return False
            if spend is not None:
                spend.left -= torrent.piece_size(piece)
            parts = []
            for s in spans.slices(piece, 0, torrent.piece_size(piece)):
                if s.pad:
                    parts.append(bytes(s.length))
                    continue
                fd = fds.get(s.file_index)
                if fd is None:
                    fd = fds[s.file_index] = os.open(sources[s.file_index], os.O_RDONLY | os.O_CLOEXEC)
                got = os.pread(fd, s.length, s.file_offset)
                if len(got) != s.length:
                    return False
                parts.append(got)
            if not piece_ok(torrent, piece, b"".join(parts)):
                return False
        return True
    except OSError:
        return False
    finally:
        for fd in fds.values():
            os.close(fd)


def sizes_under(folders: Iterable[Path], lengths: set[int]) -> dict[int, list[Path]]:
    """The regular files under ``folders`` (links to folders not followed) whose sizes are among
    ``lengths``, by size, each once; a folder that cannot be read is passed over."""
    out: dict[int, list[Path]] = {}
    seen: set[tuple[int, int]] = set()
    for folder in folders:
        for dirpath, _dirnames, filenames in os.walk(folder):
            for name in filenames:
                path = Path(dirpath, name)
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                if not stat.S_ISREG(st.st_mode) or st.st_size not in lengths \
                        or (st.st_dev, st.st_ino) in seen:
                    continue
                seen.add((st.st_dev, st.st_ino))
                out.setdefault(st.st_size, []).append(path)
    for paths in out.values():
        paths.sort()
    return out


def _together(torrent: Torrent, spans: FileMap, waiting: Sequence[int], by_size: Mapping[int, Sequence[Path]],
              sources: Mapping[int, Path], stop: threading.Event | None) -> dict[int, Path]:
    """Files none of which can be told alone, told together: the first piece that holds only
    files ``waiting`` (some of them) and files known, each combination of their candidates (at
    most ``JOINT_MOST``) tried on it; those of the one that verifies (empty: none)."""
    open_files = set(waiting)
    for piece in range(torrent.num_pieces):
        held = {s.file_index for s in spans.slices(piece, 0, torrent.piece_size(piece)) if not s.pad}
        unknown = sorted(held - sources.keys())
        if not unknown or not held <= open_files | sources.keys():
            continue
        choices = [by_size[torrent.files[i].length] for i in unknown]
        if math.prod(len(c) for c in choices) > JOINT_MOST:
            continue
        for chosen in itertools.product(*choices):
            tried = dict(zip(unknown, chosen, strict=True))
            if len(set(chosen)) == len(chosen) and holds(torrent, spans, [piece], {**sources, **tried}, stop):
                return tried
    return {}


def find_files(torrent: Torrent, wanted: Iterable[int], folders: Sequence[Path],
               present: Mapping[int, Path] | None = None, stop: threading.Event | None = None) -> list[Found]:
    """(Blocking.) Each of the files ``wanted`` (metainfo indices, not pad files) looked for
    under ``folders`` (``find_among`` with the files of their sizes there, in path order, every
    piece verified)."""
    indices = [i for i in wanted if not torrent.files[i].pad and torrent.files[i].length > 0]
    by_size = sizes_under(folders, {torrent.files[i].length for i in indices})
    return find_among(torrent, indices, by_size, present, stop)


@dataclass(slots=True)
class WrongReads:
    """The bytes a look may still read on candidates that turn out not to hold a file: a torrent
    of many files of one length, each tried on every file held of that length, reads a piece of
    each at least (``find_among`` stops looking once it is spent)."""

    left: int


def find_among(torrent: Torrent, wanted: Iterable[int], by_size: Mapping[int, Sequence[Path]],
               present: Mapping[int, Path] | None = None, stop: threading.Event | None = None,
               most: int | None = None, wrong: WrongReads | None = None) -> list[Found]:
    """(Blocking.) Each of the files ``wanted`` (metainfo indices, not pad files) looked for
    among the candidates of its size ``by_size`` gives: the first that holds the pieces lying
    wholly in it (``most`` of them at most, spread over the file: ``spread``), or why none was
    taken. A file that no piece lies wholly in is tried with the pieces it shares with files
    found or ``present`` (at their place already: index -> path), once those are known; files
    that share their pieces only with each other, with their candidates together. A candidate
    is dropped at its first piece that fails; the pieces read on those dropped are taken from
    ``wrong`` (when given), and once it is spent no more candidates are tried."""
    spans = FileMap(torrent)
    indices = [i for i in wanted if not torrent.files[i].pad and torrent.files[i].length > 0]
    sources: dict[int, Path] = dict(present or {})
    found: dict[int, Found] = {}
    pending = []
    for index in indices:
        if not by_size.get(torrent.files[index].length):
            found[index] = Found(index, None, "no file of its size there")
        else:
            pending.append(index)
    while pending:  # (files told by their own pieces first, then those that need a neighbour's)
        waiting = []
        for index in pending:
            pieces = own_pieces(spans, index) or own_pieces(spans, index, sources)
            if not pieces:
                waiting.append(index)
                continue
            candidates = by_size[torrent.files[index].length]
            tried = spread(pieces, most)
            source = None
            spent = False
            for c in candidates:
                if wrong is not None and wrong.left <= 0:
                    spent = True
                    break
                left = wrong.left if wrong is not None else 0
                if holds(torrent, spans, tried, {**sources, index: c}, stop, wrong):
                    source = c
                    if wrong is not None:
                        wrong.left = left  # (read on the file that holds them: not wrong)
                    break
            if source is not None:
                sources[index] = source
            why = SPENT if spent else f"none of the {len(candidates)} file(s) of its size holds its pieces"
            found[index] = Found(index, source, "" if source is not None else why)
        if len(waiting) == len(pending):
            told = _together(torrent, spans, waiting, by_size, sources, stop)
            if not told:
                for index in waiting:
                    found[index] = Found(index, None, "no piece lies wholly in it or with files found: "
                                                      "its content cannot be told")
                break
            for index, source in told.items():
                sources[index] = source
                found[index] = Found(index, source)
            waiting = [i for i in waiting if i not in told]
        pending = waiting
    return [found[i] for i in indices]
