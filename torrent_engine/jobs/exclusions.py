"""File names new torrents do not download (qBittorrent's "excluded file names"): the setting's
wildcard patterns checked, and the file priorities they leave a torrent's files."""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Sequence

from ..formats.metainfo import Torrent
from ..policy.picker import DEFAULT_PRIORITY
from .model import InvalidJobRequest

__all__ = ["MOST_PATTERNS", "check_name_patterns", "excluded_priorities"]

MOST_PATTERNS = 1000  # patterns a setting holds
MOST_PATTERN_LENGTH = 1000  # characters a pattern holds


def check_name_patterns(value: object, name: str) -> tuple[str, ...]:
    """The setting ``name``'s patterns, each once, in order: a list of file name patterns (``*``
    any characters, ``?`` one, ``[...]`` one of a set, ``[!...]`` one not in it), each a name
    (no ``/``: it is matched against one name at a time), on one line, not empty."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise InvalidJobRequest("must be a list of file name patterns", name)
    if len(value) > MOST_PATTERNS:
        raise InvalidJobRequest(f"must hold at most {MOST_PATTERNS} patterns, not {len(value)}", name)
    for i, pattern in enumerate(value):
        if not isinstance(pattern, str) or not pattern or len(pattern) > MOST_PATTERN_LENGTH \
                or any(c in pattern for c in "/\n\r\x00"):
            raise InvalidJobRequest(
                f"pattern {i} ({pattern!r}) is not a file name pattern: one name (no '/'), on one line, "
                f"1 to {MOST_PATTERN_LENGTH} characters", name)
    return tuple(dict.fromkeys(value))


@functools.lru_cache(maxsize=4)
def _matcher(patterns: tuple[str, ...]) -> re.Pattern[str]:
    """One expression for all of ``patterns``, each matching a whole name, in any case."""
    return re.compile("|".join(fnmatch.translate(p) for p in patterns), re.IGNORECASE)


def excluded_priorities(torrent: Torrent, patterns: Sequence[str]) -> tuple[int, ...] | None:
    """The file priorities of a job of ``torrent`` that downloads none of the files a pattern
    excludes: a file is excluded when its name, or the name of a folder it is in (the torrent's
    own folder too), matches one (as qBittorrent's filter reads each name of a file's path).
    None when no file is excluded (the job wants every file)."""
    if not patterns:
        return None
    match = _matcher(tuple(patterns)).match
    out: list[int] = []
    excluded = False
    for f in torrent.files:
        if f.pad:
            out.append(0)
        elif any(match(part) for part in f.path):
            out.append(0)
            excluded = True
        else:
            out.append(DEFAULT_PRIORITY)
    return tuple(out) if excluded else None
