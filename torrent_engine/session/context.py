"""What every part of a session may read and call whatever the phase, in one small frozen object
(``Session.context``), so the parts need not reach into the facade's private state: the peer pool,
the connected peers, and the callbacks by which a part tells the torrent something (``ban`` an
address that sent bad data, ``fail`` the torrent on an error of its own, e.g. its disk) and the
run (``Run``: its task group, a stop asked for, completion once a piece passed). The
shared resources are not in it: a standalone session makes its own when it starts
(``Session.shared``, owned by ``lifecycle.Life``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import anyio.abc

from ..errors import TorrentEngineError
from .peer_pool import PeerPool

if TYPE_CHECKING:
    from .peer import PeerState

Address = tuple[str, int]


class Run(Protocol):
    """The torrent's run (``lifecycle.Life``) as the parts see it."""

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

    pool: PeerPool  # every address heard of, bans (the one record of them), dial back-off
    peers: dict[Address, PeerState]  # the connected peers by address (the peer handler keeps it)
    ban: Callable[[Address], None]  # never again: close it if connected (bad data)
    fail: Callable[[TorrentEngineError], None]  # the torrent itself failed: error state, run ends
    run: Run  # its task group while it runs, whether a stop was asked for, completion
