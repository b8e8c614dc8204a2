"""v2 deduplication, the decisions: which of a new torrent's files can be taken from a file
already held whole (same BEP 52 ``pieces root``, same length), and how each is placed.

Pure: it is handed the torrent's files, what is on disk at their places and the files known by
their pieces roots, and says what to place; the job service's ``jobs/disk/dedup.py`` does the
I/O, and the torrent's start-up check verifies every placed piece before it counts as had.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "DEDUP_MODES",
    "DEFAULT_DEDUP_MODE",
    "DedupMode",
    "Known",
    "Method",
    "Placement",
    "Wanted",
    "methods",
    "plan",
]

# How a file already held is made into a new torrent's file: "reflink" shares its blocks
# copy-on-write where the file system can (btrfs, XFS, bcachefs, ZFS 2.2…), else it is copied;
# "hardlink" makes the new name a second link to the same inode (no space, but one file: a
# write through either name changes both), else it is copied; "copy" copies the bytes; "off"
# takes nothing, every file is downloaded.
DedupMode = Literal["off", "reflink", "hardlink", "copy"]
Method = Literal["reflink", "hardlink", "copy"]
DEDUP_MODES: tuple[DedupMode, ...] = ("off", "reflink", "hardlink", "copy")
# reflink, falling back to a copy: takes no space where the file system shares blocks and is
# never worse than a download where it cannot, and unlike a hard link the two files stay two
# (a user editing one, or a torrent writing a piece that failed its check, leaves the other be)
DEFAULT_DEDUP_MODE: DedupMode = "reflink"

_METHODS: dict[DedupMode, tuple[Method, ...]] = {
    "off": (),
    "reflink": ("reflink", "copy"),
    "hardlink": ("hardlink", "copy"),  # (a link cannot cross file systems: then a copy)
    "copy": ("copy",),
}


def methods(mode: DedupMode) -> tuple[Method, ...]:
    """The ways to place a file in ``mode``, in the order they are tried (the first the file
    system takes is used); ``ValueError`` naming an unknown mode."""
    try:
        return _METHODS[mode]
    except KeyError:
        raise ValueError(f"unknown dedup mode {mode!r}: one of {', '.join(DEDUP_MODES)}") from None


@dataclass(frozen=True, slots=True)
class Wanted:
    """One file of the torrent being added, as the planner needs it."""

    index: int
    pieces_root: bytes | None  # BEP 52 (None: a v1-only torrent's file, an empty file)
    length: int
    wanted: bool  # its priority is above 0 (a skipped file is not placed)
    special: bool  # a pad file or a symbolic link (BEP 47): never placed
    present: bool  # something is at its place on disk already (it is checked, not replaced)


@dataclass(frozen=True, slots=True)
class Known:
    """A file held whole: where it is, its length, and who vouches for it (a job's id, or
    ``folder`` for an indexed folder's file)."""

    path: str
    length: int
    origin: str


@dataclass(frozen=True, slots=True)
class Placement:
    """Take file ``index`` of the new torrent from ``source``."""

    index: int
    source: Known


def plan(files: Sequence[Wanted], known: Mapping[bytes, Sequence[Known]], *,
         targets: Sequence[str] = ()) -> list[Placement]:
    """The files of a new torrent to take from files already held: each wanted file with a
    pieces root, not empty, not a pad file or link, with nothing at its place yet, whose root
    ``known`` maps to a file of the same length (the first such, in ``known``'s order) that is
    not the very file it would become (``targets``: each file's path by index, when given)."""
    out: list[Placement] = []
    for f in files:
        if (f.pieces_root is None or f.length <= 0 or not f.wanted or f.special or f.present):
            continue
        target = targets[f.index] if f.index < len(targets) else None
        for source in known.get(f.pieces_root, ()):
            if source.length == f.length and source.path != target:
                out.append(Placement(index=f.index, source=source))
                break
    return out
