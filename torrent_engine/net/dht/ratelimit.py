"""Token buckets per source address (packets, and reply bytes per source and in total), so the
node cannot be used to amplify a flood (sans-I/O)."""

from __future__ import annotations

from collections import OrderedDict

__all__ = ["ByteLimiter", "RateLimiter"]


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
        """Take one token from ``host``'s bucket; False (and counted as dropped) when it is empty."""
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


class ByteLimiter:
    """Bytes of replies per second, per source and in total, so neither one spoofed source nor
    a flood from many addresses can make the node send more than ``total_rate`` bytes a second.

    ``allow(host, nbytes, now)`` takes ``nbytes`` from ``host``'s bucket (``rate`` bytes per
    second, at most ``burst``) and from the shared bucket (``total_rate``, ``total_burst``), or
    from neither when either lacks them. At most ``max_hosts`` per-source buckets are kept."""

    def __init__(self, rate: float = 2048.0, burst: float = 8192.0, total_rate: float = 128 * 1024.0,
                 total_burst: float = 256 * 1024.0, max_hosts: int = 10_000) -> None:
        if min(rate, burst, total_rate, total_burst) <= 0:
            raise ValueError("byte limits must be positive")
        self.rate = rate
        self.burst = burst
        self.total_rate = total_rate
        self.total_burst = total_burst
        self.max_hosts = max_hosts
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._total = (total_burst, 0.0)
        self._total_started = False
        self.dropped = 0
        self.dropped_bytes = 0

    def allow(self, host: str, nbytes: int, now: float) -> bool:
        """Take ``nbytes`` from ``host``'s bucket and the shared one; False when either lacks them."""
        tokens, last = self._buckets.pop(host, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate) if now > last else tokens
        total, total_last = self._total if self._total_started else (self.total_burst, now)
        self._total_started = True
        if now > total_last:
            total = min(self.total_burst, total + (now - total_last) * self.total_rate)
        ok = tokens >= nbytes and total >= nbytes
        if ok:
            tokens -= nbytes
            total -= nbytes
        else:
            self.dropped += 1
            self.dropped_bytes += nbytes
        self._buckets[host] = (tokens, max(now, last))
        self._total = (total, max(now, total_last))
        while len(self._buckets) > self.max_hosts:
            self._buckets.popitem(last=False)
        return ok
