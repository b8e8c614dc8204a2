"""The daemon's stop asked by a client: our ``POST /api/shutdown``, qBittorrent's ``app/shutdown``
and Transmission's ``session-close`` (an admin's), as those daemons stop when asked. The daemon
gives the hook, the same stop as its SIGTERM's (the jobs saved, the API's answer sent first); an
API that something else serves has no daemon to stop and says so."""

from __future__ import annotations

from collections.abc import Callable

from ..jobs import JobConflict

__all__ = ["DaemonStop"]


class DaemonStop:
    """Asks the daemon to stop (``hook``: its stop, told which door asked; None: refused)."""

    def __init__(self, hook: Callable[[str], object] | None = None) -> None:
        self._hook = hook

    def __call__(self, door: str) -> None:
        """Stop the daemon, asked through ``door``; ``JobConflict`` when there is none to stop."""
        if self._hook is None:
            raise JobConflict("this API is not served by torrent-engine daemon: there is no daemon to stop")
        self._hook(door)
