"""The rate limits every session's traffic passes: its own, its bandwidth group's, the global one.

A torrent's bytes wait for its own token bucket, then its group's, then the global bucket (a
group that does not honour the global limit skips the last). While the global limit is set and
groups exist, each group's bucket runs at its weighted share of the global limit
(``policy/bandwidth.py`` computes the shares; this shell counts each group's bytes and waits and
judges again every ``SHARE_ROUND`` seconds, on the traffic's own calls: no timer). The torrents of
no group (or of a group that no longer exists) are one more group, ``DEFAULT_GROUP``, of weight 1.
Without groups the path is the global bucket and the torrent's own, as it always was. While the
limits do not apply to the local network (``Bandwidth.set_local_limited``), a peer there (a
``local`` transfer: loopback, private, link-local addresses) passes its torrent's own bucket alone,
as libtorrent's local peer class (qBittorrent's "apply rate limit to peers on LAN" off).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import anyio

from ..policy.bandwidth import Observed, ShareRounds

__all__ = ["DEFAULT_GROUP", "SHARE_ROUND", "Bandwidth", "BandwidthGroup", "Direction", "TokenBucket"]

DEFAULT_GROUP = ""  # the torrents of no group share the global limit as one group of weight 1
SHARE_ROUND = 0.5  # seconds of traffic a round of shares judges
BLOCK = 16384  # the least a bucket lets through at once (one block), whatever its rate


class TokenBucket:
    """A token bucket limiting bytes per second; ``rate`` 0 means unlimited.

    The clock is injectable for tests; the burst is one second of traffic (at least one block).
    """

    def __init__(self, rate: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.rate = rate
        self._tokens = float(rate)
        self._stamp = clock()

    @property
    def unlimited(self) -> bool:
        """Whether the bucket lets everything through (rate 0 or less)."""
        return self.rate <= 0

    def _refill(self) -> None:
        now = self._clock()
        burst = max(float(self.rate), float(BLOCK))
        self._tokens = min(burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def set_rate(self, rate: int) -> None:
        """Go on at ``rate`` (0: unlimited): what was earned at the old rate is kept, up to the new
        burst; a debt is kept up to one ``SHARE_ROUND`` at the new rate (a group slowed down does
        not wait for seconds for what it took before)."""
        if rate == self.rate:
            return
        if self.unlimited:
            self.rate, self._tokens, self._stamp = rate, float(rate), self._clock()
            return
        self._refill()
        self.rate = rate
        if rate > 0:
            self._tokens = min(max(float(rate), float(BLOCK)), max(self._tokens, -rate * SHARE_ROUND))

    def try_consume(self, amount: int) -> float:
        """Take ``amount`` tokens; returns how long to wait first (0.0 = go now)."""
        if self.unlimited:
            return 0.0
        self._refill()
        self._tokens -= amount
        if self._tokens >= 0:
            return 0.0
        return -self._tokens / self.rate

    async def consume(self, amount: int) -> None:
        """Wait until ``amount`` bytes may pass."""
        delay = self.try_consume(amount)
        if delay > 0:
            await anyio.sleep(delay)


@dataclass(frozen=True, slots=True)
class BandwidthGroup:
    """A named bandwidth group: its own limits (bytes/s, 0: none), its weight in the global
    limit's shares (>= 1) and whether its traffic passes the global limit at all."""

    name: str
    weight: int = 1
    download_limit: int = 0
    upload_limit: int = 0
    honors_global: bool = True


class _Channel:
    """One group's traffic in one direction: its bucket and what it did this round."""

    __slots__ = ("bucket", "held_back", "honors_global", "limit", "nbytes", "weight")

    def __init__(self, weight: int, limit: int, honors_global: bool, clock: Callable[[], float]) -> None:
        self.weight = weight
        self.limit = limit
        self.honors_global = honors_global
        self.bucket = TokenBucket(limit, clock=clock)
        self.nbytes = 0
        self.held_back = False


class Direction:
    """The limits of one direction (download or upload) over every session."""

    def __init__(self, rate: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.global_limit = TokenBucket(rate, clock=clock)
        self._channels: dict[str, _Channel] = {}  # none: no groups
        self._rounds: ShareRounds[str] = ShareRounds()
        self._round_at = clock()
        self.local_free = False  # whether a local peer's bytes pass their torrent's own bucket alone

    def set_global(self, bucket: TokenBucket) -> None:
        """The global limit's bucket (a new one: the shares start over)."""
        self.global_limit = bucket
        self._start_round()

    def set_groups(self, groups: Iterable[tuple[str, int, int, bool]]) -> None:
        """The groups as (name, weight, own limit, honours the global limit); none: no groups."""
        channels = {name: _Channel(weight, limit, honors, self._clock)
                    for name, weight, limit, honors in groups}
        if channels and DEFAULT_GROUP not in channels:
            channels[DEFAULT_GROUP] = _Channel(1, 0, True, self._clock)
        self._channels = channels
        self._rounds = ShareRounds()
        self._start_round()

    def _channel(self, group: str) -> _Channel | None:
        channels = self._channels
        if not channels:
            return None
        found = channels.get(group)
        return found if found is not None else channels[DEFAULT_GROUP]

    def _sharing(self) -> bool:
        return bool(self._channels) and not self.global_limit.unlimited

    def _start_round(self) -> None:
        """Everyone as if held back: the weighted shares of the global limit (or, without one,
        each group's own limit)."""
        self._round_at = self._clock()
        for ch in self._channels.values():
            ch.nbytes, ch.held_back = 0, True
        self._apply(1.0)

    def _apply(self, elapsed: float) -> None:
        sharing = self._sharing()
        observed = {name: Observed(ch.weight, ch.limit, ch.nbytes, ch.held_back, ch.bucket.rate)
                    for name, ch in self._channels.items() if ch.honors_global}
        rates = self._rounds.rates(self.global_limit.rate, observed, elapsed) if sharing and observed else {}
        for name, ch in self._channels.items():
            ch.bucket.set_rate(rates.get(name, ch.limit))
            ch.nbytes, ch.held_back = 0, False

    def _maybe_round(self) -> None:
        now = self._clock()
        elapsed = now - self._round_at
        if elapsed >= SHARE_ROUND:
            self._round_at = now
            self._apply(elapsed)

    def limited(self, group: str, own: TokenBucket, local: bool = False) -> bool:
        """Whether a transfer of a torrent of ``group`` with its own bucket ``own`` (with a peer on
        the local network: ``local``) may have to wait."""
        if local and self.local_free:
            return not own.unlimited
        if not (self.global_limit.unlimited and own.unlimited):
            return True
        ch = self._channel(group)
        return ch is not None and not ch.bucket.unlimited

    def admit(self, group: str, own: TokenBucket, amount: int, local: bool = False) -> float:
        """Take ``amount`` bytes of a torrent of ``group`` (its own bucket ``own``; with a peer
        on the local network: ``local``) from every bucket it passes; how long to wait before
        they go (0.0: now). Each bucket keeps its rate over time: the wait is the longest any of
        them asks."""
        delay = own.try_consume(amount) if not own.unlimited else 0.0
        if local and self.local_free:
            return delay
        ch = self._channel(group)
        if ch is not None:
            if self._sharing():
                self._maybe_round()
            ch.nbytes += amount
            held = ch.bucket.try_consume(amount)
            if held > 0:
                ch.held_back = True
                delay = max(delay, held)
            if not ch.honors_global:
                return delay
        if not self.global_limit.unlimited:
            delay = max(delay, self.global_limit.try_consume(amount))
        return delay

    def step(self, group: str, own: TokenBucket, most: int, local: bool = False) -> int:
        """The bytes one transfer of a torrent of ``group`` (its own bucket ``own``; with a peer on
        the local network: ``local``) should take at most: ``most``, or, while a limit applies,
        one second of the slowest bucket it passes (at least one block). A limited transfer goes
        out in steps of about a second, not in a burst after a wait of many seconds."""
        rates = [] if own.unlimited else [own.rate]
        if not (local and self.local_free):
            ch = self._channel(group)
            if ch is not None and not ch.bucket.unlimited:
                rates.append(ch.bucket.rate)
            if (ch is None or ch.honors_global) and not self.global_limit.unlimited:
                rates.append(self.global_limit.rate)
        if not rates:
            return most
        return min(most, max(BLOCK, min(rates)))

    async def consume(self, group: str, own: TokenBucket, amount: int, local: bool = False) -> None:
        """Wait until ``amount`` bytes of a torrent of ``group`` (its own bucket ``own``; with a
        peer on the local network: ``local``) may pass."""
        delay = self.admit(group, own, amount, local)
        if delay > 0:
            await anyio.sleep(delay)

    def rates(self) -> dict[str, int]:
        """Each group's bucket rate now (bytes/s, 0: none): its share of the global limit while
        that binds, else its own limit."""
        return {name: ch.bucket.rate for name, ch in self._channels.items()}


class Bandwidth:
    """Both directions' limits, and the groups (``set_groups``) both follow."""

    def __init__(self, download: int = 0, upload: int = 0, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.download = Direction(download, clock=clock)
        self.upload = Direction(upload, clock=clock)
        self.groups: tuple[BandwidthGroup, ...] = ()

    def set_local_limited(self, limited: bool) -> None:
        """Whether the global and group limits apply to peers on the local network too (else
        their bytes pass their torrent's own limit alone)."""
        self.download.local_free = self.upload.local_free = not limited

    def set_groups(self, groups: Iterable[BandwidthGroup]) -> None:
        """Put these groups in force (replacing those before; none: no groups)."""
        groups = tuple(groups)
        for g in groups:
            if g.weight < 1 or g.download_limit < 0 or g.upload_limit < 0:
                raise ValueError(f"bandwidth group {g.name!r}: weight must be >= 1 and limits >= 0")
        self.groups = groups
        self.download.set_groups((g.name, g.weight, g.download_limit, g.honors_global) for g in self.groups)
        self.upload.set_groups((g.name, g.weight, g.upload_limit, g.honors_global) for g in self.groups)
