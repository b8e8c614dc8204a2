"""What a session holds in each phase of its life, one object per phase: what exists in a phase
is what its object holds, so code that needs the torrent, the picker or the files takes them from
a phase that has them (``isinstance`` narrows; there is no "torrent or None" to forget).

::

    FetchingMetadata --info dict--> Loaded --run()--> Checking --> Live <--pause/resume--> Paused
       (a magnet)                  (.torrent)                                                |
                     run() ends (stop, error): files closed, back to Loaded  <---------------+

- ``FetchingMetadata``: a magnet before its info dictionary. Owns the BEP 9 fetch
  (``MetadataClient``) and, while not paused, the swarm that finds peers for it. No torrent,
  no picker, no storage.
- ``Loaded``: the torrent is known (``TorrentParts``: metainfo, picker, file priorities), its
  files are not open: before ``run()`` (e.g. queued), between the metadata and the check, and
  after ``run()`` ended.
- ``Checking``: files open (``storage``); the picker learns what is on disk (resume data or a
  recheck). A pause while checking lets the check finish, then the session waits in ``Paused``.
- ``Live``: checked; owns the swarm (peers, trackers, DHT, LSD, web seeds, choker) in its task
  group. A pause or stop cancels the swarm.
- ``Paused``: checked, files open, no swarm; the picker keeps what was verified and a resume
  starts a new ``Live``.

Each phase object also carries the public state (``state_table.State``: queued, downloading,
seeding, paused, ...) and the error that ended the session: the phase is the one record of both.
One owner moves them, by the one table of ``state_table``: ``lifecycle.Life``'s machine
(``SessionStateMachine.to`` checks a state change against the table; ``enter`` moves to the next
phase object and carries the state and the error over). The phase says what the session holds;
its state is what the session shows (a ``Loaded`` phase is queued before ``run()`` and stopped or
failed after it; a ``Live`` one downloads or seeds).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio
import anyio.abc

from ..errors import SessionError
from ..formats.metainfo import Torrent
from ..policy.picker import PiecePicker
from ..storage import PieceStorage
from .state_table import State

if TYPE_CHECKING:
    from .roles import LayerFetch, MetadataFetch, PieceAssembly, Uploading, WebSeeding


@dataclass(eq=False)
class TorrentParts:
    """What exists once the torrent is known, whatever the phase: the metainfo (replaced when
    BEP 52 piece layers arrive), the picker (the one record of what is verified and in flight),
    the user's file priorities, and the parts that work on the torrent's pieces: assembly and
    verification, uploading, piece layers, web seeds (held as the Protocols of ``roles``: the
    facade builds them, and this module, below every part, imports none)."""

    torrent: Torrent
    picker: PiecePicker
    pieces: PieceAssembly
    uploader: Uploading
    layers: LayerFetch
    webseeds: WebSeeding
    file_priorities: list[int] = field(init=False)
    total_wanted: int = field(init=False)  # bytes of the files not skipped (pad files never count)

    def __post_init__(self) -> None:
        self.file_priorities = [0 if f.pad else 4 for f in self.torrent.files]  # (the picker's default)
        self.total_wanted = self.picker.left_bytes()

    def set_file_priorities(self, priorities: Sequence[int]) -> None:
        """Priority per file (clamped to 0..7), applied to the picker; ``SessionError`` unless
        there is one per file."""
        files = self.torrent.files
        if len(priorities) != len(files):
            raise SessionError("one priority per file is needed")
        self.file_priorities = [max(0, min(7, int(p))) for p in priorities]
        effective = [0 if f.pad else p for p, f in zip(self.file_priorities, files, strict=True)]
        self.picker.set_file_priorities(effective)
        self.total_wanted = sum(f.length for f, p in zip(files, self.file_priorities, strict=True)
                                if p > 0 and not f.pad)


@dataclass(eq=False)
class Swarm:
    """The swarm's task group and the cancel scope around it (``pause()`` and ``stop()`` cancel
    it): peers, dials, trackers, the DHT loop, LSD, web seeds and the choker live in it."""

    group: anyio.abc.TaskGroup
    scope: anyio.CancelScope


@dataclass(eq=False)
class PhaseRecord:
    """The public state and the error, carried by every phase (moved only by ``Life``'s machine)."""

    state: State = field(default=State.QUEUED, kw_only=True)
    error: str = field(default="", kw_only=True)  # why the session failed ("": it has not)


@dataclass(eq=False)
class FetchingMetadata(PhaseRecord):
    """A magnet before its info dictionary: the fetch, and its swarm while not paused."""

    metadata: MetadataFetch
    swarm: Swarm | None = None


@dataclass(eq=False)
class Loaded(PhaseRecord):
    """The torrent is known; its files are not open (before ``run()``, or after it ended)."""

    parts: TorrentParts


@dataclass(eq=False)
class Opened(Loaded):
    """The torrent's files are open (``Checking``, ``Live``, ``Paused``)."""

    storage: PieceStorage


@dataclass(eq=False)
class Checking(Opened):
    """Finding the verified pieces on disk (resume data, else a recheck)."""


@dataclass(eq=False)
class Live(Opened):
    """Checked and in the swarm: downloading or seeding."""

    swarm: Swarm = field(kw_only=True)


@dataclass(eq=False)
class Paused(Opened):
    """Checked, files open, no swarm (paused; or the swarm just ended and the files close next)."""


Phase = FetchingMetadata | Loaded  # Loaded covers Opened: Checking, Live, Paused


def swarm_group(phase: Phase) -> anyio.abc.TaskGroup | None:
    """The task group of the phase's swarm (a ``Live`` phase's, or a magnet's unpaused fetch);
    None while there is no swarm (where dials and incoming peers are refused)."""
    swarm = phase.swarm if isinstance(phase, (FetchingMetadata, Live)) else None
    return swarm.group if swarm is not None else None


def parts_of(phase: Phase) -> TorrentParts:
    """The parts of a phase whose torrent is known; ``SessionError`` before a magnet's metadata."""
    if not isinstance(phase, Loaded):
        raise SessionError("the torrent's metadata has not been received yet")
    return phase.parts


def storage_of(phase: Phase) -> PieceStorage:
    """The open files of an ``Opened`` phase (``Checking``, ``Live``, ``Paused``); ``SessionError``
    in any other."""
    if not isinstance(phase, Opened):
        raise SessionError("the torrent's files are not open")
    return phase.storage
