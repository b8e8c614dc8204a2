"""What an owner tells a session before it starts: one typed, frozen value, ``SessionSetup``.

An owner that keeps its own record of a torrent (the job service: a job's record) hands the new
session what that record says — the torrent's own rate limits and connections at most, its file
priorities, sequential mode, the first and last piece of each file first, the files it renamed,
the trackers it edited, and the totals so far — as ``Session(..., setup=...)`` (through
``TorrentManager.add``). The session applies it itself as it is made, before it runs: no peer
and no request ever sees it otherwise, and nothing calls back into the owner (what the session
later learns that its owner records, such as a skipped file a reader opened, it publishes as an
event).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..formats.metainfo import Torrent

if TYPE_CHECKING:
    from ..net.tracker.coordinator import Settling, TrackerMemory

TOP_PRIORITY = 7  # the picker's highest piece priority


@dataclass(frozen=True, slots=True)
class SessionSetup:
    """What the session is told before it starts (each field's default: nothing told).

    ``file_priorities`` (one per file, 0 = skip, 1..7; None: the session's own, its resume
    data's) are the owner's when given: they win over the resume data's (and a magnet's BEP 53
    selection), which the start-up check then never applies; a torrent with another number of
    files is a ``SessionError`` (for a magnet, the session's error once its metadata is here).
    They, ``sequential`` and ``first_last_piece`` apply as the torrent's parts are made: at once
    for a .torrent, when a magnet's metadata arrives (before its first request for data).
    ``downloaded``/``uploaded``: the totals so far, which the session counts on from (or from
    its resume data's, whichever is more); ``wasted``/``corrupt`` the same (no resume data keeps
    them: the owner does).
    """

    download_limit: int = 0  # this torrent's own limit, bytes per second (0 = none)
    upload_limit: int = 0
    max_peers: int = 0  # this torrent's connections at most (0: the config's for every torrent)
    file_priorities: tuple[int, ...] | None = None
    sequential: bool = False  # new pieces in index order instead of rarest-first
    first_last_piece: bool = False  # each wanted file's first and last piece first
    super_seeding: bool = False  # BEP 16 while seeding (``Session.set_super_seeding``)
    bandwidth_group: str = ""  # the bandwidth group its traffic passes (``Session.set_bandwidth_group``)
    renamed_files: tuple[tuple[int, tuple[str, ...]], ...] = ()  # (index, path below the save path)
    trackers: tuple[tuple[str, ...], ...] | None = None  # tiers (BEP 12) instead of the torrent's
    web_seeds: tuple[str, ...] | None = None  # BEP 19 URLs instead of the torrent's url-list
    downloaded: int = 0
    uploaded: int = 0
    wasted: int = 0  # bytes received not needed (``Session.wasted``)
    corrupt: int = 0  # bytes received in pieces that failed their hash check (``Session.corrupt``)
    # the torrent was announced without a session (a dormant seed): what its trackers know, and
    # in how many seconds its next announce is due; none of them is told ``started`` again
    announced: tuple[tuple[TrackerMemory, ...], float] | None = None
    # ... and its round was in flight when the session was made: what that round leaves, when it
    # ends (the session's first announce waits for it; ``announced`` is from before it)
    settling: Settling | None = None


def first_last_pieces(torrent: Torrent, priorities: Sequence[int] | None) -> set[int]:
    """The first and the last piece of every wanted (priority > 0), non-empty, non-pad file."""
    pl = torrent.piece_length
    out: set[int] = set()
    for i, f in enumerate(torrent.files):
        wanted = priorities[i] > 0 if priorities is not None and i < len(priorities) else True
        if f.pad or f.length == 0 or not wanted:
            continue
        out.add(f.offset // pl)
        out.add((f.offset + f.length - 1) // pl)
    return out
