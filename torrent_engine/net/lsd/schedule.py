"""When to announce which torrents over LSD (sans-I/O: the caller passes ``now``).

BEP 14: each torrent is announced every 5 minutes while it runs, and a client sends no more
than about one announce a minute; several info-hashes share one announce. A torrent that stops
and starts again within 5 minutes is not announced again before its 5 minutes are up, so
pausing and resuming cannot flood the group (at most one announce per start).
"""

from __future__ import annotations

__all__ = ["ANNOUNCE_INTERVAL", "MESSAGE_BURST", "MESSAGE_INTERVAL", "AnnounceSchedule"]

ANNOUNCE_INTERVAL = 5 * 60.0  # BEP 14: announce each torrent every 5 minutes
MESSAGE_INTERVAL = 60.0  # BEP 14: no more than one announce per minute (in the long run) ...
MESSAGE_BURST = 3  # ... after a short burst, so torrents added together are announced at once


class AnnounceSchedule:
    """Which info-hashes are due, batched into announces under a global message budget."""

    def __init__(self, *, interval: float = ANNOUNCE_INTERVAL, message_interval: float = MESSAGE_INTERVAL,
                 burst: int = MESSAGE_BURST, per_message: int = 20) -> None:
        self.interval = interval
        self.message_interval = message_interval
        self.burst = burst
        self.per_message = per_message
        self._due: dict[bytes, float] = {}  # running torrents: when each is next announced
        self._sent: dict[bytes, float] = {}  # when each torrent was last announced
        self._tokens = float(burst)
        self._stamp: float | None = None

    def __contains__(self, info_hash: object) -> bool:
        return info_hash in self._due

    def __len__(self) -> int:
        return len(self._due)

    def add(self, info_hash: bytes, now: float) -> None:
        """A torrent starts: announce it now, or when its last announce is ``interval`` old."""
        for key in [k for k, t in self._sent.items() if now - t >= self.interval and k not in self._due]:
            del self._sent[key]  # forget stopped torrents whose interval is over
        last = self._sent.get(info_hash)
        self._due[info_hash] = now if last is None else last + self.interval

    def remove(self, info_hash: bytes) -> None:
        """A torrent stops: it is no longer announced (its last announce time is kept)."""
        self._due.pop(info_hash, None)

    def _refill(self, now: float) -> None:
        if self._stamp is not None and now > self._stamp:
            self._tokens = min(float(self.burst), self._tokens + (now - self._stamp) / self.message_interval)
        self._stamp = now if self._stamp is None else max(self._stamp, now)

    def due(self, now: float) -> list[bytes]:
        """The info-hashes to put in one announce now (marked as announced); [] if none is due or
        the message budget is spent."""
        self._refill(now)
        ready = sorted((t, h) for h, t in self._due.items() if t <= now)
        if not ready or self._tokens < 1.0:
            return []
        self._tokens -= 1.0
        batch = [h for _, h in ready[: self.per_message]]
        for info_hash in batch:
            self._due[info_hash] = now + self.interval
            self._sent[info_hash] = now
        return batch

    def next_time(self, now: float) -> float | None:
        """When ``due`` may next return something (None: no torrent runs)."""
        if not self._due:
            return None
        self._refill(now)
        earliest = min(self._due.values())
        if self._tokens >= 1.0:
            return earliest
        return max(earliest, now + (1.0 - self._tokens) * self.message_interval)
