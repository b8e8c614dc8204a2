"""Which sessions start their swarm (trackers, DHT and LSD announced to; peers dialed from then
on): for the tests that a job the queue holds never does."""

from __future__ import annotations

import anyio.abc
import pytest

from torrent_engine.session.announce import Announcer


def swarms_started(monkeypatch: pytest.MonkeyPatch, *, by: str = "name") -> list[str]:
    """The sessions whose swarm starts, in order, from now on: each by its torrent's ``name`` or
    its ``info_hash_hex`` (``by``)."""
    started: list[str] = []
    start = Announcer.start

    def noted(self: Announcer, swarm: anyio.abc.TaskGroup) -> None:
        started.append(getattr(self._ctx, by))
        start(self, swarm)

    monkeypatch.setattr(Announcer, "start", noted)
    return started
