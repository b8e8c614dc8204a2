"""The changes asked while the job service starts (its records read, its torrents loading: the
daemon answers at once) wait here until it has started — an *arr app's grab sent right after a
restart is made, not refused — at most ``START_WAIT`` seconds, then ``ServiceStarting``."""

from __future__ import annotations

from collections.abc import Callable

import anyio

from .model import ServiceStarting

__all__ = ["START_WAIT", "StartWait"]

START_WAIT = 60.0  # seconds a change asked while the service starts waits for the start


class StartWait:
    """Where the changes wait for the start; they go on in the order they came."""

    def __init__(self) -> None:
        self._event: anyio.Event | None = None  # (made by the first change that waits)

    async def wait(self, starting: Callable[[], bool]) -> None:
        """Wait while ``starting()`` (a start that fails ends the wait too: it is looked at every
        0.5 s), at most ``START_WAIT`` seconds, then ``ServiceStarting``."""
        if not starting():
            return
        if self._event is None:
            self._event = anyio.Event()
        with anyio.move_on_after(START_WAIT):
            while starting():
                with anyio.move_on_after(0.5):
                    await self._event.wait()
        if starting():
            raise ServiceStarting(f"the job service is still starting after {START_WAIT:.0f} s (its torrents "
                                  "are being loaded): ask again in a moment")

    def started(self) -> None:
        """The service has started: the changes waiting go on."""
        if self._event is not None:
            self._event.set()
            self._event = None
