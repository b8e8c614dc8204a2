"""Bandwidth groups' shares of a global rate limit: weighted max-min fair shares (sans-I/O).

When the global limit binds, the groups that want more share it in proportion to their weights
(a group of weight 3 gets three times a group of weight 1 while both want more); a group that
wants less than its share gets what it wants and leaves the rest to the others. What a group
"wants" is judged from its rounds of traffic: a group held back by its share (or that used nearly
all of it) in one of the last ``HELD_ROUNDS`` rounds wants more than it got (as much as its own
limit lets it); one that was not, what it used, with ``HEADROOM`` to grow, coming down by at most
``1 - KEEP`` a round (what it leaves goes to the groups held back). The shell
(``engine/bandwidth.py``) counts the bytes and the waits, and puts the rates computed here into
its token buckets.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Set
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["FULL_USE", "HEADROOM", "HELD_ROUNDS", "KEEP", "MIN_RATE", "Claim", "Observed", "ShareRounds",
           "fair_shares", "held", "share_rates", "wanted"]

K = TypeVar("K", bound=Hashable)

HEADROOM = 1.25  # a group not held back may take this much more than it used, until judged again
# a group that used this much of the rate it was given counts as held back although it never had
# to wait (its transfers were late to ask, e.g. on a busy machine): it wants more, not less
FULL_USE = 0.9
# a group held back in one of this many rounds before still wants more (a round of a busy
# machine's late reads is not taken for a group that wants less)
HELD_ROUNDS = 4
# a group that wants less is given no less than this share of its last round's rate: it comes
# down over a few rounds (what it leaves meanwhile goes to the groups held back, as ``room``)
KEEP = 0.8
MIN_RATE = 16 * 1024  # bytes/s a quiet group may start at before the next round (one block a second)
_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class Claim:
    """What one group asks of the capacity: its weight (>= 1) and the rate it wants (bytes/s;
    ``math.inf``: all it can get)."""

    weight: int
    want: float


@dataclass(frozen=True, slots=True)
class Observed:
    """One group's traffic over a round: its weight, its own limit (bytes/s, 0: none), the bytes
    it moved, whether its share held it back (a transfer had to wait for it), and the rate it was
    given for the round (bytes/s, 0: none)."""

    weight: int
    limit: int
    nbytes: int
    held_back: bool
    given: int = 0


def fair_shares(capacity: float, claims: Mapping[K, Claim]) -> dict[K, float]:
    """Split ``capacity`` among ``claims`` by weight, no group above what it wants (water-filling:
    the groups that want less than their weighted share get what they want, the rest is split
    again among the others by weight). Every group is in the answer (0.0 for one that wants nothing).
    ``ValueError`` for a weight below 1, a negative want or a negative capacity."""
    if capacity < 0 or math.isnan(capacity):
        raise ValueError(f"capacity must be >= 0, got {capacity!r}")
    for key, claim in claims.items():
        if claim.weight < 1:
            raise ValueError(f"weight of {key!r} must be >= 1, got {claim.weight!r}")
        if not claim.want >= 0:
            raise ValueError(f"want of {key!r} must be >= 0, got {claim.want!r}")
    shares = dict.fromkeys(claims, 0.0)
    open_ = {k: c for k, c in claims.items() if c.want > 0}
    left = float(capacity)
    while open_ and left > _EPSILON:
        weights = sum(c.weight for c in open_.values())
        # the groups that want no more than their weighted share of what is left: given what they want
        filled = [k for k, c in open_.items() if c.want - shares[k] <= left * c.weight / weights]
        if not filled:
            for k, c in open_.items():
                shares[k] += left * c.weight / weights
            break
        for k in filled:
            left -= claims[k].want - shares[k]
            shares[k] = claims[k].want
            del open_[k]
    return shares


def held(observed: Observed, elapsed: float) -> bool:
    """Whether a group wanted more than it was given in a round of ``elapsed`` seconds: a transfer
    had to wait for its share, or it used ``FULL_USE`` of the rate it was given."""
    used = observed.nbytes / max(elapsed, _EPSILON)
    return observed.held_back or (observed.given > 0 and used >= FULL_USE * observed.given)


def wanted(observed: Observed, elapsed: float, *, held_lately: bool = False) -> Claim:
    """What a group wants after a round of ``elapsed`` seconds: held back (``held``, this round or
    ``held_lately``), all it can get (its own limit, if any); else what it used, with
    ``HEADROOM`` to grow, and no less than ``KEEP`` of what it was given."""
    if held_lately or held(observed, elapsed):
        want = math.inf
    else:
        want = max(observed.nbytes / max(elapsed, _EPSILON) * HEADROOM, KEEP * observed.given)
    if observed.limit > 0:
        want = min(want, float(observed.limit))
    return Claim(observed.weight, want)


def share_rates(capacity: int, observed: Mapping[K, Observed], elapsed: float,
                held_lately: Set[K] = frozenset()) -> dict[K, int]:
    """The rate (bytes/s, >= 1) each group may move in the next round, of a global limit of
    ``capacity`` bytes/s, from what each did in the round of ``elapsed`` seconds that ended.

    A group given what it wants keeps ``HEADROOM`` above what it used; until it uses that room,
    the room goes to the groups held back, by weight (no capacity sits idle while a group wants
    more; the global limit holds the total if the room is taken back). A quiet group may still
    start at ``MIN_RATE`` (less only when its own limit or a sixteenth of the capacity is less).
    ``held_lately``: the groups held back in one of the ``HELD_ROUNDS`` rounds before
    (``ShareRounds`` keeps them)."""
    claims = {k: wanted(o, elapsed, held_lately=k in held_lately) for k, o in observed.items()}
    shares = fair_shares(capacity, claims)
    seconds = max(elapsed, _EPSILON)
    short = {k for k, share in shares.items() if share < claims[k].want * (1 - 1e-9)}
    room = sum(max(0.0, shares[k] - observed[k].nbytes / seconds) for k in shares if k not in short)
    weights = sum(observed[k].weight for k in short)
    rates: dict[K, int] = {}
    for k, share in shares.items():
        if k in short and room > 0:
            share += room * observed[k].weight / weights
            if observed[k].limit > 0:
                share = min(share, float(observed[k].limit))
        floor = min(MIN_RATE, max(1, capacity // 16), observed[k].limit or MIN_RATE)
        rates[k] = max(1, math.floor(share), floor)
    return rates


class ShareRounds(Generic[K]):
    """The rounds of one direction's shares: ``share_rates`` over each round's traffic, with the
    rounds since each group was last held back (kept here, so that a group held back lately
    still wants more)."""

    def __init__(self) -> None:
        self._since_held: dict[K, int] = {}

    def rates(self, capacity: int, observed: Mapping[K, Observed], elapsed: float) -> dict[K, int]:
        """The rates of the next round (see ``share_rates``)."""
        lately = {k for k in observed if self._since_held.get(k, HELD_ROUNDS) < HELD_ROUNDS}
        out = share_rates(capacity, observed, elapsed, lately)
        self._since_held = {k: 0 if held(o, elapsed) else self._since_held.get(k, HELD_ROUNDS) + 1
                            for k, o in observed.items()}
        return out
