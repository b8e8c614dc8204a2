"""What every part of a session may read and call whatever the phase, in one small frozen object
(``Session.context``), so the parts need not reach into the facade: the torrent's fixed facts
(config, events, info-hash), the peer pool, the connected peers, the callbacks by which a part
tells the torrent something (``ban`` an address that sent bad data, ``fail`` the torrent on an
error of its own, e.g. its disk) and the run (``Run``, ``lifecycle.Life``): its phase (what
exists now: the torrent, the picker, the open files, the swarm), its state, its task group, the
shared resources it borrows (``shared``: a standalone session makes its own when it starts), a
stop asked for, and completion once a piece passed.

Each part declares, as a Protocol in its own module, what else it needs of the torrent (its
``...Host``); the session is given as that and no more.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import anyio.abc

from .. import events as ev
from ..config import Config
from ..errors import TorrentEngineError
from ..session_state import State
from .peer_pool import PeerPool
from .phases import parts_of, storage_of, swarm_group

if TYPE_CHECKING:
    from ..shared import SharedResources
    from ..storage import PieceStorage
    from .peer import PeerState
    from .phases import Phase, TorrentParts

Address = tuple[str, int]


class Run(Protocol):
    """The torrent's run (``lifecycle.Life``) as the parts see it."""

    @property
    def phase(self) -> Phase:
        """What the torrent holds now (``phases``; only the run moves it on)."""

    @property
    def state(self) -> State:
        """The torrent's public state (only the run moves it)."""

    @property
    def shared(self) -> SharedResources | None:
        """The shared resources borrowed (listen socket, peer id, DHT, limits), once there are."""

    @property
    def tg(self) -> anyio.abc.TaskGroup | None:
        """The run's own task group (verification, writes' follow-ups), while ``run()`` runs."""

    @property
    def stop_requested(self) -> bool:
        """Whether a stop was asked for (new peers are refused)."""

    async def maybe_complete(self) -> None:
        """A piece passed: complete the torrent once every wanted piece is in."""


@dataclass(frozen=True, slots=True, eq=False)
class TorrentContext:
    """The torrent's shared facts and callbacks, the same object for the session's whole life."""

    config: Config
    events: ev.EventBus
    info_hash: bytes  # the 20 bytes peers know the torrent by
    info_hash_hex: str  # the same in hex (as events carry it)
    pool: PeerPool  # every address heard of, bans (the one record of them), dial back-off
    peers: dict[Address, PeerState]  # the connected peers by address (the peer handler keeps it)
    ban: Callable[[Address], None]  # never again: close it if connected (bad data)
    fail: Callable[[TorrentEngineError], None]  # the torrent itself failed: error state, run ends
    run: Run  # its phase and state, task group, shared resources, a stop asked for, completion

    # what the run holds now, read from it (the run is their one record)
    @property
    def phase(self) -> Phase:
        """What the torrent holds now (see ``phases``)."""
        return self.run.phase

    @property
    def state(self) -> State:
        """The torrent's public state."""
        return self.run.state

    @property
    def shared(self) -> SharedResources | None:
        """The shared resources the torrent borrows, once it has them."""
        return self.run.shared

    @property
    def parts(self) -> TorrentParts:
        """The torrent's parts (metainfo, picker, pieces, uploader, layers, web seeds) once it
        is known; ``SessionError`` before a magnet's metadata has come."""
        return parts_of(self.run.phase)

    @property
    def storage(self) -> PieceStorage:
        """The open files (``SessionError`` while they are not open)."""
        return storage_of(self.run.phase)

    @property
    def swarm(self) -> anyio.abc.TaskGroup | None:
        """The swarm's task group (None while there is no swarm: dials and peers are refused)."""
        return swarm_group(self.run.phase)
