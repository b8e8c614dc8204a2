"""What every part of a session may read and call whatever the phase, in one small frozen object
(``Session.context``), so the parts need not reach into the facade: the torrent's fixed facts
(config, events, info-hash), the peer pool, the connected peers, the callbacks by which a part
tells the torrent something (``ban`` an address that sent bad data, ``fail`` the torrent on an
error of its own, e.g. its disk) and the run (``Run``, ``lifecycle.Life``): its phase (what
exists now: the torrent, the picker, the open files, the swarm), its state, its task group, the
shared resources it borrows (``shared``: a standalone session makes its own when it starts), a
stop asked for, and completion once a piece passed.

Each part declares, as a Protocol in its own module, what else it needs of the torrent (its
``...Host``, or a Protocol of just what it calls of a sibling part); the session is given as that
and no more. This module is the bottom of the package: it imports no part (the parts the phases
hold are typed by ``roles``), so every part can import it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import anyio.abc

from .. import events as ev
from ..config import Config
from ..engine.shared import TokenBucket
from ..errors import TorrentEngineError
from ..formats.magnet import Magnet
from .peer_pool import PeerPool, PeerSource
from .phases import Loaded, parts_of, storage_of, swarm_group
from .state_table import State

if TYPE_CHECKING:
    from ..engine.shared import SharedResources
    from ..storage import PieceStorage
    from .peer import PeerState
    from .phases import Phase, TorrentParts

Address = tuple[str, int]
# addresses heard of, and from where, into the pool (Session.add_peers)
AddPeers = Callable[[Iterable[Address], PeerSource], None]


class Flag(Protocol):
    """Something that is set once and stays set (``lifecycle.LazyEvent``), as a part reads it."""

    def is_set(self) -> bool:
        """Whether it was set."""


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

    @property
    def finished(self) -> Flag:
        """Set once ``run()`` has ended (or a stop came before it ran)."""

    async def maybe_complete(self) -> None:
        """A piece passed: complete the torrent once every wanted piece is in."""

    def wanted_changed(self) -> None:
        """What is wanted changed (a priority, a piece lost): a seed may be downloading again."""

    def check_again(self) -> None:
        """The data cannot be trusted (seed mode found a piece that fails): end the swarm and
        check the whole torrent, then go on from what the check finds."""


@dataclass(slots=True)
class Totals:
    """Payload bytes moved in all (the one record of them; resume data keeps those moved, the
    job's record every one), and when a peer with every piece was last connected."""

    downloaded: int = 0
    uploaded: int = 0
    wasted: int = 0  # received but not needed (endgame duplicates, pieces given back)
    corrupt: int = 0  # received in pieces that failed their hash check (their whole length)
    # wall-clock time (time.time()) a peer that had every piece left (0.0: none in this run);
    # one connected now is ``seen_complete``'s "now"
    seed_left_at: float = 0.0


def seen_complete(totals: Totals, peers: Iterable[PeerState], now: float) -> float:
    """When the swarm last showed a whole copy (libtorrent's ``last_seen_complete``, qBittorrent's
    "last seen complete"): ``now`` while a connected peer has every piece, else when the last
    such peer left; 0.0 when none was seen in this run. (Ourselves complete does not count.)"""
    return now if any(p.is_seed for p in peers) else totals.seed_left_at


@dataclass(slots=True)
class Limits:
    """This torrent's own rate limits (bytes/s, 0 = none), on top of the shared ones; replaced
    whole by ``Session.set_rate_limits``; and the bandwidth group its traffic passes
    (``Session.set_bandwidth_group``, "": none)."""

    download: TokenBucket = field(default_factory=lambda: TokenBucket(0))
    upload: TokenBucket = field(default_factory=lambda: TokenBucket(0))
    group: str = ""


@dataclass(frozen=True, slots=True, eq=False)
class TorrentContext:
    """The torrent's shared facts and callbacks, the same object for the session's whole life."""

    config: Config
    events: ev.EventBus
    info_hash: bytes  # the 20 bytes peers know the torrent by
    info_hash_hex: str  # the same in hex (as events carry it)
    magnet: Magnet | None  # the magnet link it was added by (its trackers, name, selected files)
    save_path: Path
    totals: Totals  # bytes moved in all (the parts count them here)
    limits: Limits  # its own rate limits
    pool: PeerPool  # every address heard of, bans (the one record of them), dial back-off
    peers: dict[Address, PeerState]  # the connected peers by address (the peer handler keeps it)
    ban: Callable[[Address], None]  # never again: close it if connected (bad data)
    fail: Callable[[TorrentEngineError], None]  # the torrent itself failed: error state, run ends
    run: Run  # its phase and state, task group, shared resources, a stop asked for, completion

    @property
    def name(self) -> str:
        """The torrent's name (a magnet's display name, else its info-hash, until the metadata)."""
        phase = self.run.phase
        if isinstance(phase, Loaded):
            return phase.parts.torrent.name
        if self.magnet is not None and self.magnet.display_name:
            return self.magnet.display_name
        return self.info_hash_hex

    @property
    def has_metadata(self) -> bool:
        """Whether the info dictionary is known."""
        return isinstance(self.run.phase, Loaded)

    @property
    def private(self) -> bool:
        """Whether the torrent is private (BEP 27: no DHT, PEX or LSD); not known before the metadata."""
        phase = self.run.phase
        return isinstance(phase, Loaded) and phase.parts.torrent.private

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
