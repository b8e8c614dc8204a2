"""Checks of what a caller hands the job service: each bad value is an ``InvalidJobRequest`` naming its field.

Pure functions. ``AddOptions`` and the service call them before anything changes, so a refused
request leaves no trace (what to add is read by ``engine/addtorrent.py``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

from ..config import MAX_RATE_LIMIT
from ..formats.magnet import Magnet
from ..formats.metainfo import Torrent
from .model import NO_LIMIT, InvalidJobRequest

MAX_NAME = 255  # of a category, a tag


def files_refusal(files: Sequence[int], torrent: Torrent) -> str | None:
    """Why a selection of file indices cannot apply to ``torrent`` (None: it can): an index out
    of range, or a BEP 47 pad file, which holds no data to download."""
    for index in files:
        if index >= len(torrent.files):
            return f"no file {index}: out of range (the torrent has {len(torrent.files)})"
        if torrent.files[index].pad:
            return f"file {index} is a pad file (BEP 47): it holds no data"
    return None


def check_file_indices(files: object) -> tuple[int, ...] | None:
    """A selection of file indices, sorted and unique (``None``: every file); the range is
    checked against the torrent at the add (``check_files``)."""
    if files is None:
        return None
    if isinstance(files, (str, bytes)) or not isinstance(files, Sequence):
        raise InvalidJobRequest("must be a list of file indices", "files")
    out: list[int] = []
    for index in files:
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise InvalidJobRequest(f"{index!r} is not a file index", "files")
        out.append(index)
    if not out:
        raise InvalidJobRequest("selects no file (leave it out to download every file)", "files")
    return tuple(sorted(set(out)))


def check_files(files: Sequence[int] | None, torrent: Torrent | Magnet) -> tuple[int, ...] | None:
    """The selected file indices, sorted and unique (``None``: every file); for a magnet the
    range is checked when the metadata arrives."""
    selected = check_file_indices(files)
    refusal = None
    if selected is not None and isinstance(torrent, Torrent):
        refusal = files_refusal(selected, torrent)
    if refusal is not None:
        raise InvalidJobRequest(refusal, "files")
    return selected


def check_add_priorities(priorities: object, files: tuple[int, ...] | None) -> tuple[tuple[int, int], ...]:
    """An add's file priorities (``{index: 0..7}`` or its pairs, 0 = skip) as sorted pairs; a
    priority above 0 for a file the selection ``files`` leaves out is refused (it would be
    downloaded after all). The range is checked against the torrent at the add."""
    if isinstance(priorities, Mapping):
        pairs: list[object] = list(priorities.items())
    elif isinstance(priorities, (str, bytes)) or not isinstance(priorities, Sequence):
        raise InvalidJobRequest("must be {file index: priority 0..7}", "file_priorities")
    else:
        pairs = list(priorities)
    out: dict[int, int] = {}
    for pair in pairs:
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise InvalidJobRequest(f"{pair!r} is not a (file index, priority) pair", "file_priorities")
        index, prio = pair
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise InvalidJobRequest(f"{index!r} is not a file index", "file_priorities")
        if not isinstance(prio, int) or isinstance(prio, bool) or not 0 <= prio <= 7:
            raise InvalidJobRequest(f"priority of file {index} must be 0..7, not {prio!r}", "file_priorities")
        if prio > 0 and files is not None and index not in files:
            raise InvalidJobRequest(f"file {index} has a priority but is not among the files selected",
                                    "file_priorities")
        out[index] = prio
    return tuple(sorted(out.items()))


def check_limit(value: object, field: str) -> int:
    """A rate limit in bytes per second (0: none, at most ``MAX_RATE_LIMIT``)."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_RATE_LIMIT:
        raise InvalidJobRequest(f"must be a whole number of bytes per second from 0 (no limit) to "
                                f"{MAX_RATE_LIMIT}", field)
    return value


def check_peers(peers: Sequence[tuple[str, int]]) -> tuple[tuple[str, int], ...]:
    """Peers to dial at once, as ``(host, port)`` pairs."""
    if isinstance(peers, (str, bytes)):
        raise InvalidJobRequest("must be a list of (host, port)", "peers")
    out: list[tuple[str, int]] = []
    try:
        items = list(peers)
    except TypeError as exc:
        raise InvalidJobRequest("must be a list of (host, port)", "peers") from exc
    for item in items:
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise InvalidJobRequest(f"{item!r} is not a (host, port) pair", "peers")
        host, port = item
        if not isinstance(host, str) or not host or "\x00" in host:
            raise InvalidJobRequest(f"bad host {host!r}", "peers")
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            raise InvalidJobRequest(f"bad port {port!r} for {host}", "peers")
        out.append((host, port))
    return tuple(out)


def check_priorities(changes: Mapping[int, int], current: Sequence[int], pads: set[int]) -> list[int]:
    """The file priorities after ``changes`` (index -> 0..7, 0 = skip) are applied to ``current``;
    changes to pad files (``pads``) are ignored (they are never downloaded)."""
    new = list(current)
    for index, prio in dict(changes).items():
        if not isinstance(index, int) or not 0 <= index < len(new):
            raise InvalidJobRequest(f"no file {index!r} (the torrent has {len(new)})", "file_priorities")
        if not isinstance(prio, int) or isinstance(prio, bool) or not 0 <= prio <= 7:
            raise InvalidJobRequest(f"priority of file {index} must be 0..7, not {prio!r}", "file_priorities")
        if index in pads:
            continue
        new[index] = prio
    return new


def check_age(seconds: float, field: str) -> float:
    """An age in seconds (``older_than``): a finite number >= 0."""
    if (isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds)
            or seconds < 0):
        raise InvalidJobRequest(f"must be a number of seconds >= 0, not {seconds!r}", field)
    return float(seconds)


def check_ttl(ttl: float) -> float:
    """A lease's time to live in seconds."""
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not math.isfinite(ttl) or ttl <= 0:
        raise InvalidJobRequest("must be a number of seconds > 0", "ttl")
    return float(ttl)


def check_category(name: object, field: str = "category") -> str:
    """A category name: "" (none), or words joined by single "/" (a subcategory), no NUL, no "\\"."""
    if not isinstance(name, str):
        raise InvalidJobRequest("must be a string", field)
    if name == "":
        return ""
    if (len(name) > MAX_NAME or name.startswith("/") or name.endswith("/") or "//" in name
            or "\\" in name or "\x00" in name or name.strip() != name):
        raise InvalidJobRequest(f"{name!r} is not a valid category name", field)
    return name


def check_tag(tag: object, field: str = "tags") -> str:
    """A tag: non-empty, no comma (lists of tags are comma-separated), no NUL, trimmed."""
    if not isinstance(tag, str):
        raise InvalidJobRequest("each tag must be a string", field)
    tag = tag.strip()
    if not tag or "," in tag or "\x00" in tag or len(tag) > MAX_NAME:
        raise InvalidJobRequest(f"{tag!r} is not a valid tag", field)
    return tag


def check_tags(tags: object, field: str = "tags") -> tuple[str, ...]:
    """Tags (a list of them, else ``InvalidJobRequest``), sorted and unique."""
    if not isinstance(tags, (list, tuple, set, frozenset)):
        raise InvalidJobRequest("must be a list of tags", field)
    return tuple(sorted({check_tag(t, field) for t in tags}))


def check_share_limit(value: object, field: str) -> float | None:
    """A share limit: None (the default), -1 (none) or a finite number >= 0."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidJobRequest("must be a number (-1 = no limit, null = the default)", field)
    try:
        number = float(value)
    except OverflowError:  # (a whole number no float holds)
        number = math.inf
    if not math.isfinite(number):
        raise InvalidJobRequest("must be a number (-1 = no limit, null = the default)", field)
    if number == NO_LIMIT:
        return NO_LIMIT
    if number < 0:
        raise InvalidJobRequest("must be >= 0, or -1 for no limit", field)
    return number


# an incomplete file's suffix (snapshot.shown_paths, disk/partial.py): "" none, or a dot and 1 to 15
# characters that can end a file's name (the OpenAPI document's pattern too)
PARTIAL_SUFFIX = re.compile(r"(\.[^/\\\x00-\x20]{1,15})?")


def check_suffix(value: object, name: str = "partial_file_suffix") -> str:
    """A suffix for incomplete files: "" (none), or a dot and 1 to 15 characters that can end a
    file's name (no ``/``, ``\\``, space or control character); ``InvalidJobRequest`` otherwise."""
    if not isinstance(value, str) or not PARTIAL_SUFFIX.fullmatch(value):
        raise InvalidJobRequest('must be "" (none) or a dot and 1 to 15 characters that can end a '
                                'file\'s name, no space (".!qB", ".part")', name)
    return value
