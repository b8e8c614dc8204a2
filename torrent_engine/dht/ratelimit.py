"""Per-source-address token buckets, so the node cannot be used to amplify a flood (sans-I/O)."""

from __future__ import annotations

from collections import OrderedDict

__all__ = ["RateLimiter"]


class RateLimiter:
    """``allow(host, now)`` takes one token from ``host``'s bucket (``rate`` per second, at most
    ``burst``). At most ``max_hosts`` buckets are kept; the least recently used go first."""

    def __init__(self, rate: float = 20.0, burst: float = 40.0, max_hosts: int = 10_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_hosts = max_hosts
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self.dropped = 0

    def allow(self, host: str, now: float) -> bool:
        tokens, last = self._buckets.pop(host, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate) if now > last else tokens
        ok = tokens >= 1.0
        if ok:
            tokens -= 1.0
        else:
            self.dropped += 1
        self._buckets[host] = (tokens, max(now, last))
        while len(self._buckets) > self.max_hosts:
            self._buckets.popitem(last=False)
        return ok
