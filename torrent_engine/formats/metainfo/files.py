"""A torrent's files: :class:`FileEntry`, path sanitizing, BEP 47 attributes, unique paths.

File paths are sanitized so that none can leave the save path, the way libtorrent 2 does it,
so that both put every file at the same place.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

from ...errors import MetainfoError
from ..bencode import BValue

MAX_COMPONENT_BYTES = 240  # libtorrent truncates longer path elements (filesystems allow 255)
PAD_ATTR = "p"  # BEP 47
SYMLINK_ATTR = "l"  # BEP 47
BITCOMET_PAD = "_____padding_file_"  # BitComet's name for pad files (no 'attr'), as libtorrent reads it


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


@dataclass(slots=True)
class RawFile:
    """A file as one view (v1 list or v2 tree) describes it, before it is placed in the piece space."""

    path: tuple[str, ...]  # sanitized, relative to the torrent root (name not yet prepended)
    length: int
    attr: str
    symlink: tuple[str, ...] | None
    pieces_root: bytes | None = None

    @property
    def pad(self) -> bool:
        """Whether this is a BEP 47 pad file."""
        return PAD_ATTR in self.attr


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


def sanitize_path(parts: list[BValue], fieldname: Callable[[], str]) -> tuple[str, ...]:
    """Sanitized path elements; ``fieldname`` is only built when there is an error to report."""
    try:
        return tuple(map(sanitize_component, parts))  # type: ignore[arg-type]
    except (TypeError, AttributeError):  # an element that is not a byte string
        bad = next(i for i, p in enumerate(parts) if not isinstance(p, bytes))
        raise MetainfoError("path element is not a string", f"{fieldname()}[{bad}]") from None


def read_attr(d: dict[bytes, BValue]) -> str:
    """The BEP 47 attributes we know (``p``, ``x``, ``h``, ``l``), sorted; others are ignored."""
    v = d.get(b"attr")
    if not isinstance(v, bytes):
        return ""
    return "".join(sorted({c for c in v.decode("ascii", errors="ignore") if c in "pxhl"}))


def read_symlink(d: dict[bytes, BValue], attr: str) -> tuple[str, ...] | None:
    """The BEP 47 symlink target of a file marked ``l`` (None when absent or malformed)."""
    if SYMLINK_ATTR not in attr:
        return None
    v = d.get(b"symlink path")
    if not isinstance(v, list) or not all(isinstance(p, bytes) for p in v):
        return None
    return tuple(sanitize_component(p) for p in v if isinstance(p, bytes))


def stored_length(length: int, attr: str) -> int:
    """BEP 47: a symlink entry holds no data, whatever length it claims (as libtorrent reads it:
    size 0, so it takes no room in the piece space)."""
    return 0 if SYMLINK_ATTR in attr else length


# libtorrent's load_torrent_limits.max_duplicate_filenames: past this many failed renames a
# torrent is refused (it bounds the work a hostile file list can cause, too)
MAX_DUPLICATE_RENAMES = 500
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def unique_paths(files: list[RawFile]) -> None:
    """Rename files whose sanitized paths collide (``a.txt`` -> ``a.1.txt``), like libtorrent.

    Names are compared as libtorrent compares them: ASCII letters without case, so ``A.txt`` and
    ``a.txt`` do not overwrite each other on a case-insensitive file system. Directories win: a
    file whose path is also a directory of another file is the one renamed. Pad files are never
    on disk and are skipped. More than ``MAX_DUPLICATE_RENAMES`` failed candidate names in all
    refuse the torrent (``MetainfoError``), as libtorrent refuses it.
    """
    def key(path: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(p.translate(_ASCII_LOWER) for p in path)

    def bump(name: str, n: int) -> str:  # the number goes before the extension, if any
        stem, dot, ext = name.rpartition(".")
        return f"{stem}.{n}.{ext}" if dot else f"{name}.{n}"

    real = [f for f in files if not f.pad]
    taken = {key(f.path[:depth]) for f in real for depth in range(1, len(f.path))}
    failed = 0
    for f in real:
        cand = f.path
        n = 0
        while key(cand) in taken:
            if n:
                failed += 1
                if failed > MAX_DUPLICATE_RENAMES:
                    raise MetainfoError(f"too many duplicate file names (more than {MAX_DUPLICATE_RENAMES} "
                                        "renames to tell them apart)", "info.files")
            n += 1
            cand = f.path[:-1] + (bump(f.path[-1], n),)
        f.path = cand
        taken.add(key(cand))
