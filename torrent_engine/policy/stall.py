"""Why a download is not moving: the session feeds what it knows about its swarm once a second,
and after a grace period without a byte of progress this says why, in words a user can act on.

Sans-I/O: the clock is passed in; nothing here reads a socket or a file.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass


class StallReason(enum.StrEnum):
    """What keeps a download from progressing."""

    NO_PEER_SOURCES = "no_peer_sources"  # no tracker, no DHT, no peer given, nobody in the pool
    NO_PEERS_FOUND = "no_peers_found"  # sources exist but have handed out no peer yet
    TRACKER_ERRORS = "tracker_errors"  # the trackers fail and nothing else gave a peer
    NONE_REACHABLE = "none_reachable"  # peers known, none answers
    ENCRYPTION_REFUSED = "encryption_refused"  # every peer failed on the encryption policy
    ALL_BANNED = "all_banned"  # every known peer was banned (sent data that failed its hash)
    NO_PIECE_LAYERS = "no_piece_layers"  # v2: piece hashes unknown, no peer answers hash requests
    NO_PEER_HAS_PIECES = "no_peer_has_pieces"  # connected, but nobody has what is missing
    NOTHING_ARRIVES = "nothing_arrives"  # connected peers that have pieces, but no data comes
    WEB_SEEDS_FAILING = "web_seeds_failing"  # no peer, and the web seeds fail (or were given up)


@dataclass(frozen=True, slots=True)
class SwarmFacts:
    """What a session knows about its swarm at one moment."""

    sources: int  # peer sources configured: trackers, the DHT, peers given by the user
    known: int  # addresses in the peer pool
    connected: int
    failed: int  # known peers whose every connection attempt failed so far
    encryption_refused: int  # of those, the ones that failed on the encryption policy
    banned: int
    peers_with_wanted: int  # connected peers that have at least one piece we still want
    tracker_errors: tuple[str, ...] = ()  # the last error of each failing tracker
    fetching_metadata: bool = False
    # v2 (BEP 52): files whose piece layer is still unknown, so their pieces cannot be verified
    # (and are not requested), and what became of the hash requests sent for them
    piece_layers_missing: int = 0
    hash_requests_sent: int = 0
    hash_requests_failed: int = 0  # rejected or unanswered
    web_seeds: int = 0  # BEP 19 web seeds in use (not given up on, not banned)
    web_seed_errors: tuple[str, ...] = ()  # "url: error" of each failing or given-up web seed


@dataclass(frozen=True, slots=True)
class Stall:
    """A download that has not progressed for ``seconds``, and why."""

    reason: StallReason
    message: str
    seconds: float


def diagnose(facts: SwarmFacts) -> tuple[StallReason, str]:
    """The most specific reason the facts support."""
    what = "the metadata" if facts.fetching_metadata else "the missing pieces"
    if facts.connected == 0 and (facts.web_seeds or (facts.web_seed_errors and facts.known == facts.banned)):
        # a web seed is a source of its own, not a peer: say what it does
        if facts.web_seed_errors:
            errors = "; ".join(facts.web_seed_errors)
            return StallReason.WEB_SEEDS_FAILING, f"no peers; web seeds fail: {errors}"
        return StallReason.NOTHING_ARRIVES, f"no peers; {facts.web_seeds} web seeds, none sends {what}"
    if facts.connected == 0:
        if facts.known == 0:
            if facts.sources == 0:
                return StallReason.NO_PEER_SOURCES, (
                    "no peer sources: no tracker, the DHT is off and no peer was given")
            if facts.tracker_errors:
                errors = "; ".join(facts.tracker_errors)
                return StallReason.TRACKER_ERRORS, f"no peers; tracker errors: {errors}"
            return StallReason.NO_PEERS_FOUND, "no peers found yet"
        if facts.banned >= facts.known:
            return StallReason.ALL_BANNED, f"all {facts.known} known peers are banned (they sent bad data)"
        if facts.encryption_refused and facts.encryption_refused >= facts.failed:
            return StallReason.ENCRYPTION_REFUSED, (
                f"{facts.encryption_refused} of {facts.known} peers refused for encryption "
                "(the encryption policy does not match theirs)")
        return StallReason.NONE_REACHABLE, f"{facts.known} peers known, none reachable"
    if facts.piece_layers_missing:
        files = f"{facts.piece_layers_missing} file{'s' if facts.piece_layers_missing > 1 else ''}"
        if facts.hash_requests_sent == 0:
            asked = "no connected peer has those pieces to be asked"
        else:
            asked = (f"{facts.hash_requests_sent} hash requests sent, "
                     f"{facts.hash_requests_failed} rejected or unanswered")
        return StallReason.NO_PIECE_LAYERS, (
            f"{facts.connected} peers connected, but none gives the piece hashes (v2 piece layers, "
            f"BEP 52) of {files}: {asked}")
    if facts.peers_with_wanted == 0 and not facts.fetching_metadata:
        return StallReason.NO_PEER_HAS_PIECES, f"{facts.connected} peers connected, none has {what}"
    return StallReason.NOTHING_ARRIVES, f"{facts.connected} peers connected, but none sends {what}"


class StallDetector:
    """Says a download is stalled once ``grace`` seconds passed without progress."""

    def __init__(self, grace: float) -> None:
        self.grace = grace
        self._progress: int | None = None
        self._since = 0.0

    def observe(self, now: float, progress: int,
                facts: SwarmFacts | Callable[[], SwarmFacts]) -> Stall | None:
        """``progress``: anything that grows while the download moves (verified bytes; bytes
        received). Returns the stall, or None while the download moves or within the grace.
        ``facts`` may be a function: it is called only when a verdict is due."""
        waited = self.waited(now, progress)
        if waited is None:
            return None
        reason, message = diagnose(facts if isinstance(facts, SwarmFacts) else facts())
        return Stall(reason=reason, message=message, seconds=waited)

    def waited(self, now: float, progress: int) -> float | None:
        """The seconds without progress once they reach the grace, else None (``progress`` is
        recorded: a change starts the count again)."""
        if self._progress is None or progress != self._progress:
            self._progress = progress
            self._since = now
            return None
        waited = now - self._since
        return waited if waited >= self.grace else None

    def grace_ends(self) -> float | None:
        """When a download that does not move from now on is stalled (None before a first look)."""
        return None if self._progress is None else self._since + self.grace

    def reset(self, now: float) -> None:
        """Start counting again (e.g. after a resume)."""
        self._progress = None
        self._since = now
