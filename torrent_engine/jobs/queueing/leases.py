"""The open client leases: who holds one, for how long, and which have lapsed.

Pure: the time is passed in and the ids are made by the token function it is handed. The service
saves the table (``entries``) and cancels the jobs of a lease that ended.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator

from ..model import Lease, LeaseNotFound


class LeaseTable:
    """Open leases by id, each with its time to live and when it expires."""

    def __init__(self, entries: dict[str, tuple[float, float]] | None = None,
                 new_id: Callable[[], str] = lambda: secrets.token_hex(16)) -> None:
        self._entries: dict[str, tuple[float, float]] = dict(entries or {})  # id -> (ttl, expires_at)
        self._new_id = new_id

    def __contains__(self, lease_id: object) -> bool:
        return lease_id in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._entries))

    def entries(self) -> dict[str, tuple[float, float]]:
        """A copy of the table (id -> (ttl, expires_at)), as the store saves it."""
        return dict(self._entries)

    def open(self, ttl: float, now: float) -> Lease:
        """A new lease of ``ttl`` seconds (already checked to be > 0) from ``now``."""
        lease_id = self._new_id()
        while lease_id in self._entries:
            lease_id = self._new_id()
        self._entries[lease_id] = (ttl, now + ttl)
        return Lease(id=lease_id, ttl=ttl, expires_at=now + ttl)

    def renew(self, lease_id: str, now: float) -> Lease:
        """Keep ``lease_id`` alive for another ttl from ``now``; ``LeaseNotFound`` if it is not open."""
        entry = self._entries.get(lease_id)
        if entry is None:
            raise LeaseNotFound(f"no open client lease {lease_id!r}", "client")
        ttl = entry[0]
        self._entries[lease_id] = (ttl, now + ttl)
        return Lease(id=lease_id, ttl=ttl, expires_at=now + ttl)

    def end(self, lease_id: str) -> None:
        """Forget ``lease_id``; ``LeaseNotFound`` if it is not open."""
        if self._entries.pop(lease_id, None) is None:
            raise LeaseNotFound(f"no open client lease {lease_id!r}", "client")

    def lapsed(self, now: float) -> list[str]:
        """The leases that expired at or before ``now``."""
        return [lease_id for lease_id, (_ttl, expires) in self._entries.items() if expires <= now]

    def forgive_downtime(self, now: float) -> None:
        """After a restart: the time the service was down is not held against a lease (each
        gets at least a whole ttl from ``now``)."""
        for lease_id, (ttl, expires) in list(self._entries.items()):
            self._entries[lease_id] = (ttl, max(expires, now + ttl))
